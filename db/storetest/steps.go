package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// exerciseSteps covers SaveRunStep: steps written while a run runs,
// replaced by later writes of the same seq and by CompleteRun, and fenced
// to the running attempt.
func exerciseSteps(t *testing.T, backend Backend) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("SavedWhileRunningThenCompleted", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustClaim(t, s, MustRun(t, s, wf).ID)

		running := &orcheo.RunStep{RunID: r.ID, Attempt: r.Attempt, Seq: 1, Node: "fetch", NodeType: "http",
			Status: orcheo.StepRunning, Input: json.RawMessage(`{"method":"GET","url":"https://example.com/"}`), StartedAt: t0}
		if err := s.Runs.SaveRunStep(ctx, running); err != nil {
			t.Fatal(err)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 1 {
			t.Fatalf("steps = %+v, want the running step", found.Steps)
		}
		st := found.Steps[0]
		if st.Status != orcheo.StepRunning || st.NodeAttempt != 1 || st.CompletedAt != nil || !st.StartedAt.Equal(t0) ||
			!jsonEqual(t, st.Input, running.Input) || len(st.Output) != 0 {
			t.Fatalf("running step = %+v", st)
		}

		// The end of the step replaces its start; a second try is a new seq.
		end := t0.Add(time.Second)
		failed := *running
		failed.Status, failed.Error, failed.CompletedAt = orcheo.StepFailed, "status 503", &end
		if err := s.Runs.SaveRunStep(ctx, &failed); err != nil {
			t.Fatal(err)
		}
		retry := &orcheo.RunStep{RunID: r.ID, Attempt: r.Attempt, Seq: 2, Node: "fetch", NodeType: "http",
			Status: orcheo.StepRunning, NodeAttempt: 2, StartedAt: end}
		if err := s.Runs.SaveRunStep(ctx, retry); err != nil {
			t.Fatal(err)
		}
		found, err = s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 2 || found.Steps[0].Status != orcheo.StepFailed || found.Steps[0].Error != "status 503" ||
			found.Steps[0].CompletedAt == nil || found.Steps[1].NodeAttempt != 2 || found.Steps[1].Status != orcheo.StepRunning {
			t.Fatalf("steps = %+v", found.Steps)
		}

		// CompleteRun stores the final list over what was saved, without
		// duplicating a seq.
		done := retry
		done.Status, done.Output, done.CompletedAt = orcheo.StepSucceeded, json.RawMessage(`{"status":200}`), &end
		extra := &orcheo.RunStep{Seq: 3, Node: "say", NodeType: "log", Status: orcheo.StepSucceeded, StartedAt: end, CompletedAt: &end}
		if _, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded,
			Output: json.RawMessage(`{}`), Steps: []*orcheo.RunStep{&failed, done, extra}}); err != nil {
			t.Fatal(err)
		}
		found, err = s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 3 {
			t.Fatalf("%d steps after completion, want 3: %+v", len(found.Steps), found.Steps)
		}
		if st := found.Steps[1]; st.Status != orcheo.StepSucceeded || !jsonEqual(t, st.Output, done.Output) || st.NodeAttempt != 2 {
			t.Fatalf("completed step 2 = %+v", st)
		}
		if st := found.Steps[2]; st.Node != "say" || st.NodeAttempt != 1 {
			t.Fatalf("completed step 3 = %+v", st)
		}
	})

	t.Run("Fenced", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		step := func(id string, attempt int) *orcheo.RunStep {
			return &orcheo.RunStep{RunID: id, Attempt: attempt, Seq: 1, Node: "a", NodeType: "set",
				Status: orcheo.StepRunning, StartedAt: t0}
		}
		pending := MustRun(t, s, wf)
		wantCode(t, s.Runs.SaveRunStep(ctx, step(pending.ID, 1)), orcheo.ECONFLICT)

		r := MustClaim(t, s, MustRun(t, s, wf).ID)
		err := s.Runs.SaveRunStep(ctx, step(r.ID, r.Attempt+1))
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "attempt")

		if _, err := s.Runs.CompleteRun(ctx, r.ID, r.Attempt, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "x"}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.Runs.SaveRunStep(ctx, step(r.ID, r.Attempt)), orcheo.ECONFLICT)
		wantCode(t, s.Runs.SaveRunStep(ctx, step(orcheo.NewID(), 1)), orcheo.ENOTFOUND)
		wantCode(t, s.Runs.SaveRunStep(ctx, step("not-an-id", 1)), orcheo.ENOTFOUND)

		other := MustClaim(t, s, MustRun(t, s, wf).ID)
		bad := step(other.ID, other.Attempt)
		bad.Output = json.RawMessage(`{`)
		wantCode(t, s.Runs.SaveRunStep(ctx, bad), orcheo.EINVALID)
		bad = step(other.ID, other.Attempt)
		bad.Seq = 0
		wantCode(t, s.Runs.SaveRunStep(ctx, bad), orcheo.EINVALID)
		found, err := s.Runs.FindRunByID(ctx, other.ID)
		if err != nil || len(found.Steps) != 0 {
			t.Fatalf("rejected steps were stored: %+v, %v", found, err)
		}
	})
}
