package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// exerciseSuspend covers SuspendRun: a run parked at a long delay returns
// to pending without using up an attempt, and only the claim that resumes
// it sees its checkpoint.
func exerciseSuspend(t *testing.T, backend Backend) {
	ctx := context.Background()
	cp := json.RawMessage(`{"v":1,"node":"wait","state":{"n":1}}`)

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		MustClaim(t, s, r.ID)
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		if err := s.Runs.SaveRunStep(ctx, &orcheo.RunStep{RunID: r.ID, Attempt: 1, Seq: 1, Node: "wait", NodeType: "delay",
			Status: orcheo.StepWaiting, Input: json.RawMessage(`{"until":"2030-01-01T00:00:00Z"}`), StartedAt: t0}); err != nil {
			t.Fatal(err)
		}

		_, err := s.Runs.SuspendRun(ctx, r.ID, 2, t0, cp)
		wantCode(t, err, orcheo.ECONFLICT)
		_, err = s.Runs.SuspendRun(ctx, r.ID, 1, t0, json.RawMessage(`{not json`))
		wantCode(t, err, orcheo.EINVALID)

		// Due already, so the next claim can take it at once.
		notBefore := t0.Add(-time.Second)
		parked, err := s.Runs.SuspendRun(ctx, r.ID, 1, notBefore, cp)
		if err != nil {
			t.Fatal(err)
		}
		if parked.Status != orcheo.RunPending || parked.Attempt != 1 || parked.ReleasedAttempts != 1 || parked.LeaseUntil != nil ||
			parked.EnqueuedAt == nil || parked.NotBefore == nil || !parked.NotBefore.Equal(notBefore) || parked.CompletedAt != nil {
			t.Fatalf("suspended run = %+v", parked)
		}
		if parked.Checkpoint != nil {
			t.Fatalf("a pending run shows its checkpoint: %s", parked.Checkpoint)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 1 || found.Steps[0].Status != orcheo.StepWaiting {
			t.Fatalf("steps of the suspended run = %+v", found.Steps)
		}
		_, err = s.Runs.SuspendRun(ctx, r.ID, 1, notBefore, cp)
		wantCode(t, err, orcheo.ECONFLICT)

		// The resuming claim gets the checkpoint, and so does the claim
		// after a shutdown hand-back of the resumed attempt.
		resumed := MustClaim(t, s, r.ID)
		if resumed.Attempt != 2 || !jsonEqual(t, resumed.Checkpoint, cp) {
			t.Fatalf("resuming claim = attempt %d, checkpoint %s", resumed.Attempt, resumed.Checkpoint)
		}
		if _, err := s.Runs.ReleaseRun(ctx, r.ID, 2); err != nil {
			t.Fatal(err)
		}
		again := MustClaim(t, s, r.ID)
		if again.Attempt != 3 || !jsonEqual(t, again.Checkpoint, cp) {
			t.Fatalf("claim after a hand-back = attempt %d, checkpoint %s", again.Attempt, again.Checkpoint)
		}

		// A retry after a failure starts over: no checkpoint.
		retryAt := time.Now().Add(-time.Second)
		done, err := s.Runs.CompleteRun(ctx, r.ID, 3, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom", RetryAt: &retryAt})
		if err != nil || done.Status != orcheo.RunPending {
			t.Fatalf("complete with retry = %+v, %v", done, err)
		}
		retried := MustClaim(t, s, r.ID)
		if retried.Attempt != 4 || retried.Checkpoint != nil {
			t.Fatalf("retry claim = attempt %d, checkpoint %s", retried.Attempt, retried.Checkpoint)
		}
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 4, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NotDue", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 1 })
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.SuspendRun(ctx, r.ID, 1, time.Now().Add(time.Hour), cp); err != nil {
			t.Fatal(err)
		}
		_, err := s.Runs.ClaimRun(ctx, r.ID, "w2", time.Now().Add(time.Minute))
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "not due until")

		// A suspended run is pending: cancel ends it at once.
		cancelled, err := s.Runs.CancelRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cancelled.Status != orcheo.RunCancelled || cancelled.CompletedAt == nil {
			t.Fatalf("cancelled run = %+v", cancelled)
		}
	})

	t.Run("CancelRequested", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.CancelRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.Runs.SuspendRun(ctx, r.ID, 1, time.Now().Add(time.Hour), cp)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != orcheo.RunCancelled || got.CompletedAt == nil {
			t.Fatalf("suspend of a run whose cancel was requested = %+v", got)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		_, err := s.Runs.SuspendRun(ctx, orcheo.NewID(), 1, time.Now(), cp)
		wantCode(t, err, orcheo.ENOTFOUND)
	})
}
