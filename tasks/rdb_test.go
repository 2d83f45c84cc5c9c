package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// The scripts themselves are tested in package tasks/rdb; these tests and
// helpers are of the broker and the glue around it.

// newTestRDB connects to the shared Redis under a prefix of the test's own
// and deletes its keys when the test ends.
func newTestRDB(tb testing.TB) *rdb {
	tb.Helper()
	cfg := &Config{RedisURL: testenv.RedisURL(tb), Prefix: "tasks-rdb-test:" + orcheo.NewID()}
	r, err := newRDB(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		keys, _ := r.client.Keys(ctx, cfg.Prefix+":*").Result()
		if len(keys) > 0 {
			_ = r.client.Del(ctx, keys...).Err()
		}
		_ = r.close()
	})
	return r
}

// list returns a Redis list's contents.
func (r *rdb) list(tb testing.TB, key string) []string {
	tb.Helper()
	msgs, err := r.client.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		tb.Fatal(err)
	}
	if msgs == nil {
		msgs = []string{}
	}
	return msgs
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestBroker_ReapedConsumerRegistersAgain: a worker whose consumer was
// reaped (as after a pause longer than ConsumerTTL) registers again and
// keeps consuming, instead of taking messages no reaper would return.
func TestBroker_ReapedConsumerRegistersAgain(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	store := openStore(t, db.BackendSQLite, "")
	f := newFixture(t, store, "redis://"+mr.Addr()+"/0")
	f.start(t)
	r, err := newRDB(&f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.close() })
	ctx := context.Background()

	consumers, _, err := r.Reap(ctx, orcheo.DefaultQueue, time.Now().Add(time.Hour), 10)
	if err != nil || consumers == 0 {
		t.Fatalf("reap = %d consumers, %v; want the worker's", consumers, err)
	}
	run := f.createRun(t, okDefinition, `{"n":1}`)
	if err := f.queue.EnqueueRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if got := f.waitTerminal(t, run.ID); got.Status != orcheo.RunSucceeded {
		t.Fatalf("run %s (error %q), want succeeded", got.Status, got.Error)
	}
	if n, err := r.client.ZCard(ctx, r.ConsumersKey(orcheo.DefaultQueue)).Result(); err != nil || n == 0 {
		t.Fatalf("registered consumers = %d, %v; want the worker's again", n, err)
	}
	// The worker acks after the task returns, a moment after the run is
	// completed in the database.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := r.messageCounts(ctx, []*orcheo.Run{run})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message count of %s = %d after the run ended, want 0 (acked)", run.ID, got[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
