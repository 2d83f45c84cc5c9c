package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestRescuer_RescuedRunsGoToTheFront: a run whose worker died was in line
// before the backlog queued since, so the rescuer publishes it at the front
// of its queue, where the next free consumer takes it (issue #10: at the
// end of a 330-message queue, orphans waited 68–74 s).
func TestRescuer_RescuedRunsGoToTheFront(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendSQLite, "")
	prefix := "tasks-rescuer-test:" + orcheo.NewID()
	f := newFixture(t, store, testenv.RedisURL(t), func(c *Config, _ *engine.Options) { c.Prefix = prefix })
	r := f.queue.broker.rdb
	t.Cleanup(func() {
		if keys, _ := r.client.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			_ = r.client.Del(ctx, keys...).Err()
		}
	})

	const retried = `{"retry":{"max_attempts":3},"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`
	var orphans []*orcheo.Run
	for range 2 {
		run := f.createRun(t, retried, `{}`)
		if _, err := store.Runs.ClaimRun(ctx, run.ID, "dead-worker", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, run)
	}
	var backlog []string
	for range 3 {
		run := f.createRun(t, okDefinition, `{}`)
		must(t, f.queue.EnqueueRun(ctx, run))
		backlog = append(backlog, run.ID)
	}

	rescuer := NewRescuer(RescuerConfig{Runs: store.Runs, Submitter: f.worker.Submitter, Messages: r, Logger: testLogger()})
	must(t, rescuer.runOnce(ctx))
	if st := rescuer.Stats(); st.Rescued != 2 {
		t.Fatalf("stats = %+v, want 2 rescued", st)
	}

	msgs := r.list(t, r.QueueKey(orcheo.DefaultQueue))
	var got []string
	for _, m := range msgs {
		sig, err := decodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, runIDOf(sig))
	}
	// Oldest lease first: the first orphan is at the very front.
	want := append([]string{orphans[0].ID, orphans[1].ID}, backlog...)
	if len(got) != len(want) {
		t.Fatalf("queue = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("queue = %v, want %v (orphans first)", got, want)
		}
	}
}
