package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// retryDefinition is a stored definition whose retry policy allows three
// attempts.
var retryDefinition = json.RawMessage(`{"retry":{"max_attempts":3,"backoff":"1s"},"nodes":[{"id":"a","type":"log"}]}`)

func mustRetryWorkflow(tb testing.TB, s *db.Store) *orcheo.Workflow {
	tb.Helper()
	wf := &orcheo.Workflow{Handle: uniqueHandle("retry"), Name: "retrying workflow"}
	if _, err := s.Workflows.CreateWorkflow(context.Background(), wf, retryDefinition); err != nil {
		tb.Fatalf("create workflow: %v", err)
	}
	return wf
}

// failedStep is one failed step of an attempt.
func failedStep(at time.Time, msg string) []*orcheo.RunStep {
	return []*orcheo.RunStep{{Node: "a", NodeType: "log", Status: orcheo.StepFailed, Error: msg, StartedAt: at, CompletedAt: &at}}
}

func exerciseRetry(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("MaxAttemptsFromDefinition", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		if r := MustRun(t, s, mustRetryWorkflow(t, s)); r.MaxAttempts != 3 {
			t.Fatalf("max_attempts = %d, want 3 from the definition", r.MaxAttempts)
		}
		wf, _ := MustWorkflow(t, s)
		if r := MustRun(t, s, wf); r.MaxAttempts != 1 {
			t.Fatalf("max_attempts = %d, want 1 without a retry policy", r.MaxAttempts)
		}
	})

	t.Run("RetryUntilExhausted", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		r := MustRun(t, s, mustRetryWorkflow(t, s))
		for attempt := 1; attempt <= 3; attempt++ {
			claimed := MustClaim(t, s, r.ID)
			if claimed.Attempt != attempt {
				t.Fatalf("claimed attempt %d, want %d", claimed.Attempt, attempt)
			}
			retryAt := clock.Now().Add(time.Minute)
			got, err := s.Runs.CompleteRun(ctx, r.ID, attempt, orcheo.RunCompletion{Status: orcheo.RunFailed,
				Error: "boom " + string(rune('0'+attempt)), Steps: failedStep(clock.Now(), "boom"), RetryAt: &retryAt})
			if err != nil {
				t.Fatal(err)
			}
			if attempt == 3 {
				if got.Status != orcheo.RunFailed || got.Error != "boom 3" || got.CompletedAt == nil {
					t.Fatalf("exhausted run = %+v, want failed with the last error", got)
				}
				break
			}
			want := retryAt.UTC().Truncate(time.Microsecond)
			if got.Status != orcheo.RunPending || got.NotBefore == nil || !got.NotBefore.Equal(want) ||
				got.CompletedAt != nil || got.LeaseUntil != nil || got.EnqueuedAt == nil || got.Error == "" {
				t.Fatalf("retried run = %+v, want pending until %s", got, want)
			}
			// Not due yet: a delivery before not_before is refused.
			_, err = s.Runs.ClaimRun(ctx, r.ID, "w1", clock.Now().Add(time.Minute))
			wantCode(t, err, orcheo.ECONFLICT)
			wantMessageContains(t, err, "not due")
			clock.Advance(time.Minute)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 3 {
			t.Fatalf("%d steps, want one per attempt", len(found.Steps))
		}
		for i, st := range found.Steps {
			if st.Attempt != i+1 || st.Status != orcheo.StepFailed {
				t.Fatalf("step %d = %+v", i, st)
			}
		}
	})

	t.Run("RetryAtNeedsFailure", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		r := MustRun(t, s, mustRetryWorkflow(t, s))
		MustClaim(t, s, r.ID)
		at := time.Now()
		_, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded, RetryAt: &at})
		wantCode(t, err, orcheo.EINVALID)
	})

	t.Run("CancelRunning", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf := mustRetryWorkflow(t, s)
		ends := map[string]orcheo.RunCompletion{
			"failed with retry": {Status: orcheo.RunFailed, Error: "cancelled", RetryAt: new(time.Now())},
			"cancelled":         {Status: orcheo.RunCancelled, Error: "cancelled by operator"},
			"succeeded":         {Status: orcheo.RunSucceeded},
		}
		for name, c := range ends {
			r := MustRun(t, s, wf)
			MustClaim(t, s, r.ID)
			for range 2 { // a second request changes nothing
				flagged, err := s.Runs.CancelRun(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if flagged.Status != orcheo.RunRunning || !flagged.CancelRequested {
					t.Fatalf("%s: flagged run = %+v", name, flagged)
				}
			}
			ids, err := s.Runs.FindCancelRequested(ctx, []string{r.ID, orcheo.NewID(), "not-an-id"})
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != 1 || ids[0] != r.ID {
				t.Fatalf("%s: FindCancelRequested = %v, want [%s]", name, ids, r.ID)
			}
			got, err := s.Runs.CompleteRun(ctx, r.ID, 1, c)
			if err != nil {
				t.Fatal(err)
			}
			want := orcheo.RunCancelled
			if c.Status == orcheo.RunSucceeded {
				want = orcheo.RunSucceeded // it finished before it saw the cancel
			}
			if got.Status != want || got.CompletedAt == nil {
				t.Fatalf("%s: run = %+v, want %s", name, got, want)
			}
			if ids, err := s.Runs.FindCancelRequested(ctx, []string{r.ID}); err != nil || len(ids) != 0 {
				t.Fatalf("%s: FindCancelRequested after the end = %v, %v", name, ids, err)
			}
			_, err = s.Runs.CancelRun(ctx, r.ID)
			wantCode(t, err, orcheo.ECONFLICT)
		}
		if ids, err := s.Runs.FindCancelRequested(ctx, nil); err != nil || len(ids) != 0 {
			t.Fatalf("FindCancelRequested(nil) = %v, %v", ids, err)
		}
	})

	t.Run("RetryByHand", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)

		_, err := s.Runs.RetryRun(ctx, r.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "pending")
		MustClaim(t, s, r.ID)
		_, err = s.Runs.RetryRun(ctx, r.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "first",
			Steps: failedStep(clock.Now(), "first")}); err != nil {
			t.Fatal(err)
		}

		clock.Advance(time.Second)
		got, err := s.Runs.RetryRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now().UTC().Truncate(time.Microsecond)
		if got.Status != orcheo.RunPending || got.MaxAttempts != 2 || got.Attempt != 1 || got.NotBefore != nil ||
			got.CompletedAt != nil || got.EnqueuedAt == nil || !got.EnqueuedAt.Equal(now) || got.CancelRequested {
			t.Fatalf("retried run = %+v", got)
		}
		if c := MustClaim(t, s, r.ID); c.Attempt != 2 {
			t.Fatalf("claimed attempt %d, want 2", c.Attempt)
		}
		// The attempt granted by hand is the last: a RetryAt fails the run.
		at := clock.Now()
		done, err := s.Runs.CompleteRun(ctx, r.ID, 2, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "second",
			Steps: failedStep(at, "second"), RetryAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != orcheo.RunFailed || done.Error != "second" {
			t.Fatalf("run = %+v, want failed", done)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Steps) != 2 || found.Steps[0].Attempt != 1 || found.Steps[1].Attempt != 2 {
			t.Fatalf("steps = %+v, want one per attempt", found.Steps)
		}

		// A run cancelled while pending can be retried too.
		c := MustRun(t, s, wf)
		if _, err := s.Runs.CancelRun(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Runs.RetryRun(ctx, c.ID); err != nil || got.Status != orcheo.RunPending || got.MaxAttempts != 1 {
			t.Fatalf("retry of a cancelled run = %+v, %v", got, err)
		}

		_, err = s.Runs.RetryRun(ctx, orcheo.NewID())
		wantCode(t, err, orcheo.ENOTFOUND)
		_, err = s.Runs.RetryRun(ctx, "not-an-id")
		wantCode(t, err, orcheo.ENOTFOUND)
	})
}
