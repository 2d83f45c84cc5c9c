package maintenance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// TestRescuer_RescuedRunsGoToTheFront: a run whose worker died was in line
// before the backlog queued since, so the rescuer publishes it at the front
// of its queue, where the next free consumer takes it (issue #10: at the
// end of a 330-message queue, orphans waited 68–74 s). A run with no
// attempt left fails as "worker lost" and is not published.
func TestRescuer_RescuedRunsGoToTheFront(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, db.BackendSQLite, "", testenv.RedisURL(t))

	const retried = `{"retry":{"max_attempts":3},"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`
	var orphans []string
	for range 2 {
		run := e.createRun(t, retried)
		_, err := e.store.Runs.ClaimRun(ctx, run.ID, "dead-worker", time.Now().Add(-time.Second))
		must(t, err)
		orphans = append(orphans, run.ID)
	}
	last := e.createRun(t, okDefinition) // one attempt, used
	_, err := e.store.Runs.ClaimRun(ctx, last.ID, "dead-worker", time.Now().Add(-time.Second))
	must(t, err)
	var backlog []*orcheo.Run
	for range 3 {
		backlog = append(backlog, e.createRun(t, okDefinition))
	}
	for _, err := range (testQueue{e.rdb}).EnqueueRuns(ctx, backlog) {
		must(t, err)
	}

	rescuer := NewRescuer(RescuerConfig{Runs: e.store.Runs, Submitter: e.submitter, RDB: e.rdb, Logger: testLogger()})
	must(t, rescuer.runOnce(ctx))
	if st := rescuer.Stats(); st != (RescuerStats{Passes: 1, Rescued: 2, Failed: 1}) {
		t.Fatalf("stats = %+v, want 1 pass, 2 rescued, 1 failed", st)
	}
	got := list(t, e.rdb, e.rdb.QueueKey(orcheo.DefaultQueue))
	// Oldest lease first: the first orphan is at the very front.
	want := append(slices.Clone(orphans), backlog[0].ID, backlog[1].ID, backlog[2].ID)
	if !slices.Equal(got, want) {
		t.Fatalf("queue = %v, want %v (orphans first)", got, want)
	}
	run, err := e.store.Runs.FindRunByID(ctx, last.ID)
	must(t, err)
	if run.Status != orcheo.RunFailed || run.Error != "worker lost" {
		t.Fatalf("run with no attempt left: %s %q, want failed, worker lost", run.Status, run.Error)
	}
}

// TestRescuer_RepublishesLostMessages: a pending run not published for
// ReenqueueAfter is published again only when Redis holds no message of it
// (counted under its own queue): a long queue is not a loss.
func TestRescuer_RepublishesLostMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, db.BackendSQLite, "", testenv.RedisURL(t))
	lost, waiting := e.createRun(t, okDefinition), e.createRun(t, okDefinition)
	must(t, (testQueue{e.rdb}).EnqueueRun(ctx, waiting))

	rescuer := NewRescuer(RescuerConfig{Runs: e.store.Runs, Submitter: e.submitter, RDB: e.rdb, Logger: testLogger(),
		Now: func() time.Time { return time.Now().Add(time.Hour) }}) // past ReenqueueAfter
	must(t, rescuer.runOnce(ctx))
	if st := rescuer.Stats(); st.Reenqueued != 1 || st.EnqueueFailed != 0 {
		t.Fatalf("stats = %+v, want the lost run re-enqueued", st)
	}
	if got := counts(t, e.rdb, orcheo.DefaultQueue, lost.ID, waiting.ID); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("message counts = %v, want [1 1]: the lost run published, the waiting one not twice", got)
	}
}

// TestRescuer_RepublishesRunsUnderOldKeys is the upgrade path from the
// keys before hash tags: a pending run whose message sits under the old
// P:queue:<queue> and is counted in the old P:messages counts zero under
// the new keys, so the rescuer publishes it again on the new queue.
func TestRescuer_RepublishesRunsUnderOldKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, db.BackendSQLite, "", testenv.RedisURL(t))
	run := e.createRun(t, okDefinition)
	prefix := e.rdb.Prefix()
	old := `{"UUID":"` + prefix + `:task:x","Name":"execute_run","RoutingKey":"` + prefix + `:queue:default","Args":[{"Name":"run_id","Type":"string","Value":"` + run.ID + `"}]}`
	must(t, e.rdb.Client().RPush(ctx, prefix+":queue:default", old).Err())
	must(t, e.rdb.Client().HIncrBy(ctx, prefix+":messages", run.ID, 1).Err())

	rescuer := NewRescuer(RescuerConfig{Runs: e.store.Runs, Submitter: e.submitter, RDB: e.rdb, Logger: testLogger(),
		Now: func() time.Time { return time.Now().Add(time.Hour) }}) // past ReenqueueAfter
	must(t, rescuer.runOnce(ctx))
	if st := rescuer.Stats(); st.Reenqueued != 1 {
		t.Fatalf("stats = %+v, want the run re-enqueued", st)
	}
	if msgs := list(t, e.rdb, e.rdb.QueueKey(orcheo.DefaultQueue)); !slices.Equal(msgs, []string{run.ID}) {
		t.Fatalf("new queue = %q, want the run's new message", msgs)
	}
}

// TestRescuerFailover_WithinOneInterval: at the default rescue interval, a
// leader that crashes (no resign: its key stays until the TTL) is replaced
// and the successor's rescuer makes a pass within one rescue interval of
// the crash (issue #10: it came 21 s later).
func TestRescuerFailover_WithinOneInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, db.BackendSQLite, "", testenv.RedisURL(t))
	interval := RescuerIntervalDefault
	type node struct {
		client      interface{ Close() error }
		rescuer     *Rescuer
		elector     *leadership.Elector
		stopRescuer func()
	}
	// start is one worker process's rescuer and its candidacy, on a Redis
	// client of its own, as tasks.Worker builds them.
	start := func(holder string) *node {
		client, err := rdb.Open(testenv.RedisURL(t))
		must(t, err)
		r := rdb.New(client, e.rdb.Prefix())
		n := &node{client: client, rescuer: NewRescuer(RescuerConfig{Runs: e.store.Runs, Submitter: e.submitter, RDB: r,
			Interval: interval, Logger: testLogger()})}
		n.elector = leadership.NewElector(leadership.Config{Store: r.Leaders(), Name: RescuerLeadership, Holder: holder,
			TTL: RescuerElectorTTL(interval), Logger: testLogger()})
		n.stopRescuer = leadership.RunWhileLeader(n.elector, n.rescuer)
		t.Cleanup(func() { n.stopRescuer(); n.elector.Stop(); _ = client.Close() })
		n.elector.Start(ctx)
		return n
	}
	leader := func() string {
		v, err := e.rdb.Leaders().Leader(ctx, RescuerLeadership)
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
	must(t, a.client.Close())
	crashed := time.Now()
	a.stopRescuer()
	a.elector.Stop()
	if got := leader(); got != "a" {
		t.Fatalf("leader key = %q after the crash, want a's left to expire", got)
	}
	waitFor(t, "b's first rescue pass", func() bool { return b.rescuer.Stats().Passes > 0 })
	took := time.Since(crashed)
	t.Logf("crash → successor's first pass: %s (TTL %s, interval %s)", took.Round(10*time.Millisecond), RescuerElectorTTL(interval), interval)
	if took > interval {
		t.Fatalf("successor's first pass came %s after the crash, want within one rescue interval (%s)", took, interval)
	}
}
