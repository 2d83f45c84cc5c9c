package tasks

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// testElector is an elector on r for holder that records its changes.
type testElector struct {
	*elector
	mu      sync.Mutex
	changes []bool
}

func newTestElector(tb testing.TB, r *rdb, holder string, ttl time.Duration) *testElector {
	tb.Helper()
	te := &testElector{}
	te.elector = &elector{rdb: r, name: "test", holder: holder, ttl: ttl, log: testLogger(),
		onChange: func(leader bool) {
			te.mu.Lock()
			defer te.mu.Unlock()
			te.changes = append(te.changes, leader)
		}}
	tb.Cleanup(te.Stop)
	return te
}

func (te *testElector) history() []bool {
	te.mu.Lock()
	defer te.mu.Unlock()
	return append([]bool(nil), te.changes...)
}

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

func (r *rdb) leaderOf(tb testing.TB, name string) string {
	tb.Helper()
	v, _ := r.client.Get(context.Background(), r.cfg.leaderKey(name)).Result()
	return v
}

func TestElector_OneLeaderThenTakeover(t *testing.T) {
	t.Parallel()
	r := newTestRDB(t)
	const ttl = 900 * time.Millisecond
	a, b := newTestElector(t, r, "a", ttl), newTestElector(t, r, "b", ttl)
	a.Start(context.Background())
	waitFor(t, "a to lead", a.isLeader)
	b.Start(context.Background())

	// b keeps trying (every TTL/3) and must keep failing while a renews.
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if b.isLeader() || !a.isLeader() {
			t.Fatalf("leaders: a=%v b=%v, want a only", a.isLeader(), b.isLeader())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := r.leaderOf(t, "test"); got != "a" {
		t.Fatalf("leader key = %q, want a", got)
	}

	// Stop resigns at once, so b takes over without waiting out the TTL.
	a.Stop()
	if a.isLeader() {
		t.Fatal("a still leader after Stop")
	}
	waitFor(t, "b to take over", b.isLeader)
	if got := r.leaderOf(t, "test"); got != "b" {
		t.Fatalf("leader key = %q, want b", got)
	}
	if h := a.history(); len(h) != 2 || !h[0] || h[1] {
		t.Fatalf("a's changes = %v, want [true false]", h)
	}
}

func TestElector_StepsDownWhenTakenOver(t *testing.T) {
	t.Parallel()
	r := newTestRDB(t)
	a := newTestElector(t, r, "a", 900*time.Millisecond)
	a.Start(context.Background())
	waitFor(t, "a to lead", a.isLeader)
	// Someone else now holds the key (a's lease expired during a pause, say):
	// a's next renewal finds it is not ours and steps down.
	if err := r.client.Set(context.Background(), r.cfg.leaderKey("test"), "other", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to step down", func() bool { return !a.isLeader() })
	a.Stop()
	if got := r.leaderOf(t, "test"); got != "other" {
		t.Fatalf("leader key = %q after a stopped, want other's untouched", got)
	}
}

func TestRDB_LeadershipOnlyWhileOurs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	if ok, err := r.elect(ctx, "l", "a", time.Minute); err != nil || !ok {
		t.Fatalf("elect a = %v, %v; want true", ok, err)
	}
	if ok, err := r.elect(ctx, "l", "b", time.Minute); err != nil || ok {
		t.Fatalf("elect b while a leads = %v, %v; want false", ok, err)
	}
	if ok, err := r.reelect(ctx, "l", "b", time.Minute); err != nil || ok {
		t.Fatalf("reelect b = %v, %v; want false", ok, err)
	}
	if ok, err := r.reelect(ctx, "l", "a", time.Minute); err != nil || !ok {
		t.Fatalf("reelect a = %v, %v; want true", ok, err)
	}
	must(t, r.resign(ctx, "l", "b"))
	if got := r.leaderOf(t, "l"); got != "a" {
		t.Fatalf("after b resigned, leader = %q, want a", got)
	}
	must(t, r.resign(ctx, "l", "a"))
	if got := r.leaderOf(t, "l"); got != "" {
		t.Fatalf("after a resigned, leader = %q, want none", got)
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
		rdb     *rdb
		rescuer *Rescuer
		elector *elector
	}
	start := func(holder string) *node {
		r, err := newRDB(&cfg)
		must(t, err)
		n := &node{rdb: r, rescuer: NewRescuer(RescuerConfig{Runs: store.Runs, Queue: f.queue, Messages: r,
			Interval: interval, Logger: testLogger()})}
		n.elector = newRescuerElector(r, holder, n.rescuer, interval, testLogger())
		t.Cleanup(func() { n.elector.Stop(); n.rescuer.Stop(); _ = r.close() })
		n.elector.Start(ctx)
		return n
	}
	a := start("a")
	waitFor(t, "a to lead", a.elector.isLeader)
	b := start("b")
	waitFor(t, "a's first pass", func() bool { return a.rescuer.Stats().Passes > 0 })
	if b.elector.isLeader() {
		t.Fatal("b leads beside a")
	}

	// The crash: a's connection is gone, so it neither renews nor resigns.
	must(t, a.rdb.close())
	crashed := time.Now()
	a.elector.Stop()
	if got := f.queue.broker.rdb.leaderOf(t, "rescuer"); got != "a" {
		t.Fatalf("leader key = %q after the crash, want a's left to expire", got)
	}
	waitFor(t, "b's first rescue pass", func() bool { return b.rescuer.Stats().Passes > 0 })
	took := time.Since(crashed)
	t.Logf("crash → successor's first pass: %s (TTL %s, interval %s)", took.Round(10*time.Millisecond), electorTTL(interval), interval)
	if took > interval {
		t.Fatalf("successor's first pass came %s after the crash, want within one rescue interval (%s)", took, interval)
	}
}
