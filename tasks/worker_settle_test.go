package tasks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// gatedRuns is a store whose CompleteRuns waits until the test opens its
// gate, so completions pile up uncommitted; at each ClaimRuns it lets the
// test sample the worker's processing list.
type gatedRuns struct {
	orcheo.RunService
	gate    chan struct{}
	once    sync.Once
	blocked atomic.Int64 // completions inside a waiting CompleteRuns
	claimed func()       // called at each ClaimRuns, if set
}

func newGatedRuns(runs orcheo.RunService) *gatedRuns {
	return &gatedRuns{RunService: runs, gate: make(chan struct{})}
}

func (g *gatedRuns) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedRuns) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	if g.claimed != nil {
		g.claimed()
	}
	return g.RunService.ClaimRuns(ctx, ids, workerID, leaseUntil)
}

func (g *gatedRuns) CompleteRuns(ctx context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
	g.blocked.Add(int64(len(cs)))
	<-g.gate
	g.blocked.Add(-int64(len(cs)))
	return g.RunService.CompleteRuns(ctx, cs)
}

// settleFixture is a worker of 2 slots on a redis-server of its own whose
// completions wait on a gate, and n runs of okDefinition enqueued.
type settleFixture struct {
	*fixture
	runs  *gatedRuns
	all   []*orcheo.Run
	rdb   *rdb   // on the worker's Redis
	plist string // the worker's processing list of the default queue
	qlist string // the default queue's list
}

const settleSlots = 2

func newSettleFixture(t *testing.T, backend, pgName string, n int, options ...func(*Config, *engine.Options)) *settleFixture {
	t.Helper()
	store := openStore(t, backend, pgName)
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL(), append([]func(*Config, *engine.Options){func(c *Config, _ *engine.Options) {
		c.Concurrency = settleSlots
	}}, options...)...)
	g := newGatedRuns(store.Runs)
	t.Cleanup(g.open) // before the worker's Stop, should the test fail
	f.worker.Runs = g
	r := newRDBOn(f.worker.Redis, &f.cfg)
	return &settleFixture{fixture: f, runs: g, rdb: r,
		plist: r.ProcessingKey(orcheo.DefaultQueue, f.worker.ID+":"+orcheo.DefaultQueue),
		qlist: r.QueueKey(orcheo.DefaultQueue)}
}

// enqueue creates n runs of definition and publishes them in one call.
func (f *settleFixture) enqueue(t *testing.T, definition string, n int) {
	t.Helper()
	ctx := context.Background()
	first := f.createRun(t, definition, `{"n":1}`)
	f.all = append(f.all, first)
	for len(f.all) < n {
		r, _, err := f.store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: first.WorkflowID, VersionID: first.VersionID,
			TriggeredBy: orcheo.TriggerManual, Input: []byte(`{"n":2}`)})
		must(t, err)
		f.all = append(f.all, r)
	}
	for _, err := range f.queue.EnqueueRuns(ctx, f.all) {
		must(t, err)
	}
}

// waiting is how many completions the worker has handed in and not yet
// had committed: in the blocked CompleteRuns or queued behind it.
func (f *settleFixture) waiting() int {
	c := f.worker.completer
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(f.runs.blocked.Load()) + len(c.waiting)
}

func (f *settleFixture) llen(t *testing.T, key string) int64 {
	t.Helper()
	n, err := f.worker.Redis.LLen(context.Background(), key).Result()
	must(t, err)
	return n
}

// heldRuns is the runs whose messages are in the worker's processing list.
func (f *settleFixture) heldRuns(t *testing.T) map[string]bool {
	t.Helper()
	msgs, err := f.worker.Redis.LRange(context.Background(), f.plist, 0, -1).Result()
	must(t, err)
	held := map[string]bool{}
	for _, m := range msgs {
		held[runIDOfBody(m)] = true
	}
	return held
}

// TestWorker_SlotFreedBeforeCommit: with every completion's commit held
// back, a worker of 2 slots does not wait for them: it executes runs
// until it holds its hold capacity (4) of messages, no more, each still in
// its processing list (none acked before its commit) and its run still
// running with its lease renewed. Once the commits go through, every run
// succeeds and every message is acked. On a worker whose slot waits for
// the commit only 2 runs execute.
func TestWorker_SlotFreedBeforeCommit(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const n = 10
			hold := holdCapacity(settleSlots)
			f := newSettleFixture(t, backend, "tasks_settle_slots", n, func(c *Config, _ *engine.Options) {
				c.LeaseDuration, c.HeartbeatInterval = 3*time.Second, 200*time.Millisecond
			})
			var maxHeld atomic.Int64
			f.runs.claimed = func() {
				held, _ := f.worker.Redis.LLen(context.Background(), f.plist).Result()
				for m := maxHeld.Load(); held > m && !maxHeld.CompareAndSwap(m, held); m = maxHeld.Load() {
				}
			}
			f.enqueue(t, okDefinition, n)
			f.start(t)
			waitFor(t, "completions of the hold capacity waiting", func() bool { return f.waiting() == hold })
			if got := f.llen(t, f.plist); got != int64(hold) {
				t.Fatalf("processing list = %d with %d completions waiting, want %d", got, hold, hold)
			}
			if got := f.llen(t, f.qlist); got != int64(n-hold) {
				t.Fatalf("queue = %d, want %d (no more taken than the hold capacity)", got, n-hold)
			}
			held := f.heldRuns(t)
			ctx := context.Background()
			var executed []*orcheo.Run
			for _, r := range f.all {
				got, err := f.store.Runs.FindRunByID(ctx, r.ID)
				must(t, err)
				if got.Status == orcheo.RunRunning {
					executed = append(executed, got)
					if !held[r.ID] {
						t.Fatalf("run %s is uncommitted but its message left the processing list", r.ID)
					}
				} else if got.Status != orcheo.RunPending {
					t.Fatalf("run %s is %s before any commit", r.ID, got.Status)
				}
			}
			if len(executed) != hold {
				t.Fatalf("%d runs claimed, want %d", len(executed), hold)
			}
			// Their leases are still renewed while the commits wait.
			lease := *executed[0].LeaseUntil
			waitFor(t, "a waiting run's lease renewed", func() bool {
				got, err := f.store.Runs.FindRunByID(ctx, executed[0].ID)
				must(t, err)
				return got.LeaseUntil != nil && got.LeaseUntil.After(lease)
			})
			if w := f.waiting(); w != hold {
				t.Fatalf("%d completions waiting, want still %d", w, hold)
			}

			f.runs.open()
			for _, r := range f.all {
				if got := f.waitTerminal(t, r.ID); got.Status != orcheo.RunSucceeded || got.Attempt != 1 {
					t.Fatalf("run %s = %s attempt %d, want succeeded in attempt 1", r.ID, got.Status, got.Attempt)
				}
			}
			waitFor(t, "every message acked", func() bool { return f.llen(t, f.plist) == 0 })
			counts, err := f.rdb.messageCounts(ctx, f.all)
			must(t, err)
			for i, c := range counts {
				if c != 0 {
					t.Fatalf("run %s counts %d messages after its ack", f.all[i].ID, c)
				}
			}
			if m := maxHeld.Load(); m > int64(hold) {
				t.Fatalf("the processing list held %d messages, hold capacity %d", m, hold)
			}
		})
	}
}

// TestWorker_RetryAfterCommit: an attempt that fails with a retry granted
// keeps its message held until the failure commits; the message then
// waits in the delayed set until the run's NotBefore, and the run runs
// again and succeeds.
func TestWorker_RetryAfterCommit(t *testing.T) {
	t.Parallel()
	f := newSettleFixture(t, "postgres", "tasks_settle_retry", 1, func(_ *Config, opts *engine.Options) {
		opts.NodeTypes = map[string]engine.NodeType{"flaky": flakyType{}}
	})
	f.enqueue(t, `{"retry":{"max_attempts":2,"backoff":"2s"},"nodes":[{"id":"try","type":"flaky","until":2}]}`, 1)
	run := f.all[0]
	f.start(t)
	waitFor(t, "the failure handed to the completer", func() bool { return f.waiting() == 1 })
	if !f.heldRuns(t)[run.ID] {
		t.Fatal("the failed attempt's message left the processing list before its commit")
	}
	f.runs.open()
	ctx := context.Background()
	delayed := f.rdb.DelayedKey(orcheo.DefaultQueue)
	var score float64
	waitFor(t, "the message in the delayed set", func() bool {
		msgs, err := f.worker.Redis.ZRangeWithScores(ctx, delayed, 0, -1).Result()
		must(t, err)
		if len(msgs) == 1 && runIDOfBody(msgs[0].Member.(string)) == run.ID {
			score = msgs[0].Score
			return true
		}
		return false
	})
	stored, err := f.store.Runs.FindRunByID(ctx, run.ID)
	must(t, err)
	if stored.Status == orcheo.RunPending {
		if stored.NotBefore == nil || int64(score) != stored.NotBefore.UnixMilli() {
			t.Fatalf("message delayed until %d, run not before %v", int64(score), stored.NotBefore)
		}
	}
	if got := f.waitTerminal(t, run.ID); got.Status != orcheo.RunSucceeded || got.Attempt != 2 {
		t.Fatalf("run = %s attempt %d, want succeeded on attempt 2", got.Status, got.Attempt)
	}
	waitFor(t, "the message acked", func() bool { return f.llen(t, f.plist) == 0 })
	counts, err := f.rdb.messageCounts(ctx, f.all)
	must(t, err)
	if counts[0] != 0 {
		t.Fatalf("run counts %d messages after it succeeded", counts[0])
	}
}

// TestWorker_StopFlushesPendingCommits: Stop while completions wait for
// their commit returns only once they committed and their messages were
// acked: every run succeeded, nothing handed back or left in Redis.
func TestWorker_StopFlushesPendingCommits(t *testing.T) {
	t.Parallel()
	hold := holdCapacity(settleSlots)
	f := newSettleFixture(t, "postgres", "tasks_settle_stop", hold)
	f.enqueue(t, okDefinition, hold)
	f.start(t)
	waitFor(t, "every completion waiting", func() bool { return f.waiting() == hold })
	stopped := make(chan struct{})
	go func() {
		f.worker.Stop()
		close(stopped)
	}()
	waitFor(t, "the stop under way", func() bool {
		f.worker.mu.Lock()
		defer f.worker.mu.Unlock()
		return f.worker.stopping != nil
	})
	if got := f.llen(t, f.plist); got != int64(hold) {
		t.Fatalf("processing list = %d while the commits wait, want %d", got, hold)
	}
	f.runs.open()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return after the commits")
	}
	ctx := context.Background()
	for _, r := range f.all {
		got, err := f.store.Runs.FindRunByID(ctx, r.ID)
		must(t, err)
		if got.Status != orcheo.RunSucceeded {
			t.Fatalf("run %s = %s after Stop, want succeeded", r.ID, got.Status)
		}
	}
	if got := f.llen(t, f.plist); got != 0 {
		t.Fatalf("processing list = %d after Stop", got)
	}
	if got := f.llen(t, f.qlist); got != 0 {
		t.Fatalf("queue = %d after Stop, want 0 (nothing handed back)", got)
	}
	counts, err := f.rdb.messageCounts(ctx, f.all)
	must(t, err)
	for i, c := range counts {
		if c != 0 {
			t.Fatalf("run %s counts %d messages after Stop", f.all[i].ID, c)
		}
	}
	if n := f.worker.HandedBack(); n != 0 {
		t.Fatalf("%d runs handed back", n)
	}
}
