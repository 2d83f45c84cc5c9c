package tasks

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

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

func wantList(tb testing.TB, r *rdb, key string, want ...string) {
	tb.Helper()
	if want == nil {
		want = []string{}
	}
	if got := r.list(tb, key); !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s = %q, want %q", key, got, want)
	}
}

func wantCounts(tb testing.TB, r *rdb, ids []string, want ...int) {
	tb.Helper()
	got, err := r.messageCounts(context.Background(), ids)
	if err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("message counts of %v = %v, want %v", ids, got, want)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// register heartbeats consumer on queue with a deadline of now + ttl.
func register(tb testing.TB, r *rdb, consumer, queue string, now time.Time, ttl time.Duration) {
	tb.Helper()
	if _, err := r.heartbeat(context.Background(), consumer, queue, now, ttl); err != nil {
		tb.Fatal(err)
	}
}

func TestRDB_DeliverAckRequeue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	plist := r.cfg.processingPrefix() + "c1"
	register(t, r, "c1", q, now, time.Minute)
	for _, m := range []string{"m1", "m2", "m3"} {
		must(t, r.publish(ctx, q, m, "run-"+m, time.Time{}))
	}

	t.Run("DeliverIntoProcessingList", func(t *testing.T) {
		for _, want := range []string{"m1", "m2"} {
			got, err := r.dequeue(ctx, q, "c1", time.Second)
			if err != nil || got != want {
				t.Fatalf("dequeue = %q, %v; want %q", got, err, want)
			}
		}
		wantList(t, r, plist, "m1", "m2")
		wantList(t, r, q, "m3")
	})
	t.Run("Ack", func(t *testing.T) {
		must(t, r.ack(ctx, "c1", "m1", "run-m1"))
		wantList(t, r, plist, "m2")
		wantCounts(t, r, []string{"run-m1", "run-m2"}, 0, 1)
		// A second ack finds nothing and must not uncount again.
		must(t, r.publish(ctx, r.cfg.queueKey("other"), "m1", "run-m1", time.Time{}))
		must(t, r.ack(ctx, "c1", "m1", "run-m1"))
		wantCounts(t, r, []string{"run-m1"}, 1)
	})
	t.Run("RequeueToTheFront", func(t *testing.T) {
		must(t, r.requeue(ctx, "c1", q, "m2", time.Time{}))
		wantList(t, r, plist)
		wantList(t, r, q, "m2", "m3")
		wantCounts(t, r, []string{"run-m2"}, 1) // still held in Redis
	})
	t.Run("RequeueWithETA", func(t *testing.T) {
		got, err := r.dequeue(ctx, q, "c1", time.Second)
		if err != nil || got != "m2" {
			t.Fatalf("dequeue = %q, %v; want m2", got, err)
		}
		eta := now.Add(time.Hour)
		must(t, r.requeue(ctx, "c1", q, "m2", eta))
		wantList(t, r, plist)
		score, err := r.client.ZScore(ctx, delayedKey(q), "m2").Result()
		if err != nil || int64(score) != ms(eta) {
			t.Fatalf("delayed score of m2 = %v, %v; want %d", score, err, ms(eta))
		}
	})
	t.Run("EmptyQueue", func(t *testing.T) {
		got, err := r.dequeue(ctx, r.cfg.queueKey("empty"), "c1", time.Second)
		if err != nil || got != "" {
			t.Fatalf("dequeue of an empty queue = %q, %v; want \"\", nil", got, err)
		}
	})
}

func TestRDB_PromoteDueInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	// Published out of ETA order; promotion follows the ETA.
	must(t, r.publish(ctx, q, "due2", "", now.Add(-time.Second)))
	must(t, r.publish(ctx, q, "due1", "", now.Add(-2*time.Second)))
	must(t, r.publish(ctx, q, "due3", "", now))
	must(t, r.publish(ctx, q, "later", "", now.Add(time.Hour)))
	must(t, r.publish(ctx, q, "ready", "", time.Time{}))

	n, err := r.promote(ctx, q, now, 2)
	if err != nil || n != 2 {
		t.Fatalf("promote = %d, %v; want 2", n, err)
	}
	wantList(t, r, q, "ready", "due1", "due2")
	if n, err = r.promote(ctx, q, now, 2); err != nil || n != 1 {
		t.Fatalf("second promote = %d, %v; want 1", n, err)
	}
	wantList(t, r, q, "ready", "due1", "due2", "due3")
	left, err := r.client.ZRange(ctx, delayedKey(q), 0, -1).Result()
	if err != nil || !reflect.DeepEqual(left, []string{"later"}) {
		t.Fatalf("delayed = %q, %v; want [later]", left, err)
	}
}

func TestRDB_ReapDeadConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	register(t, r, "dead", q, now, time.Second)
	register(t, r, "alive", q, now, time.Hour)
	for _, m := range []string{"m1", "m2", "m3", "m4"} {
		must(t, r.publish(ctx, q, m, "run-"+m, time.Time{}))
	}
	for _, c := range []string{"dead", "dead", "alive"} {
		if _, err := r.dequeue(ctx, q, c, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	wantList(t, r, q, "m4")

	consumers, messages, err := r.reap(ctx, now.Add(time.Minute), 10)
	if err != nil || consumers != 1 || messages != 2 {
		t.Fatalf("reap = %d consumers, %d messages, %v; want 1, 2", consumers, messages, err)
	}
	// Back at the front, oldest first; the live consumer keeps its own.
	wantList(t, r, q, "m1", "m2", "m4")
	wantList(t, r, r.cfg.processingPrefix()+"dead")
	wantList(t, r, r.cfg.processingPrefix()+"alive", "m3")
	if n, _ := r.client.Exists(ctx, r.cfg.consumerKey("dead")).Result(); n != 0 {
		t.Fatal("reaped consumer's heartbeat key still exists")
	}
	if _, err := r.client.ZScore(ctx, r.cfg.consumersKey(), "dead").Result(); err == nil {
		t.Fatal("reaped consumer still registered")
	}
	// Reaping moves messages without changing how many Redis holds.
	wantCounts(t, r, []string{"run-m1", "run-m2", "run-m3", "run-m4"}, 1, 1, 1, 1)
	if consumers, _, _ := r.reap(ctx, now.Add(time.Minute), 10); consumers != 0 {
		t.Fatalf("second reap found %d consumers, want 0", consumers)
	}
}

func TestRDB_MessageCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	register(t, r, "c1", q, now, time.Minute)
	must(t, r.publish(ctx, q, "a1", "run-a", time.Time{}))
	must(t, r.publish(ctx, q, "a2", "run-a", now.Add(time.Hour))) // delayed counts too
	must(t, r.publish(ctx, q, "x", "", time.Time{}))              // not a run's
	wantCounts(t, r, []string{"run-a", "run-b"}, 2, 0)

	for range 2 {
		if _, err := r.dequeue(ctx, q, "c1", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	must(t, r.ack(ctx, "c1", "a1", "run-a"))
	must(t, r.ack(ctx, "c1", "x", ""))
	wantCounts(t, r, []string{"run-a"}, 1)
	if n, _ := r.client.HLen(ctx, r.cfg.messagesKey()).Result(); n != 1 {
		t.Fatalf("messages hash has %d fields, want 1", n)
	}
	_, _ = r.client.ZRem(ctx, delayedKey(q), "a2").Result()
	must(t, r.publish(ctx, q, "a2", "run-a", time.Time{}))
	if _, err := r.dequeue(ctx, q, "c1", time.Second); err != nil {
		t.Fatal(err)
	}
	must(t, r.ack(ctx, "c1", "a2", "run-a"))
	must(t, r.ack(ctx, "c1", "a2", "run-a"))
	wantCounts(t, r, []string{"run-a"}, 1) // the hand-removed delayed copy is still counted
	if n, _ := r.client.HLen(ctx, r.cfg.messagesKey()).Result(); n != 1 {
		t.Fatalf("messages hash has %d fields, want 1", n)
	}
}

// TestRDB_PublishFront: a front publish goes ahead of the queue and is
// counted like any other; with an ETA it waits in the delayed set.
func TestRDB_PublishFront(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	must(t, r.publish(ctx, q, "m1", "run-1", time.Time{}))
	must(t, r.publish(ctx, q, "m2", "run-2", time.Time{}))
	must(t, r.publishFront(ctx, q, "orphan", "run-o", time.Time{}))
	must(t, r.publishFront(ctx, q, "later", "run-l", now.Add(time.Hour)))
	wantList(t, r, q, "orphan", "m1", "m2")
	if n, _ := r.client.ZCard(ctx, delayedKey(q)).Result(); n != 1 {
		t.Fatalf("delayed set has %d messages, want 1", n)
	}
	wantCounts(t, r, []string{"run-o", "run-l"}, 1, 1)
}

// TestRDB_ReapedConsumerCannotTake covers a consumer paused past its TTL:
// once reaped, it must not take a message until it registers again, or a
// crash before its next heartbeat would leave the message in a list no
// reaper knows (and the run's message count would stop the rescuer).
func TestRDB_ReapedConsumerCannotTake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	plist := r.cfg.processingPrefix() + "c1"
	register(t, r, "c1", q, now, time.Second)
	must(t, r.publish(ctx, q, "m1", "run-1", time.Time{}))
	must(t, r.publish(ctx, q, "m2", "run-2", time.Time{}))
	if _, err := r.dequeue(ctx, q, "c1", time.Second); err != nil {
		t.Fatal(err)
	}
	if c, _, err := r.reap(ctx, now.Add(time.Minute), 10); err != nil || c != 1 {
		t.Fatalf("reap = %d, %v; want 1 consumer", c, err)
	}

	_, err := r.dequeue(ctx, q, "c1", time.Second)
	if !errors.Is(err, errReaped) {
		t.Fatalf("dequeue by a reaped consumer: err = %v, want errReaped", err)
	}
	wantList(t, r, plist)
	wantList(t, r, q, "m1", "m2")

	// Its late ack of m1 (reaped back to the queue) removes nothing and
	// leaves the count to the copy in the queue.
	must(t, r.ack(ctx, "c1", "m1", "run-1"))
	wantCounts(t, r, []string{"run-1"}, 1)

	added, err := r.heartbeat(ctx, "c1", q, now, time.Minute)
	if err != nil || !added {
		t.Fatalf("heartbeat after reap = %v, %v; want registered anew", added, err)
	}
	if added, _ := r.heartbeat(ctx, "c1", q, now, time.Minute); added {
		t.Fatal("second heartbeat reported a new registration")
	}
	if got, err := r.dequeue(ctx, q, "c1", time.Second); err != nil || got != "m1" {
		t.Fatalf("dequeue after registering again = %q, %v; want m1", got, err)
	}
}

func TestRDB_Deregister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRDB(t)
	q, now := r.cfg.queueKey("q"), time.Now()
	register(t, r, "c1", q, now, time.Minute)
	for _, m := range []string{"m1", "m2", "m3"} {
		must(t, r.publish(ctx, q, m, "", time.Time{}))
	}
	for range 2 {
		if _, err := r.dequeue(ctx, q, "c1", time.Second); err != nil {
			t.Fatal(err)
		}
	}
	n, err := r.deregister(ctx, "c1", q)
	if err != nil || n != 2 {
		t.Fatalf("deregister = %d, %v; want 2", n, err)
	}
	wantList(t, r, q, "m1", "m2", "m3")
	if _, err := r.dequeue(ctx, q, "c1", time.Second); !errors.Is(err, errReaped) {
		t.Fatalf("dequeue after deregister: err = %v, want errReaped", err)
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

	consumers, _, err := r.reap(ctx, time.Now().Add(time.Hour), 10)
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
	if n, err := r.client.ZCard(ctx, r.cfg.consumersKey()).Result(); err != nil || n == 0 {
		t.Fatalf("registered consumers = %d, %v; want the worker's again", n, err)
	}
	// The worker acks after the task returns, a moment after the run is
	// completed in the database.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := r.messageCounts(ctx, []string{run.ID})
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
