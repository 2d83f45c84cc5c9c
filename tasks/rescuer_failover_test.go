package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/leadership"
)

// waitFor polls cond for up to 20 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRescuerFailover_WithinOneInterval: at the default rescue interval, a
// leader that crashes (no resign: its key stays until the TTL) is replaced
// and the successor's rescuer makes a pass within one rescue interval of
// the crash (issue #10: it came 21 s later).
func TestRescuerFailover_WithinOneInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendSQLite, "")
	prefix := "tasks-failover-test:" + orcheo.NewID()
	f := newFixture(t, store, testenv.RedisURL(t), func(c *Config, _ *engine.Options) { c.Prefix = prefix })
	cfg := f.cfg
	must(t, cfg.Validate())
	interval := cfg.RescueInterval
	if interval != RescueIntervalDefault {
		t.Fatalf("rescue interval %s, want the default", interval)
	}
	type node struct {
		rdb         *rdb
		rescuer     *Rescuer
		elector     *leadership.Elector
		stopRescuer func()
	}
	// start is one worker process's rescuer and its candidacy, on a Redis
	// client of its own.
	start := func(holder string) *node {
		r, err := newRDB(&cfg)
		must(t, err)
		n := &node{rdb: r, rescuer: NewRescuer(RescuerConfig{Runs: store.Runs, Submitter: f.worker.Submitter, Messages: r,
			Interval: interval, Logger: testLogger()})}
		n.elector = newRescuerElector(r.Leaders(), holder, interval, testLogger())
		n.stopRescuer = leadership.RunWhileLeader(n.elector, n.rescuer)
		t.Cleanup(func() { n.stopRescuer(); n.elector.Stop(); _ = r.close() })
		n.elector.Start(ctx)
		return n
	}
	leaders := f.queue.rdb.Leaders()
	leader := func() string {
		v, err := leaders.Leader(ctx, "rescuer")
		must(t, err)
		return v
	}
	a := start("a")
	waitFor(t, "a to lead", a.elector.IsLeader)
	b := start("b")
	waitFor(t, "a's first pass", func() bool { return a.rescuer.Stats().Passes > 0 })
	if b.elector.IsLeader() || b.rescuer.Stats().Passes != 0 {
		t.Fatal("b leads beside a")
	}

	// The crash: a's connection is gone, so it neither renews nor resigns.
	must(t, a.rdb.close())
	crashed := time.Now()
	a.stopRescuer()
	a.elector.Stop()
	if got := leader(); got != "a" {
		t.Fatalf("leader key = %q after the crash, want a's left to expire", got)
	}
	waitFor(t, "b's first rescue pass", func() bool { return b.rescuer.Stats().Passes > 0 })
	took := time.Since(crashed)
	t.Logf("crash → successor's first pass: %s (TTL %s, interval %s)", took.Round(10*time.Millisecond), electorTTL(interval), interval)
	if took > interval {
		t.Fatalf("successor's first pass came %s after the crash, want within one rescue interval (%s)", took, interval)
	}
}
