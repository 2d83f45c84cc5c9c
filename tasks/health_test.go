package tasks

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// waitReport polls report until cond holds, for up to timeout, and
// returns the report that satisfied it.
func waitReport(t *testing.T, what string, timeout time.Duration, report func() HealthReport, cond func(HealthReport) bool) HealthReport {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := report()
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last report %+v", what, timeout, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failedOnly reports whether r failed exactly the named checks.
func failedOnly(names ...string) func(HealthReport) bool {
	return func(r HealthReport) bool { return slices.Equal(r.Failed, names) }
}

// TestWorkerHealth_FetchStall stalls one consumer's fetch loop through the
// package's test hook: Health names the fetch check once the loop has been
// silent past FetchStallAfter, and is healthy again once it goes round.
// Readiness, which looks at dependencies only, stays ready.
func TestWorkerHealth_FetchStall(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	f := newFixture(t, openStore(t, db.BackendSQLite, ""), rs.URL())
	f.worker.FetchStallAfter = 2500 * time.Millisecond // above an idle BLMOVE's second
	var (
		mu    sync.Mutex
		stall chan struct{} // non-nil: the loop blocks until it is closed
	)
	f.worker.health.fetchHook = func() {
		mu.Lock()
		ch := stall
		mu.Unlock()
		if ch != nil {
			<-ch
		}
	}
	release := func() {
		mu.Lock()
		if stall != nil {
			close(stall)
			stall = nil
		}
		mu.Unlock()
	}
	t.Cleanup(release) // before the worker's Stop, registered earlier
	f.start(t)

	if r := f.worker.Health(); !r.OK() || r.Status != "ok" || r.Checks[HealthCheckFetch] != "ok" {
		t.Fatalf("fresh worker: %+v, want ok", r)
	}
	mu.Lock()
	stall = make(chan struct{})
	mu.Unlock()
	stalledAt := time.Now()
	r := waitReport(t, "fetch stall reported", 10*time.Second, f.worker.Health, failedOnly(HealthCheckFetch))
	if since := time.Since(stalledAt); since < f.worker.FetchStallAfter {
		t.Fatalf("stall reported after %s, before the %s bound", since, f.worker.FetchStallAfter)
	}
	if r.Status != "unhealthy" || r.Checks[HealthCheckFetch] == "ok" {
		t.Fatalf("stalled: %+v", r)
	}
	if rd := f.worker.Readiness(); !rd.OK() {
		t.Fatalf("readiness of a stalled worker with its dependencies up: %+v, want ok", rd)
	}
	release()
	waitReport(t, "healthy after the stall", 10*time.Second, f.worker.Health, failedOnly())
}

// TestWorkerHealth_BusySlotsAreNoStall keeps the worker's only slot busy
// with a run longer than FetchStallAfter: a loop waiting for a free slot
// is not stalled.
func TestWorkerHealth_BusySlotsAreNoStall(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	f := newFixture(t, openStore(t, db.BackendSQLite, ""), rs.URL(), func(c *Config, _ *engine.Options) { c.Concurrency = 1 })
	f.worker.FetchStallAfter = 1500 * time.Millisecond
	f.start(t)
	run := f.createRun(t, `{"nodes":[{"id":"d","type":"delay","duration":"4s"}]}`, `{}`)
	if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "run running", func() bool {
		r, err := f.store.Runs.FindRunByID(context.Background(), run.ID)
		return err == nil && r.Status == orcheo.RunRunning
	})
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r := f.worker.Health(); !r.OK() {
			t.Fatalf("worker with its slot busy: %+v, want ok", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerHealth_RedisDown stops the worker's private redis-server:
// Readiness fails at once (the probe's next ping), Health only once Redis
// has been unreachable for HealthGrace, and both recover with Redis.
func TestWorkerHealth_RedisDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	f := newFixture(t, openStore(t, db.BackendSQLite, ""), rs.URL())
	f.worker.HealthGrace = 2 * time.Second
	f.start(t)
	waitReport(t, "ready", 5*time.Second, f.worker.Readiness, failedOnly())

	rs.Kill()
	killed := time.Now()
	waitReport(t, "redis not ready", 5*time.Second, f.worker.Readiness, failedOnly(HealthCheckRedis))
	if time.Since(killed) < f.worker.HealthGrace/2 {
		if r := f.worker.Health(); !r.OK() {
			t.Fatalf("unhealthy %s after the kill, within the %s grace: %+v", time.Since(killed), f.worker.HealthGrace, r)
		}
	}
	r := waitReport(t, "redis unhealthy", 10*time.Second, f.worker.Health, failedOnly(HealthCheckRedis))
	// The grace counts from the last call that succeeded, which the probe
	// (four a grace) made up to a quarter of the grace before the kill.
	if since, least := time.Since(killed), f.worker.HealthGrace*3/4; since < least {
		t.Fatalf("unhealthy %s after the kill, before the %s grace less one probe interval", since, f.worker.HealthGrace)
	}
	if r.Status != "unhealthy" || r.Checks[HealthCheckDatabase] != "ok" {
		t.Fatalf("redis down: %+v", r)
	}

	rs.Start()
	waitReport(t, "healthy with redis back", 10*time.Second, f.worker.Health, failedOnly())
	waitReport(t, "ready with redis back", 10*time.Second, f.worker.Readiness, failedOnly())
}

// TestWorkerHealth_DatabaseDown closes the database the probe pings (a
// store of its own, as the worker's Runs would not notice while idle): the database check fails,
// readiness at once and health after the grace.
func TestWorkerHealth_DatabaseDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	store := openStore(t, db.BackendSQLite, "")
	f := newFixture(t, store, rs.URL())
	probe, err := db.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "probe.db"))
	if err != nil {
		t.Fatal(err)
	}
	f.worker.DB, f.worker.HealthGrace = probe, time.Second
	f.start(t)
	waitReport(t, "ready", 5*time.Second, f.worker.Readiness, failedOnly())
	_ = probe.Close()
	waitReport(t, "database not ready", 5*time.Second, f.worker.Readiness, failedOnly(HealthCheckDatabase))
	waitReport(t, "database unhealthy", 10*time.Second, f.worker.Health, failedOnly(HealthCheckDatabase))
}

// TestWorkerHealth_Draining stops a worker with a run in its slot: from
// the start of Stop, Draining is true and Health and Readiness fail the
// draining check until it returns.
func TestWorkerHealth_Draining(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	f := newFixture(t, openStore(t, db.BackendSQLite, ""), rs.URL())
	f.worker.DrainTimeout = 5 * time.Second
	f.start(t)
	if f.worker.Draining() {
		t.Fatal("draining before Stop")
	}
	run := f.createRun(t, `{"nodes":[{"id":"d","type":"delay","duration":"1500ms"}]}`, `{}`)
	if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "run running", func() bool {
		r, err := f.store.Runs.FindRunByID(context.Background(), run.ID)
		return err == nil && r.Status == orcheo.RunRunning
	})
	stopped := make(chan struct{})
	go func() { f.worker.Stop(); close(stopped) }()
	waitReport(t, "draining unhealthy", 5*time.Second, f.worker.Health, failedOnly(HealthCheckDraining))
	if r := f.worker.Readiness(); !slices.Contains(r.Failed, HealthCheckDraining) || r.Status != "unavailable" {
		t.Fatalf("readiness while draining: %+v", r)
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned before the run in flight finished")
	default:
	}
	<-stopped
	if got := f.waitTerminal(t, run.ID); got.Status != orcheo.RunSucceeded {
		t.Fatalf("drained run ended %s", got.Status)
	}
}
