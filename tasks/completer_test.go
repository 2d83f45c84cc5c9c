package tasks

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/mock"
)

// batchCounter counts the store's batch calls and the items in them.
type batchCounter struct {
	orcheo.RunService
	claimCalls, claimed      atomic.Int64
	completeCalls, completed atomic.Int64
	failCompletes            atomic.Int64 // the next this many CompleteRuns fail with a database error
	perRunClaims, perRunEnds atomic.Int64
}

func (c *batchCounter) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	c.claimCalls.Add(1)
	c.claimed.Add(int64(len(ids)))
	return c.RunService.ClaimRuns(ctx, ids, workerID, leaseUntil)
}

func (c *batchCounter) CompleteRuns(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
	if c.failCompletes.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	c.completeCalls.Add(1)
	c.completed.Add(int64(len(cs)))
	return c.RunService.CompleteRuns(ctx, cs)
}

func (c *batchCounter) ClaimRun(ctx context.Context, id, workerID string, leaseUntil time.Time) (*orcheo.Run, error) {
	c.perRunClaims.Add(1)
	return c.RunService.ClaimRun(ctx, id, workerID, leaseUntil)
}

func (c *batchCounter) CompleteRun(ctx context.Context, id string, attempt int, rc orcheo.RunCompletion) (*orcheo.Run, error) {
	c.perRunEnds.Add(1)
	return c.RunService.CompleteRun(ctx, id, attempt, rc)
}

// TestWorker_ClaimsAndCompletesInBatches runs many runs through a worker
// with 10 slots: they all succeed, once each, with fewer ClaimRuns and
// CompleteRuns calls than runs (slots that ask while a batch is in flight
// share the next one).
func TestWorker_ClaimsAndCompletesInBatches(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_batches")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL(), func(c *Config, _ *engine.Options) { c.Concurrency = 10 })
			counter := &batchCounter{RunService: store.Runs}
			counter.failCompletes.Store(2) // the first two batches hit a database error and are tried again
			f.worker.Runs = counter
			ctx := context.Background()
			first := f.createRun(t, okDefinition, `{"n":1}`)
			const n = 150
			runs := []*orcheo.Run{first}
			for len(runs) < n {
				r, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: first.WorkflowID, VersionID: first.VersionID,
					TriggeredBy: orcheo.TriggerManual, Input: []byte(`{"n":2}`)})
				if err != nil {
					t.Fatal(err)
				}
				runs = append(runs, r)
			}
			for _, errs := range [][]error{f.queue.EnqueueRuns(ctx, runs)} {
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			f.start(t)
			for _, r := range runs {
				got := f.waitTerminal(t, r.ID)
				if got.Status != orcheo.RunSucceeded || got.Attempt != 1 || len(got.Steps) != 1 {
					t.Fatalf("run %s = %s attempt %d, %d steps; want succeeded in attempt 1 with its step", r.ID, got.Status, got.Attempt, len(got.Steps))
				}
			}
			f.worker.Stop()
			claims, completes := counter.claimCalls.Load(), counter.completeCalls.Load()
			t.Logf("%d runs: %d ClaimRuns calls (%d ids), %d CompleteRuns calls (%d completions)",
				n, claims, counter.claimed.Load(), completes, counter.completed.Load())
			if counter.claimed.Load() != n || counter.completed.Load() != n {
				t.Fatalf("%d ids claimed and %d completions written, want %d each", counter.claimed.Load(), counter.completed.Load(), n)
			}
			if claims >= n || completes >= n {
				t.Fatalf("%d ClaimRuns and %d CompleteRuns calls for %d runs: nothing was batched", claims, completes, n)
			}
			if counter.perRunClaims.Load() != 0 || counter.perRunEnds.Load() != 0 {
				t.Fatalf("the worker called ClaimRun %d times and CompleteRun %d times", counter.perRunClaims.Load(), counter.perRunEnds.Load())
			}
		})
	}
}

// TestCompleter_FencesZombie hands the completer, in one batch, the
// result of an attempt whose lease expired and was taken over (rescued and
// claimed again) beside another run's: the zombie's is refused
// (ECONFLICT) without touching the run, the other commits.
func TestCompleter_FencesZombie(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_zombie")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL())
			ctx := context.Background()
			first := f.createRun(t, okDefinition, `{"n":1}`)
			zombie, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: first.WorkflowID, VersionID: first.VersionID,
				TriggeredBy: orcheo.TriggerManual, MaxAttempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			stale, err := store.Runs.ClaimRun(ctx, zombie.ID, "zombie", time.Now().Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if rescued, err := store.Runs.RescueExpiredRuns(ctx, time.Now(), 10); err != nil || len(rescued) != 1 {
				t.Fatalf("rescue = %v, %v", rescued, err)
			}
			current, err := store.Runs.ClaimRun(ctx, zombie.ID, "w2", time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			other, err := store.Runs.ClaimRun(ctx, first.ID, "zombie", time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}

			counter := &batchCounter{RunService: store.Runs}
			c := newCompleter(counter, completeTimeout)
			// Not started: the two completions wait together and go out in
			// the first batch once it starts.
			c.mu.Lock()
			c.open = true
			c.mu.Unlock()
			var (
				wg         sync.WaitGroup
				zombieDone *orcheo.Run
				otherDone  *orcheo.Run
			)
			wg.Add(2)
			go func() {
				defer wg.Done()
				zombieDone = c.complete(stale, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "zombie"}, testLogger())
			}()
			go func() {
				defer wg.Done()
				otherDone = c.complete(other, orcheo.RunCompletion{Status: orcheo.RunSucceeded}, testLogger())
			}()
			waitFor(t, "two completions waiting", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 2 })
			c.mu.Lock()
			c.open = false
			c.mu.Unlock()
			c.Start(ctx)
			t.Cleanup(c.Stop)
			wg.Wait()
			if zombieDone != nil {
				t.Fatalf("the zombie's completion was stored: %+v", zombieDone)
			}
			if otherDone == nil || otherDone.Status != orcheo.RunSucceeded {
				t.Fatalf("other run = %+v, want succeeded", otherDone)
			}
			if calls := counter.completeCalls.Load(); calls != 1 {
				t.Fatalf("%d CompleteRuns calls, want the two in one", calls)
			}
			got, err := store.Runs.FindRunByID(ctx, zombie.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != orcheo.RunRunning || got.Attempt != current.Attempt || got.WorkerID != "w2" || got.Error != "" {
				t.Fatalf("run after the zombie's completion = %s attempt %d on %s (error %q); want attempt %d still running on w2",
					got.Status, got.Attempt, got.WorkerID, got.Error, current.Attempt)
			}
		})
	}
}

// TestCompleter_GivesUpAfterTimeout: a database that stays down past the
// completion's deadline leaves the run to the rescuer (nil), after
// retries; Stop returns once nothing is waiting.
func TestCompleter_GivesUpAfterTimeout(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	runs := &mock.RunService{CompleteRunsFn: func(context.Context, []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
		calls.Add(1)
		return nil, errors.New("connection refused")
	}}
	c := newCompleter(runs, 500*time.Millisecond)
	c.Start(context.Background())
	if done := c.complete(&orcheo.Run{ID: orcheo.NewID(), Attempt: 1}, orcheo.RunCompletion{Status: orcheo.RunSucceeded}, testLogger()); done != nil {
		t.Fatalf("done = %+v, want nil", done)
	}
	if calls.Load() < 2 {
		t.Fatalf("%d tries, want retries before giving up", calls.Load())
	}
	c.Stop()
	c.Stop()
}

// TestClaimer_BatchErrorReachesEveryWaiter: a ClaimRuns that fails gives
// each id of its batch the error (executeRun then retries the message
// later), and a claim after Stop fails at once.
func TestClaimer_BatchErrorReachesEveryWaiter(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int64
	runs := &mock.RunService{ClaimRunsFn: func(_ context.Context, ids []string, _ string, _ time.Time) ([]orcheo.RunClaim, error) {
		if calls.Add(1) == 1 {
			<-release // the first batch is in flight while the others queue
			return []orcheo.RunClaim{{ID: ids[0], Run: &orcheo.Run{ID: ids[0], Attempt: 1}}}, nil
		}
		return nil, errors.New("connection reset")
	}}
	c := newClaimer(runs, "w", time.Minute)
	c.Start(context.Background())
	firstDone := make(chan error, 1)
	go func() { _, err := c.claim("first"); firstDone <- err }()
	waitFor(t, "the first batch in flight", func() bool { return calls.Load() == 1 })
	errs := make(chan error, 5)
	for range 5 {
		go func() { _, err := c.claim(orcheo.NewID()); errs <- err }()
	}
	waitFor(t, "five claims waiting", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 5 })
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := <-errs; err == nil || err.Error() != "connection reset" {
			t.Fatalf("err = %v, want the batch's error", err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d ClaimRuns calls, want the five waiting claims in one", calls.Load())
	}
	c.Stop()
	if _, err := c.claim(orcheo.NewID()); !errors.Is(err, errClaimerStopped) {
		t.Fatalf("claim after Stop: %v", err)
	}
}
