package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// flakyType is a test node that fails (transiently) while the run's
// attempt is below its `until` option, then succeeds; until 0 always fails.
type flakyType struct{}

type flakyAction struct{ until int }

func (flakyType) Compile(spec *engine.Spec) (engine.Action, error) {
	var until int
	if _, err := spec.Decode("until", &until); err != nil {
		return nil, err
	}
	return flakyAction{until: until}, nil
}

func (a flakyAction) Run(ctx context.Context, scope *engine.Scope) (engine.Result, error) {
	if a.until == 0 || scope.Run.Attempt < a.until {
		return engine.Result{}, fmt.Errorf("flaky failure on attempt %d", scope.Run.Attempt)
	}
	return engine.Result{Output: map[string]any{"attempt": scope.Run.Attempt}}, nil
}

// blockType is a test node that waits until its context ends.
type blockType struct{}

type blockAction struct{}

func (blockType) Compile(spec *engine.Spec) (engine.Action, error) { return blockAction{}, nil }

func (blockAction) Run(ctx context.Context, scope *engine.Scope) (engine.Result, error) {
	<-ctx.Done()
	return engine.Result{}, ctx.Err()
}

// newRetryFixture is a started worker whose engine knows the flaky and
// block nodes, with a short heartbeat so the database check of cancels
// runs often.
func newRetryFixture(tb testing.TB, store *db.Store, redisURL string) *fixture {
	tb.Helper()
	f := newFixture(tb, store, redisURL, func(cfg *Config, opts *engine.Options) {
		cfg.Prefix, cfg.Concurrency = "retry-test", 8
		cfg.LeaseDuration, cfg.HeartbeatInterval = 5*time.Second, 300*time.Millisecond
		opts.NodeTypes = map[string]engine.NodeType{"flaky": flakyType{}, "block": blockType{}}
	})
	f.start(tb)
	return f
}

// TestWorker_Retry runs, on one worker and a redis-server of its own,
// workflows that exercise the retry policy, operator cancels and the run
// timeout.
func TestWorker_Retry(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendPostgres, "tasks_retry")
	rs := testenv.StartRedis(t)
	f := newRetryFixture(t, store, rs.URL())
	ctx := context.Background()
	start := func(t *testing.T, definition string) *orcheo.Run {
		t.Helper()
		run := f.createRun(t, definition, `{}`)
		if err := f.queue.EnqueueRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		return run
	}
	waitRunning := func(t *testing.T, id string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			run, err := store.Runs.FindRunByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if run.Status == orcheo.RunRunning {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s is %s, never running", id, run.Status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("FailsTwiceThenSucceeds", func(t *testing.T) {
		t.Parallel()
		run := start(t, `{"retry":{"max_attempts":3,"backoff":"50ms"},
			"nodes":[{"id":"first","type":"set","values":{"x":"1"}},{"id":"try","type":"flaky","until":3}]}`)
		if run.MaxAttempts != 3 {
			t.Fatalf("max_attempts = %d, want 3", run.MaxAttempts)
		}
		got := f.waitTerminal(t, run.ID)
		if got.Status != orcheo.RunSucceeded || got.Attempt != 3 || got.Error != "" {
			t.Fatalf("run = %s attempt %d error %q, want succeeded on attempt 3", got.Status, got.Attempt, got.Error)
		}
		// Every attempt's steps are kept: two nodes per attempt.
		perAttempt := map[int]int{}
		for _, st := range got.Steps {
			perAttempt[st.Attempt]++
		}
		if len(got.Steps) != 6 || perAttempt[1] != 2 || perAttempt[2] != 2 || perAttempt[3] != 2 {
			t.Fatalf("steps per attempt = %v (%d steps), want 2 for each of 3 attempts", perAttempt, len(got.Steps))
		}
		last := got.Steps[len(got.Steps)-1]
		if last.Attempt != 3 || last.Status != orcheo.StepSucceeded {
			t.Fatalf("last step = %+v", last)
		}
	})

	t.Run("Exhausted", func(t *testing.T) {
		t.Parallel()
		run := start(t, `{"retry":{"max_attempts":2,"backoff":"50ms"},"nodes":[{"id":"try","type":"flaky"}]}`)
		got := f.waitTerminal(t, run.ID)
		if got.Status != orcheo.RunFailed || got.Attempt != 2 || !strings.Contains(got.Error, "flaky failure on attempt 2") {
			t.Fatalf("run = %s attempt %d error %q, want failed on attempt 2 with its error", got.Status, got.Attempt, got.Error)
		}
		if len(got.Steps) != 2 {
			t.Fatalf("%d steps, want one per attempt", len(got.Steps))
		}
	})

	t.Run("PermanentNotRetried", func(t *testing.T) {
		t.Parallel()
		for _, def := range []string{
			`{"retry":{"max_attempts":3,"backoff":"50ms"},"nodes":[{"id":"stop","type":"fail","message":"'no'"}]}`,
			`{"retry":{"max_attempts":3,"backoff":"50ms"},"nodes":[{"id":"bad","type":"set","values":{"x":"input.missing.deeper"}}]}`,
		} {
			run := start(t, def)
			got := f.waitTerminal(t, run.ID)
			if got.Status != orcheo.RunFailed || got.Attempt != 1 {
				t.Fatalf("run = %s attempt %d error %q, want failed after one attempt", got.Status, got.Attempt, got.Error)
			}
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		run := start(t, `{"timeout":"300ms","nodes":[{"id":"wait","type":"block"}]}`)
		got := f.waitTerminal(t, run.ID)
		if got.Status != orcheo.RunFailed || !strings.Contains(got.Error, "timed out") {
			t.Fatalf("run = %s error %q, want failed with a timeout", got.Status, got.Error)
		}
	})

	t.Run("CancelRunning", func(t *testing.T) {
		t.Parallel()
		notifier, err := NewCancelNotifier(f.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer notifier.Close()
		// Through pub/sub, and (no notice) through the heartbeat's check of
		// the database flag.
		for _, notify := range []bool{true, false} {
			run := start(t, `{"retry":{"max_attempts":3,"backoff":"50ms"},"nodes":[{"id":"wait","type":"block"}]}`)
			waitRunning(t, run.ID)
			flagged, err := store.Runs.CancelRun(ctx, run.ID)
			if err != nil || !flagged.CancelRequested {
				t.Fatalf("cancel: %+v %v", flagged, err)
			}
			if notify {
				if err := notifier.NotifyCancel(ctx, run.ID); err != nil {
					t.Fatal(err)
				}
			}
			got := f.waitTerminal(t, run.ID)
			if got.Status != orcheo.RunCancelled || got.Attempt != 1 || !strings.Contains(got.Error, "cancelled") {
				t.Fatalf("notify=%v: run = %s attempt %d error %q, want cancelled without retry", notify, got.Status, got.Attempt, got.Error)
			}
			if len(got.Steps) != 1 || got.Steps[0].Status != orcheo.StepFailed {
				t.Fatalf("notify=%v: steps = %+v", notify, got.Steps)
			}
		}
	})
}

// TestRetryAt checks the retry decision without a worker.
func TestRetryAt(t *testing.T) {
	now := time.Now()
	def := []byte(`{"retry":{"max_attempts":3,"backoff":"1s","max_backoff":"1m"},"nodes":[]}`)
	run := &orcheo.Run{Attempt: 1, MaxAttempts: 3}
	if at := retryAt(run, def, errors.New("network"), now); at == nil || at.Sub(now) < 500*time.Millisecond || at.Sub(now) > time.Second {
		t.Fatalf("first retry at %v, want in 0.5-1s", at)
	}
	run.Attempt = 2
	if at := retryAt(run, def, errors.New("network"), now); at == nil || at.Sub(now) < time.Second || at.Sub(now) > 2*time.Second {
		t.Fatalf("second retry at %v, want in 1-2s", at)
	}
	run.Attempt = 3
	if at := retryAt(run, def, errors.New("network"), now); at != nil {
		t.Fatal("retry after the last attempt")
	}
	run.Attempt, run.ReleasedAttempts = 3, 1 // a released attempt does not count
	if at := retryAt(run, def, errors.New("network"), now); at == nil {
		t.Fatal("no retry although a released attempt does not count")
	}
	run.Attempt, run.ReleasedAttempts = 1, 0
	if at := retryAt(run, def, orcheo.Permanent(errors.New("no")), now); at != nil {
		t.Fatal("permanent failure retried")
	}
	if at := retryAt(run, def, fmt.Errorf("wrapped: %w", orcheo.Errorf(orcheo.EINVALID, "bad definition")), now); at != nil {
		t.Fatal("invalid definition retried")
	}
	if at := retryAt(run, nil, context.DeadlineExceeded, now); at == nil {
		t.Fatal("timeout not retried")
	}
}
