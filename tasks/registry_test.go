package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
)

// registryTimings make records fresh within a fifth of a second.
func registryTimings(c *Config, o *engine.Options) {
	c.HeartbeatInterval, c.LeaseDuration, c.ConsumerTTL = 100*time.Millisecond, 3*time.Second, 2*time.Second
	o.SuspendDelaysAfter = -1 // a delay holds its slot: a run in flight
}

// slowDefinition holds its slot for 1.5 s.
const slowDefinition = `{"nodes":[{"id":"wait","type":"delay","duration":"1500ms"},{"id":"a","type":"set","values":{"x":"1"}}]}`

func newInspector(tb testing.TB, f *fixture) *Inspector {
	tb.Helper()
	in, err := NewInspector(f.cfg, f.worker.Redis, testLogger())
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// waitWorkers polls the Inspector until ok accepts what it lists.
func waitWorkers(tb testing.TB, in *Inspector, what string, ok func([]*orcheo.WorkerInfo) bool) []*orcheo.WorkerInfo {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, err := in.Workers(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if ok(ws) {
			return ws
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: workers = %+v", what, ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRegistry_RecordsWhatTheWorkerDoes: a worker's record names it, its
// queues and concurrency, lists the run it executes with workflow, attempt
// and since, counts its attempts, refuses a second live worker of its
// name, and is gone after a clean stop.
func TestRegistry_RecordsWhatTheWorkerDoes(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL(), registryTimings)
	f.worker.Name = "alpha@test"
	before := time.Now().UTC()
	f.start(t)
	in := newInspector(t, f)
	ctx := context.Background()

	slow := f.createRun(t, slowDefinition, `{}`)
	must(t, f.queue.EnqueueRun(ctx, slow))
	ws := waitWorkers(t, in, "the run in flight", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 1 && len(ws[0].Active) == 1
	})
	w := ws[0]
	if w.Name != "alpha@test" || w.ID != f.worker.ID || w.State != orcheo.WorkerOnline || w.Concurrency != 4 ||
		len(w.Queues) != 1 || w.Queues[0] != "default" || w.Stats.Pool != 4 || w.PID == 0 || w.Host == "" {
		t.Fatalf("record = %+v", w)
	}
	if w.StartedAt.Before(before.Truncate(time.Second)) || w.LastHeartbeat.Before(w.StartedAt) {
		t.Fatalf("started_at %v, last_heartbeat %v, test began %v", w.StartedAt, w.LastHeartbeat, before)
	}
	a := w.Active[0]
	if a.RunID != slow.ID || a.WorkflowID != slow.WorkflowID || a.Attempt != 1 || a.Queue != "default" || a.Since.Before(before) {
		t.Fatalf("active = %+v, want run %s of %s, attempt 1", a, slow.ID, slow.WorkflowID)
	}
	if len(w.Reserved) != 0 {
		t.Fatalf("reserved = %+v, want none (one slot used of four)", w.Reserved)
	}

	failing := f.createRun(t, failDefinition, `{"n":1}`)
	must(t, f.queue.EnqueueRun(ctx, failing))
	f.waitTerminal(t, slow.ID)
	f.waitTerminal(t, failing.ID)
	ws = waitWorkers(t, in, "the stats", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 1 && ws[0].Stats.Processed == 2 && len(ws[0].Active) == 0
	})
	if s := ws[0].Stats; s.Failed != 1 || s.Retried != 0 {
		t.Fatalf("stats = %+v, want processed 2, failed 1, retried 0", s)
	}

	// A second live process may not take the name.
	twin := newFixture(t, store, rs.URL(), registryTimings)
	twin.worker.Name = "alpha@test"
	err := twin.worker.Start(ctx)
	if orcheo.ErrorCode(err) != orcheo.ECONFLICT {
		twin.worker.Stop()
		t.Fatalf("second worker named alpha@test: err = %v, want ECONFLICT", err)
	}

	f.worker.Stop()
	if ws, _ := in.Workers(ctx); len(ws) != 0 {
		t.Fatalf("after a clean stop: workers = %+v", ws)
	}
	if n, _ := f.worker.Redis.Exists(ctx, trdb.New(f.worker.Redis, f.cfg.Prefix).WorkerKey("alpha@test")).Result(); n != 0 {
		t.Fatal("record left after a clean stop")
	}
}

// TestControl_ShutdownDrains: control shutdown drains the named worker as
// SIGTERM does (its run in flight finishes, then it leaves the registry)
// while another worker keeps going; a name not online is ENOTFOUND.
func TestControl_ShutdownDrains(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	a := newFixture(t, store, rs.URL(), registryTimings)
	a.worker.Name = "a"
	a.start(t)
	b := newFixture(t, store, rs.URL(), registryTimings)
	b.worker.Name = "b"
	b.start(t)
	in := newInspector(t, a)
	ctx := context.Background()

	if _, err := in.Shutdown(ctx, []string{"a", "nope"}); orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
		t.Fatalf("shutdown of a name not online: err = %v, want ENOTFOUND", err)
	}
	select {
	case <-a.worker.ShutdownRequested():
		t.Fatal("a refused shutdown told a worker")
	default:
	}

	slow := a.createRun(t, slowDefinition, `{}`)
	must(t, a.queue.EnqueueRun(ctx, slow))
	ws := waitWorkers(t, in, "the run in flight", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 2 && len(ws[0].Active)+len(ws[1].Active) == 1
	})
	holder, other := a, b
	if len(ws[1].Active) == 1 {
		holder, other = b, a
	}
	told, err := in.Shutdown(ctx, []string{holder.worker.Name})
	if err != nil || len(told) != 1 || told[0] != holder.worker.Name {
		t.Fatalf("shutdown: told %v, err %v", told, err)
	}
	select {
	case <-holder.worker.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not hear the shutdown")
	}
	// While it drains, its record says so and still lists its run.
	waitWorkers(t, in, "the drain to show", func(ws []*orcheo.WorkerInfo) bool {
		for _, w := range ws {
			if w.Name == holder.worker.Name {
				return w.State == orcheo.WorkerDraining && len(w.Active) == 1 && w.Active[0].RunID == slow.ID
			}
		}
		return false
	})
	ws = waitWorkers(t, in, "the drain to finish", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 1 && ws[0].Name == other.worker.Name
	})
	run := holder.waitTerminal(t, slow.ID)
	if run.Status != orcheo.RunSucceeded || run.Attempt != 1 {
		t.Fatalf("the drained run is %s at attempt %d, want succeeded at 1", run.Status, run.Attempt)
	}
	// The other worker keeps going.
	next := other.createRun(t, okDefinition, `{"n":2}`)
	must(t, other.queue.EnqueueRun(ctx, next))
	if run := other.waitTerminal(t, next.ID); run.Status != orcheo.RunSucceeded || run.WorkerID != other.worker.ID {
		t.Fatalf("after the drain: run %s by %s", run.Status, run.WorkerID)
	}
}

// TestControl_ShutdownFoundAtHeartbeat: a request whose notice the worker
// missed (written while it was not listening) takes effect at its next
// heartbeat.
func TestControl_ShutdownFoundAtHeartbeat(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL(), registryTimings)
	f.worker.Name = "quiet"
	f.start(t)
	ctx := context.Background()
	// The request alone, without the notice on the channel.
	r := trdb.New(f.worker.Redis, f.cfg.Prefix)
	must(t, f.worker.Redis.Set(ctx, r.ShutdownKey("quiet"), f.worker.ID, time.Minute).Err())
	select {
	case <-f.worker.ShutdownRequested():
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat did not find the shutdown request")
	}
	in := newInspector(t, f)
	waitWorkers(t, in, "the worker to leave", func(ws []*orcheo.WorkerInfo) bool { return len(ws) == 0 })
	if n, _ := f.worker.Redis.Exists(ctx, r.ShutdownKey("quiet")).Result(); n != 0 {
		t.Fatal("the shutdown request outlived the worker")
	}
}

// TestInspector_Delayed lists a retry's message in its queue's delayed set
// with its due time.
func TestInspector_Delayed(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL(), registryTimings)
	in := newInspector(t, f)
	ctx := context.Background()
	run := f.createRun(t, okDefinition, `{"n":1}`)
	due := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	run.NotBefore = &due
	must(t, f.queue.EnqueueRun(ctx, run))
	got, err := in.Delayed(ctx, []string{"default"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RunID != run.ID || got[0].Queue != "default" || !got[0].DueAt.Equal(due) {
		t.Fatalf("delayed = %+v, want run %s due %v", got, run.ID, due)
	}
}

// TestWorkerName: -n's rule and %h.
func TestWorkerName(t *testing.T) {
	for _, bad := range []string{"", "a b", "a:b", "{q}", "a\nb", string(make([]byte, orcheo.WorkerNameMax+1))} {
		if orcheo.CheckWorkerName(bad) == nil {
			t.Errorf("CheckWorkerName(%q) accepted", bad)
		}
	}
	if err := orcheo.CheckWorkerName(DefaultWorkerName()); err != nil {
		t.Errorf("default name: %v", err)
	}
	if got := ExpandWorkerName("w1@%h"); got != "w1@"+sanitizeHost(hostname()) {
		t.Errorf("ExpandWorkerName = %q", got)
	}
}

// gatedClaims holds every ClaimRuns until release is closed.
type gatedClaims struct {
	orcheo.RunService
	release chan struct{}
}

func (g *gatedClaims) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.RunService.ClaimRuns(ctx, ids, workerID, leaseUntil)
}

// TestRegistry_Reserved: a message the worker took whose claim has not
// come back is reserved, not active; once claimed it is active.
func TestRegistry_Reserved(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL(), registryTimings)
	gate := &gatedClaims{RunService: store.Runs, release: make(chan struct{})}
	f.worker.Runs = gate
	f.worker.Name = "gated"
	f.start(t)
	in := newInspector(t, f)
	ctx := context.Background()

	run := f.createRun(t, slowDefinition, `{}`)
	must(t, f.queue.EnqueueRun(ctx, run))
	ws := waitWorkers(t, in, "the reserved message", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 1 && len(ws[0].Reserved) == 1
	})
	if r := ws[0].Reserved[0]; r.RunID != run.ID || r.Queue != "default" || len(ws[0].Active) != 0 {
		t.Fatalf("reserved %+v, active %+v: want run %s reserved on default, none active", ws[0].Reserved, ws[0].Active, run.ID)
	}
	close(gate.release)
	waitWorkers(t, in, "the run to become active", func(ws []*orcheo.WorkerInfo) bool {
		return len(ws) == 1 && len(ws[0].Reserved) == 0 && len(ws[0].Active) == 1 && ws[0].Active[0].RunID == run.ID
	})
}
