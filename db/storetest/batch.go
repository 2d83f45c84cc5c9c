package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// exerciseBatch covers ClaimRuns and CompleteRuns: each item gets exactly
// what ClaimRun or CompleteRun would have given it alone, a failing item
// fails alone, and the events are the single calls' events.
func exerciseBatch(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("ClaimMixed", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		t0 := clock.Now()
		wf, _ := MustWorkflow(t, s)
		p1, p2 := MustRun(t, s, wf), MustRun(t, s, wf)
		running := MustRun(t, s, wf)
		MustClaim(t, s, running.ID)
		cancelled := MustRun(t, s, wf)
		if _, err := s.Runs.CancelRun(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Hour)
		notDue := MustRun(t, s, wf, func(r *orcheo.Run) { r.NotBefore = &later })
		missing := orcheo.NewID()

		lease := t0.Add(30 * time.Second)
		ids := []string{p1.ID, running.ID, cancelled.ID, missing, p2.ID, "not-an-id", notDue.ID, p1.ID}
		claims, err := s.Runs.ClaimRuns(ctx, ids, "wb", lease)
		if err != nil {
			t.Fatal(err)
		}
		if len(claims) != len(ids) {
			t.Fatalf("%d claims for %d ids", len(claims), len(ids))
		}
		for i, c := range claims {
			if c.ID != ids[i] {
				t.Fatalf("claim %d is of %s, want %s", i, c.ID, ids[i])
			}
		}
		for _, i := range []int{0, 4} {
			r := claims[i].Run
			if claims[i].Err != nil || r == nil || r.ID != ids[i] || r.Status != orcheo.RunRunning || r.Attempt != 1 ||
				r.WorkerID != "wb" || r.LeaseUntil == nil || !r.LeaseUntil.Equal(lease) || r.StartedAt == nil ||
				!r.StartedAt.Equal(t0) || r.Version != 1 || !jsonEqual(t, r.Input, p1.Input) {
				t.Fatalf("claim %d = %+v, %v; want run %s running attempt 1 for wb", i, r, claims[i].Err, ids[i])
			}
		}
		for i, want := range map[int]struct{ code, msg string }{
			1: {orcheo.ECONFLICT, "is running, not pending"},
			2: {orcheo.ECONFLICT, "is cancelled, not pending"},
			3: {orcheo.ENOTFOUND, "not found"},
			5: {orcheo.ENOTFOUND, "not found"},
			6: {orcheo.ECONFLICT, "not due until"},
			7: {orcheo.ECONFLICT, "is running, not pending"}, // p1 again: the first entry claimed it
		} {
			if claims[i].Run != nil {
				t.Fatalf("claim %d (%s) got a run", i, ids[i])
			}
			wantCode(t, claims[i].Err, want.code)
			wantMessageContains(t, claims[i].Err, want.msg)
		}
		created := rules.Event{At: t0, Kind: "created", Message: "triggered by manual"}
		for _, id := range []string{p1.ID, p2.ID} {
			wantEvents(t, s, id, created, rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by wb"})
		}
		wantEvents(t, s, running.ID, created, rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by w1"})
		wantEvents(t, s, notDue.ID, created)
		if got, err := s.Runs.FindRunByID(ctx, notDue.ID); err != nil || got.Status != orcheo.RunPending || got.Attempt != 0 {
			t.Fatalf("not-due run = %+v, %v; want it untouched", got, err)
		}

		// Nothing to claim is no error, and no call of the database's.
		if claims, err := s.Runs.ClaimRuns(ctx, nil, "wb", lease); err != nil || len(claims) != 0 {
			t.Fatalf("ClaimRuns(nil) = %v, %v", claims, err)
		}
	})

	t.Run("ClaimResumesCheckpoint", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		MustClaim(t, s, r.ID)
		cp := json.RawMessage(`{"at":"b"}`)
		if _, err := s.Runs.SuspendRun(ctx, r.ID, 1, clock.Now(), cp); err != nil {
			t.Fatal(err)
		}
		other := MustRun(t, s, wf)
		claims, err := s.Runs.ClaimRuns(ctx, []string{other.ID, r.ID}, "wb", clock.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// As ClaimRun: the claim that resumes a suspended run sees its
		// checkpoint; another run has none.
		if got := claims[1].Run; got == nil || got.Attempt != 2 || !jsonEqual(t, got.Checkpoint, cp) {
			t.Fatalf("resumed claim = %+v, %v; want attempt 2 with checkpoint %s", got, claims[1].Err, cp)
		}
		if got := claims[0].Run; got == nil || len(got.Checkpoint) != 0 {
			t.Fatalf("other claim = %+v, %v; want no checkpoint", got, claims[0].Err)
		}
	})

	t.Run("CompleteMixed", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		t0 := clock.Now()
		wf, _ := MustWorkflow(t, s)
		twice := func(r *orcheo.Run) { r.MaxAttempts = 2 }
		ok, retried, exhausted := MustRun(t, s, wf), MustRun(t, s, wf, twice), MustRun(t, s, wf)
		cancelReq, stale, invalid := MustRun(t, s, wf, twice), MustRun(t, s, wf), MustRun(t, s, wf)
		for _, r := range []*orcheo.Run{ok, retried, exhausted, cancelReq, stale, invalid} {
			MustClaim(t, s, r.ID)
		}
		if _, err := s.Runs.CancelRun(ctx, cancelReq.ID); err != nil {
			t.Fatal(err)
		}
		// A step saved while running is replaced by the completion's step
		// of the same seq, as CompleteRun does.
		if err := s.Runs.SaveRunStep(ctx, &orcheo.RunStep{RunID: ok.ID, Attempt: 1, Seq: 1, Node: "a", NodeType: "log",
			Status: orcheo.StepRunning, StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		t1 := clock.Now()
		retryAt := t1.Add(time.Minute)
		okSteps := []*orcheo.RunStep{
			{Node: "a", NodeType: "log", Status: orcheo.StepSucceeded, Output: json.RawMessage(`{"v":1}`), StartedAt: t0, CompletedAt: &t1},
			{Node: "b", NodeType: "set", Status: orcheo.StepSucceeded, Input: json.RawMessage(`{"in":2}`), StartedAt: t1, CompletedAt: &t1},
		}
		missing := orcheo.NewID()
		cs := []orcheo.AttemptCompletion{
			{RunID: ok.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"x":42}`), Steps: okSteps}},
			{RunID: retried.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom", RetryAt: &retryAt, Steps: failedStep(t1, "boom")}},
			{RunID: exhausted.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "last", RetryAt: &retryAt}},
			{RunID: cancelReq.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "stopped", RetryAt: &retryAt}},
			{RunID: stale.ID, Attempt: 2, Completion: orcheo.RunCompletion{Status: orcheo.RunSucceeded, Steps: okSteps}},
			{RunID: missing, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunSucceeded}},
			{RunID: invalid.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunPending}},
		}
		results, err := s.Runs.CompleteRuns(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != len(cs) {
			t.Fatalf("%d results for %d completions", len(results), len(cs))
		}
		for i, want := range []orcheo.RunStatus{orcheo.RunSucceeded, orcheo.RunPending, orcheo.RunFailed, orcheo.RunCancelled} {
			r := results[i].Run
			if results[i].Err != nil || r == nil || r.ID != cs[i].RunID || r.Status != want || r.LeaseUntil != nil {
				t.Fatalf("result %d = %+v, %v; want run %s %s", i, r, results[i].Err, cs[i].RunID, want)
			}
		}
		if r := results[0].Run; len(r.Steps) != 2 || r.Steps[0].Seq != 1 || r.Steps[1].Seq != 2 || r.Steps[1].RunID != ok.ID ||
			r.CompletedAt == nil || !r.CompletedAt.Equal(t1) || !jsonEqual(t, r.Output, json.RawMessage(`{"x":42}`)) {
			t.Fatalf("succeeded result = %+v", r)
		}
		if r := results[1].Run; r.NotBefore == nil || !r.NotBefore.Equal(retryAt) || r.CompletedAt != nil || r.Error != "boom" {
			t.Fatalf("retried result = %+v; want pending until %s", r, retryAt)
		}
		wantCode(t, results[4].Err, orcheo.ECONFLICT)
		wantMessageContains(t, results[4].Err, "running attempt 1, not 2")
		wantCode(t, results[5].Err, orcheo.ENOTFOUND)
		wantCode(t, results[6].Err, orcheo.EINVALID)
		for _, i := range []int{4, 5, 6} {
			if results[i].Run != nil {
				t.Fatalf("result %d got a run", i)
			}
		}

		got, err := s.Runs.FindRunByID(ctx, ok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != orcheo.RunSucceeded || len(got.Steps) != 2 || got.Steps[0].Status != orcheo.StepSucceeded ||
			!jsonEqual(t, got.Steps[0].Output, okSteps[0].Output) || !jsonEqual(t, got.Steps[1].Input, okSteps[1].Input) {
			t.Fatalf("stored run = %+v, steps %+v", got, got.Steps)
		}
		for _, id := range []string{stale.ID, invalid.ID} {
			got, err := s.Runs.FindRunByID(ctx, id)
			if err != nil || got.Status != orcheo.RunRunning || got.Attempt != 1 || len(got.Steps) != 0 {
				t.Fatalf("run %s = %+v, %v; want it running attempt 1 untouched", id, got, err)
			}
		}

		created := rules.Event{At: t0, Kind: "created", Message: "triggered by manual"}
		claimed := rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by w1"}
		wantEvents(t, s, ok.ID, created, claimed, rules.Event{At: t1, Kind: "succeeded", Message: "attempt 1: "})
		wantEvents(t, s, retried.ID, created, claimed, rules.Event{At: t1, Kind: "retry_scheduled", Message: "attempt 1: boom"})
		wantEvents(t, s, exhausted.ID, created, claimed, rules.Event{At: t1, Kind: "failed", Message: "attempt 1: last"})
		wantEvents(t, s, cancelReq.ID, created, claimed,
			rules.Event{At: t0, Kind: "cancel_requested", Message: "cancel requested while running"},
			rules.Event{At: t1, Kind: "cancelled", Message: "attempt 1: stopped"})
		wantEvents(t, s, stale.ID, created, claimed)
		wantEvents(t, s, invalid.ID, created, claimed)

		// The retried run is claimable again when due, as after CompleteRun.
		clock.Advance(time.Minute)
		if r := MustClaim(t, s, retried.ID); r.Attempt != 2 {
			t.Fatalf("retried run claimed as attempt %d, want 2", r.Attempt)
		}
	})

	t.Run("FencedZombie", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		other := MustRun(t, s, wf)
		if _, err := s.Runs.ClaimRun(ctx, r.ID, "zombie", clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		MustClaim(t, s, other.ID)
		// The zombie's lease expires; the run is rescued and claimed again.
		clock.Advance(2 * time.Second)
		if rescued, err := s.Runs.RescueExpiredRuns(ctx, clock.Now(), 10); err != nil || len(rescued) != 1 {
			t.Fatalf("rescue = %v, %v", rescued, err)
		}
		second, err := s.Runs.ClaimRun(ctx, r.ID, "w2", clock.Now().Add(time.Minute))
		if err != nil || second.Attempt != 2 {
			t.Fatalf("second claim = %+v, %v", second, err)
		}
		results, err := s.Runs.CompleteRuns(ctx, []orcheo.AttemptCompletion{
			{RunID: r.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "zombie",
				Steps: failedStep(clock.Now(), "zombie")}},
			{RunID: other.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunSucceeded}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, results[0].Err, orcheo.ECONFLICT)
		if results[1].Err != nil || results[1].Run.Status != orcheo.RunSucceeded {
			t.Fatalf("other result = %+v, %v; want succeeded", results[1].Run, results[1].Err)
		}
		got, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != orcheo.RunRunning || got.Attempt != 2 || got.WorkerID != "w2" || got.Error != "" || len(got.Steps) != 0 {
			t.Fatalf("run after the zombie's completion = %+v; want attempt 2 running on w2, untouched", got)
		}
	})

	t.Run("SameRunTwice", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		if _, err := s.Runs.ClaimRun(ctx, r.ID, "zombie", clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
		if _, err := s.Runs.RescueExpiredRuns(ctx, clock.Now(), 10); err != nil {
			t.Fatal(err)
		}
		MustClaim(t, s, r.ID)
		// Attempt 1 (stale) before attempt 2 (current) in one batch: only
		// the current one commits, whatever the order.
		results, err := s.Runs.CompleteRuns(ctx, []orcheo.AttemptCompletion{
			{RunID: r.ID, Attempt: 1, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "zombie"}},
			{RunID: r.ID, Attempt: 2, Completion: orcheo.RunCompletion{Status: orcheo.RunSucceeded,
				Steps: []*orcheo.RunStep{{Node: "a", NodeType: "log", Status: orcheo.StepSucceeded, StartedAt: clock.Now()}}}},
			{RunID: r.ID, Attempt: 2, Completion: orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "again"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, results[0].Err, orcheo.ECONFLICT)
		if results[1].Err != nil || results[1].Run.Status != orcheo.RunSucceeded || results[1].Run.Attempt != 2 {
			t.Fatalf("current attempt's result = %+v, %v", results[1].Run, results[1].Err)
		}
		wantCode(t, results[2].Err, orcheo.ECONFLICT)
		got, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil || got.Status != orcheo.RunSucceeded || got.Error != "" || len(got.Steps) != 1 || got.Steps[0].Attempt != 2 {
			t.Fatalf("run = %+v, %v; want attempt 2's success", got, err)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		if results, err := s.Runs.CompleteRuns(ctx, nil); err != nil || len(results) != 0 {
			t.Fatalf("CompleteRuns(nil) = %v, %v", results, err)
		}
	})
}

// BenchmarkClaimComplete measures the store side of a worker that claims
// and completes n runs at concurrency 10: per run (ClaimRun, CompleteRun
// from each of 10 goroutines) or batched (ClaimRuns, CompleteRuns of 10
// runs at a time, as the worker's claimer and completer do under load).
// Creating the runs is not timed.
func BenchmarkClaimComplete(b *testing.B, s *db.Store, batched bool) {
	ctx := context.Background()
	wf, _ := MustWorkflow(b, s)
	const concurrency = 10
	now := time.Now()
	completion := func() orcheo.RunCompletion {
		return orcheo.RunCompletion{Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"done":true}`),
			Steps: []*orcheo.RunStep{{Node: "a", NodeType: "set", Status: orcheo.StepSucceeded, StartedAt: now, CompletedAt: &now}}}
	}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = MustRun(b, s, wf).ID
	}
	b.ResetTimer()
	if batched {
		for start := 0; start < len(ids); start += concurrency {
			batch := ids[start:min(start+concurrency, len(ids))]
			claims, err := s.Runs.ClaimRuns(ctx, batch, "bench", now.Add(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			cs := make([]orcheo.AttemptCompletion, len(claims))
			for i, c := range claims {
				if c.Err != nil {
					b.Fatal(c.Err)
				}
				cs[i] = orcheo.AttemptCompletion{RunID: c.ID, Attempt: c.Run.Attempt, Completion: completion()}
			}
			results, err := s.Runs.CompleteRuns(ctx, cs)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range results {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		return
	}
	next := make(chan string)
	errs := make(chan error, concurrency)
	for range concurrency {
		go func() {
			var first error
			for id := range next {
				if first != nil {
					continue // drain, so the sender never blocks
				}
				r, err := s.Runs.ClaimRun(ctx, id, "bench", now.Add(time.Minute))
				if err == nil {
					_, err = s.Runs.CompleteRun(ctx, id, r.Attempt, completion())
				}
				first = err
			}
			errs <- first
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	for range concurrency {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}
