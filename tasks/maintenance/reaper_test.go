package maintenance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// publishIDs publishes messages "<id>" for ids at the end of queue.
func publishIDs(tb testing.TB, r *rdb.RDB, queue string, ids ...string) {
	tb.Helper()
	msgs := make([]rdb.Message, len(ids))
	for i, id := range ids {
		msgs[i] = rdb.Message{Queue: queue, Body: id, RunID: id}
	}
	for _, err := range r.Publish(context.Background(), time.Now(), false, msgs...) {
		must(tb, err)
	}
}

// TestReaper_DeadConsumersBatchGoesToTheFront: a consumer killed with a
// batch taken (it never acks nor beats again: what a kill -9 leaves in
// Redis) has the whole batch put back at the front of its queue, in order,
// and is forgotten; a live consumer's list is left alone; message counts
// do not change (the messages are still held, now in the queue).
func TestReaper_DeadConsumersBatchGoesToTheFront(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRDB(t, testenv.RedisURL(t))
	const q = "default"
	publishIDs(t, r, q, "m0", "m1", "m2", "m3", "m4")
	now := time.Now()
	_, err := r.Heartbeat(ctx, q, "killed", now.Add(-time.Hour), time.Second)
	must(t, err)
	_, err = r.Heartbeat(ctx, q, "alive", now, time.Minute)
	must(t, err)
	if taken, err := r.Take(ctx, q, "killed", 3); err != nil || len(taken) != 3 {
		t.Fatalf("killed's take = %v, %v", taken, err)
	}
	if taken, err := r.Take(ctx, q, "alive", 1); err != nil || len(taken) != 1 {
		t.Fatalf("alive's take = %v, %v", taken, err)
	}

	reaper := NewReaper(ReaperConfig{RDB: r, Queues: []string{q}, Logger: testLogger()})
	must(t, reaper.runOnce(ctx))
	if st := reaper.Stats(); st != (ReaperStats{Passes: 1, Consumers: 1, Messages: 3}) {
		t.Fatalf("stats = %+v, want 1 consumer and its 3 messages reaped", st)
	}
	if got := list(t, r, r.QueueKey(q)); !slices.Equal(got, []string{"m0", "m1", "m2", "m4"}) {
		t.Fatalf("queue = %v, want the reaped batch first, in order", got)
	}
	if got := list(t, r, r.ProcessingKey(q, "killed")); len(got) != 0 {
		t.Fatalf("the killed consumer's list still holds %v", got)
	}
	if got := list(t, r, r.ProcessingKey(q, "alive")); !slices.Equal(got, []string{"m3"}) {
		t.Fatalf("the live consumer's list = %v, want [m3]", got)
	}
	live, err := r.Client().ZRange(ctx, r.ConsumersKey(q), 0, -1).Result()
	must(t, err)
	if !slices.Equal(live, []string{"alive"}) {
		t.Fatalf("registered consumers = %v, want only alive", live)
	}
	if got := counts(t, r, q, "m0", "m3", "m4"); !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("message counts = %v, want 1 each", got)
	}
	// The forgotten consumer must register again before it takes.
	if _, err := r.Take(ctx, q, "killed", 1); err == nil {
		t.Fatal("a reaped consumer took a message")
	}
}

// TestReaper_ConsumerTTL: a consumer is dead once its last heartbeat is
// more than its TTL (ORCHEO_CONSUMER_TTL) old, not before.
func TestReaper_ConsumerTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRDB(t, testenv.RedisURL(t))
	const q, ttl = "default", 30 * time.Second
	beat := time.Now()
	_, err := r.Heartbeat(ctx, q, "c", beat, ttl)
	must(t, err)
	publishIDs(t, r, q, "m0")
	_, err = r.Take(ctx, q, "c", 1)
	must(t, err)

	at := func(d time.Duration) *Reaper {
		return NewReaper(ReaperConfig{RDB: r, Queues: []string{q}, Logger: testLogger(),
			Now: func() time.Time { return beat.Add(d) }})
	}
	early := at(ttl - time.Second)
	must(t, early.runOnce(ctx))
	if st := early.Stats(); st.Consumers != 0 {
		t.Fatalf("reaped %d consumers %s after their heartbeat, within the TTL", st.Consumers, ttl-time.Second)
	}
	late := at(ttl + time.Second)
	must(t, late.runOnce(ctx))
	if st := late.Stats(); st.Consumers != 1 || st.Messages != 1 {
		t.Fatalf("stats %s after the heartbeat = %+v, want the consumer and its message reaped", ttl+time.Second, st)
	}
}

// TestReaper_BatchesAndQueues: one pass reaps every dead consumer of every
// queue, however many script calls of BatchSize that takes.
func TestReaper_BatchesAndQueues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRDB(t, testenv.RedisURL(t))
	past := time.Now().Add(-time.Hour)
	for _, q := range []string{"a", "b"} {
		for _, c := range []string{"c1", "c2", "c3"} {
			_, err := r.Heartbeat(ctx, q, c, past, time.Second)
			must(t, err)
			publishIDs(t, r, q, q+c)
			_, err = r.Take(ctx, q, c, 1)
			must(t, err)
		}
	}
	reaper := NewReaper(ReaperConfig{RDB: r, Queues: []string{"a", "b"}, BatchSize: 2, Logger: testLogger()})
	must(t, reaper.runOnce(ctx))
	if st := reaper.Stats(); st.Consumers != 6 || st.Messages != 6 {
		t.Fatalf("stats = %+v, want 6 consumers and 6 messages in one pass", st)
	}
	for _, q := range []string{"a", "b"} {
		if n, err := r.Client().LLen(ctx, r.QueueKey(q)).Result(); err != nil || n != 3 {
			t.Fatalf("queue %s holds %d (%v), want 3", q, n, err)
		}
	}
}

// TestReaper_StartReapsBeforeItReturns: Start makes its first pass before
// it returns, so a worker's consumers, started after it, take a dead
// consumer's messages before anything queued since.
func TestReaper_StartReapsBeforeItReturns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRDB(t, testenv.RedisURL(t))
	const q = "default"
	_, err := r.Heartbeat(ctx, q, "killed", time.Now().Add(-time.Hour), time.Second)
	must(t, err)
	publishIDs(t, r, q, "m0", "m1")
	_, err = r.Take(ctx, q, "killed", 1)
	must(t, err)
	reaper := NewReaper(ReaperConfig{RDB: r, Queues: []string{q}, Interval: time.Hour, Logger: testLogger()})
	reaper.Start(ctx)
	t.Cleanup(reaper.Stop)
	if got := list(t, r, r.QueueKey(q)); !slices.Equal(got, []string{"m0", "m1"}) {
		t.Fatalf("queue when Start returned = %v, want [m0 m1]", got)
	}
}
