package rdb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

var testSeq struct {
	sync.Mutex
	n int
}

// testPrefix is a key prefix no other test (or run) uses.
func testPrefix() string {
	testSeq.Lock()
	defer testSeq.Unlock()
	testSeq.n++
	return fmt.Sprintf("rdb-test:%d:%d:%d", time.Now().UnixNano(), testSeq.n, testSeq.n*7919)
}

// sharedRDB is an RDB on the shared Redis under a prefix of the test's own,
// whose keys are deleted when the test ends.
func sharedRDB(tb testing.TB) *RDB {
	tb.Helper()
	c, err := Open(testenv.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	r := New(c, testPrefix())
	tb.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := c.Keys(ctx, r.prefix+":*").Result(); len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
		_ = c.Close()
	})
	return r
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func mustAll(tb testing.TB, errs []error) {
	tb.Helper()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("message %d: %v", i, err)
		}
	}
}

func wantList(tb testing.TB, r *RDB, key string, want ...string) {
	tb.Helper()
	got, err := r.client.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		tb.Fatal(err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s = %q, want %q", key, got, want)
	}
}

func wantCounts(tb testing.TB, r *RDB, queue string, ids []string, want ...int) {
	tb.Helper()
	queues := make([]string, len(ids))
	for i := range ids {
		queues[i] = queue
	}
	got, err := r.MessageCounts(context.Background(), queues, ids)
	if err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("message counts of %v = %v, want %v", ids, got, want)
	}
}

func publish(tb testing.TB, r *RDB, queue string, front bool, eta time.Time, bodies ...string) {
	tb.Helper()
	msgs := make([]Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = Message{Queue: queue, Body: b, RunID: "run-" + b, ETA: eta}
	}
	mustAll(tb, r.Publish(context.Background(), time.Now(), front, msgs...))
}

func register(tb testing.TB, r *RDB, queue, consumer string, now time.Time, ttl time.Duration) {
	tb.Helper()
	if _, err := r.Heartbeat(context.Background(), queue, consumer, now, ttl); err != nil {
		tb.Fatal(err)
	}
}

func take(tb testing.TB, r *RDB, queue, consumer string, n int, want ...string) {
	tb.Helper()
	got, err := r.Take(context.Background(), queue, consumer, n)
	if err != nil {
		tb.Fatalf("take %d: %v", n, err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("take %d = %q, want %q", n, got, want)
	}
}

// scenarios exercise every script and command of the layer; each runs on
// one server and on a Redis Cluster.
var scenarios = []struct {
	name string
	fn   func(t *testing.T, r *RDB)
}{
	{"TakeAckRequeue", testTakeAckRequeue},
	{"TakeNeverMoreThanAsked", testTakeBatch},
	{"AckBatch", testAckBatch},
	{"AckWritesTaskStates", testAckWithResults},
	{"PromoteDueInBatches", testPromote},
	{"ReapKilledConsumersBatch", testReap},
	{"MessageCountsPerQueue", testMessageCounts},
	{"PublishFront", testPublishFront},
	{"PublishManyQueues", testPublishManyQueues},
	{"ReapedConsumerCannotTake", testReapedCannotTake},
	{"Deregister", testDeregister},
	{"Wait", testWait},
	{"Stats", testStats},
	{"Webhook", testWebhook},
}

func TestScripts(t *testing.T) {
	t.Parallel()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.fn(t, sharedRDB(t))
		})
	}
}

// TestScripts_OnRedisCluster runs every scenario through a Cluster client
// on a real three-node cluster: a script that touched keys of two slots
// would fail with CROSSSLOT, or with "non local key" for a key it builds
// itself (the reaper's).
func TestScripts_OnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs})
	t.Cleanup(func() { _ = c.Close() })
	// The queues of the scenarios must not all land on one node.
	slots := map[int]bool{}
	for _, q := range []string{"q", "other", "a", "b", "empty"} {
		slots[Slot(New(c, "p").QueueKey(q))/5462] = true
	}
	if len(slots) < 2 {
		t.Fatalf("the scenarios' queues hash to one third of the slots: %v", slots)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.fn(t, New(c, testPrefix()))
		})
	}
}

func testTakeAckRequeue(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	plist := r.ProcessingKey("q", "c1")
	register(t, r, "q", "c1", now, time.Minute)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3")

	take(t, r, "q", "c1", 2, "m1", "m2")
	wantList(t, r, plist, "m1", "m2")
	wantList(t, r, r.QueueKey("q"), "m3")

	n, err := r.Ack(ctx, "q", "c1", Ack{Body: "m1", RunID: "run-m1"})
	if err != nil || n != 1 {
		t.Fatalf("ack = %d, %v; want 1", n, err)
	}
	wantList(t, r, plist, "m2")
	wantCounts(t, r, "q", []string{"run-m1", "run-m2"}, 0, 1)

	if ok, err := r.Requeue(ctx, "q", "c1", "m2", time.Time{}); err != nil || !ok {
		t.Fatalf("requeue = %v, %v; want true", ok, err)
	}
	wantList(t, r, plist)
	wantList(t, r, r.QueueKey("q"), "m2", "m3")
	wantCounts(t, r, "q", []string{"run-m2"}, 1) // still held in Redis
	if ok, _ := r.Requeue(ctx, "q", "c1", "m2", time.Time{}); ok {
		t.Fatal("a second requeue of m2 found it held")
	}

	take(t, r, "q", "c1", 1, "m2")
	eta := now.Add(time.Hour)
	if ok, err := r.Requeue(ctx, "q", "c1", "m2", eta); err != nil || !ok {
		t.Fatalf("requeue with an ETA = %v, %v", ok, err)
	}
	score, err := r.client.ZScore(ctx, r.DelayedKey("q"), "m2").Result()
	if err != nil || int64(score) != eta.UnixMilli() {
		t.Fatalf("delayed score of m2 = %v, %v; want %d", score, err, eta.UnixMilli())
	}
}

func testTakeBatch(t *testing.T, r *RDB) {
	now := time.Now()
	register(t, r, "q", "c1", now, time.Minute)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3", "m4", "m5")
	take(t, r, "q", "c1", 3, "m1", "m2", "m3")
	wantList(t, r, r.ProcessingKey("q", "c1"), "m1", "m2", "m3")
	// Fewer ready than asked: what there is.
	take(t, r, "q", "c1", 10, "m4", "m5")
	take(t, r, "q", "c1", 10)
	wantList(t, r, r.ProcessingKey("q", "c1"), "m1", "m2", "m3", "m4", "m5")
	if msgs, err := r.Take(context.Background(), "q", "c1", 0); err != nil || len(msgs) != 0 {
		t.Fatalf("take 0 = %q, %v", msgs, err)
	}
}

func testAckBatch(t *testing.T, r *RDB) {
	ctx := context.Background()
	register(t, r, "q", "c1", time.Now(), time.Minute)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3", "m4")
	mustAll(t, r.Publish(ctx, time.Now(), false, Message{Queue: "q", Body: "x"})) // not a run's
	take(t, r, "q", "c1", 5, "m1", "m2", "m3", "m4", "x")
	n, err := r.Ack(ctx, "q", "c1",
		Ack{Body: "m1", RunID: "run-m1"}, Ack{Body: "m3", RunID: "run-m3"}, Ack{Body: "x"}, Ack{Body: "m4", RunID: "run-m4"})
	if err != nil || n != 4 {
		t.Fatalf("ack of 4 = %d, %v", n, err)
	}
	wantList(t, r, r.ProcessingKey("q", "c1"), "m2")
	wantCounts(t, r, "q", []string{"run-m1", "run-m2", "run-m3", "run-m4"}, 0, 1, 0, 0)
	// A message acked again, or never held (reaped back meanwhile), is not
	// uncounted again: m1 is back in the queue by another publish.
	publish(t, r, "q", false, time.Time{}, "m1")
	if n, err := r.Ack(ctx, "q", "c1", Ack{Body: "m1", RunID: "run-m1"}, Ack{Body: "m3", RunID: "run-m3"}); err != nil || n != 0 {
		t.Fatalf("second ack = %d, %v; want 0", n, err)
	}
	wantCounts(t, r, "q", []string{"run-m1", "run-m3"}, 1, 0)
	if n, _ := r.client.HLen(ctx, r.MessagesKey("q")).Result(); n != 2 {
		t.Fatalf("messages hash has %d fields, want 2 (run-m1, run-m2): uncounted runs are deleted", n)
	}
	if n, err := r.Ack(ctx, "q", "c1"); err != nil || n != 0 {
		t.Fatalf("ack of none = %d, %v", n, err)
	}
}

// testAckWithResults: an ack carrying task states writes them, with their
// expiry, in the ack's round trip (one pipeline: the states' keys are in
// other slots than the queue's, so on a Cluster the pipeline is split).
func testAckWithResults(t *testing.T, r *RDB) {
	ctx := context.Background()
	register(t, r, "q", "c1", time.Now(), time.Minute)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3")
	take(t, r, "q", "c1", 3, "m1", "m2", "m3")
	uuids := []string{"task_" + testPrefix(), "task_" + testPrefix()}
	n, err := r.Ack(ctx, "q", "c1",
		Ack{Body: "m1", RunID: "run-m1", Result: &TaskResult{TaskUUID: uuids[0], State: []byte(`{"State":"SUCCESS"}`), TTL: time.Hour}},
		Ack{Body: "m2", RunID: "run-m2"},
		Ack{Body: "m3", RunID: "run-m3", Result: &TaskResult{TaskUUID: uuids[1], State: []byte(`{"State":"FAILURE"}`)}})
	if err != nil || n != 3 {
		t.Fatalf("ack of 3 with 2 states = %d, %v", n, err)
	}
	wantList(t, r, r.ProcessingKey("q", "c1"))
	wantCounts(t, r, "q", []string{"run-m1", "run-m2", "run-m3"}, 0, 0, 0)
	for i, want := range []string{`{"State":"SUCCESS"}`, `{"State":"FAILURE"}`} {
		key := r.ResultKeyPrefix() + uuids[i]
		if got, err := r.client.Get(ctx, key).Result(); err != nil || got != want {
			t.Fatalf("state of %s = %q, %v; want %q", key, got, err, want)
		}
	}
	if ttl := r.client.PTTL(ctx, r.ResultKeyPrefix()+uuids[0]).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl of the first state = %s, want at most 1h", ttl)
	}
	if ttl := r.client.PTTL(ctx, r.ResultKeyPrefix()+uuids[1]).Val(); ttl != -1 {
		t.Fatalf("ttl of a state with TTL 0 = %s, want none (-1)", ttl)
	}
}

func testPromote(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	// Published out of ETA order; promotion follows the ETA.
	mustAll(t, r.Publish(ctx, now.Add(-time.Hour), false,
		Message{Queue: "q", Body: "due2", ETA: now.Add(-time.Second)},
		Message{Queue: "q", Body: "due1", ETA: now.Add(-2 * time.Second)},
		Message{Queue: "q", Body: "due3", ETA: now},
		Message{Queue: "q", Body: "later", ETA: now.Add(time.Hour)},
		Message{Queue: "q", Body: "ready"}))
	n, err := r.Promote(ctx, "q", now, 2)
	if err != nil || n != 2 {
		t.Fatalf("promote = %d, %v; want 2", n, err)
	}
	wantList(t, r, r.QueueKey("q"), "ready", "due1", "due2")
	if n, err = r.Promote(ctx, "q", now, 2); err != nil || n != 1 {
		t.Fatalf("second promote = %d, %v; want 1", n, err)
	}
	wantList(t, r, r.QueueKey("q"), "ready", "due1", "due2", "due3")
	left, err := r.client.ZRange(ctx, r.DelayedKey("q"), 0, -1).Result()
	if err != nil || !reflect.DeepEqual(left, []string{"later"}) {
		t.Fatalf("delayed = %q, %v; want [later]", left, err)
	}
	// An ETA already past at publish is ready at once.
	mustAll(t, r.Publish(ctx, now, false, Message{Queue: "q", Body: "past", ETA: now.Add(-time.Minute)}))
	wantList(t, r, r.QueueKey("q"), "ready", "due1", "due2", "due3", "past")
}

// testReap: a consumer killed with a batch taken (it never acks, never
// beats again) has its whole batch returned to the front of its queue, in
// order, by any consumer's reaper.
func testReap(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	register(t, r, "q", "dead", now, time.Second)
	register(t, r, "q", "alive", now, time.Hour)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3", "m4", "m5")
	take(t, r, "q", "dead", 3, "m1", "m2", "m3")
	take(t, r, "q", "alive", 1, "m4")

	consumers, messages, err := r.Reap(ctx, "q", now.Add(time.Minute), 10)
	if err != nil || consumers != 1 || messages != 3 {
		t.Fatalf("reap = %d consumers, %d messages, %v; want 1, 3", consumers, messages, err)
	}
	wantList(t, r, r.QueueKey("q"), "m1", "m2", "m3", "m5")
	wantList(t, r, r.ProcessingKey("q", "dead"))
	wantList(t, r, r.ProcessingKey("q", "alive"), "m4")
	if n, _ := r.client.Exists(ctx, r.ConsumerKey("q", "dead")).Result(); n != 0 {
		t.Fatal("reaped consumer's heartbeat key still exists")
	}
	if _, err := r.client.ZScore(ctx, r.ConsumersKey("q"), "dead").Result(); err == nil {
		t.Fatal("reaped consumer still registered")
	}
	// Reaping moves messages without changing how many Redis holds.
	wantCounts(t, r, "q", []string{"run-m1", "run-m2", "run-m3", "run-m4", "run-m5"}, 1, 1, 1, 1, 1)
	if consumers, _, _ := r.Reap(ctx, "q", now.Add(time.Minute), 10); consumers != 0 {
		t.Fatalf("second reap found %d consumers, want 0", consumers)
	}
	// Reaping is per queue: another queue's dead consumer stays.
	register(t, r, "other", "dead2", now, time.Second)
	if consumers, _, _ := r.Reap(ctx, "q", now.Add(time.Minute), 10); consumers != 0 {
		t.Fatalf("reap of q took %d consumers of another queue", consumers)
	}
}

func testMessageCounts(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	mustAll(t, r.Publish(ctx, now, false,
		Message{Queue: "a", Body: "a1", RunID: "run-a"},
		Message{Queue: "a", Body: "a2", RunID: "run-a", ETA: now.Add(time.Hour)}, // delayed counts too
		Message{Queue: "b", Body: "b1", RunID: "run-b"},
		Message{Queue: "a", Body: "x"})) // not a run's
	got, err := r.MessageCounts(ctx, []string{"a", "b", "b", "a"}, []string{"run-a", "run-b", "run-a", "run-b"})
	if err != nil || !reflect.DeepEqual(got, []int{2, 1, 0, 0}) {
		t.Fatalf("counts = %v, %v; want [2 1 0 0]: counted under each run's own queue", got, err)
	}
	if got, err := r.MessageCounts(ctx, nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("counts of none = %v, %v", got, err)
	}
	if _, err := r.MessageCounts(ctx, []string{"a"}, nil); err == nil {
		t.Fatal("counts with mismatched queues and runs: no error")
	}
}

// testPublishFront: a front publish goes ahead of the queue and is counted
// like any other; with an ETA it waits in the delayed set. A batch at the
// front ends up as publishing each in order would leave it: the last first.
func testPublishFront(t *testing.T, r *RDB) {
	ctx := context.Background()
	publish(t, r, "q", false, time.Time{}, "m1", "m2")
	publish(t, r, "q", true, time.Time{}, "o1", "o2")
	publish(t, r, "q", true, time.Now().Add(time.Hour), "later")
	wantList(t, r, r.QueueKey("q"), "o2", "o1", "m1", "m2")
	if n, _ := r.client.ZCard(ctx, r.DelayedKey("q")).Result(); n != 1 {
		t.Fatalf("delayed set has %d messages, want 1", n)
	}
	wantCounts(t, r, "q", []string{"run-o1", "run-o2", "run-later"}, 1, 1, 1)
}

func testPublishManyQueues(t *testing.T, r *RDB) {
	var msgs []Message
	for i := range publishBatch + 3 { // two script calls for q
		msgs = append(msgs, Message{Queue: "q", Body: fmt.Sprintf("q%d", i), RunID: fmt.Sprintf("run-q%d", i)})
		if i < 3 {
			msgs = append(msgs, Message{Queue: "other", Body: fmt.Sprintf("o%d", i), RunID: fmt.Sprintf("run-o%d", i)})
		}
	}
	mustAll(t, r.Publish(context.Background(), time.Now(), false, msgs...))
	ready, _, err := r.QueueDepth(context.Background(), "q")
	if err != nil || ready != publishBatch+3 {
		t.Fatalf("depth of q = %d, %v; want %d", ready, err, publishBatch+3)
	}
	wantList(t, r, r.QueueKey("other"), "o0", "o1", "o2")
	got, _ := r.client.LIndex(context.Background(), r.QueueKey("q"), publishBatch).Result()
	if got != fmt.Sprintf("q%d", publishBatch) {
		t.Fatalf("q[%d] = %q: order lost across script calls", publishBatch, got)
	}
	if errs := r.Publish(context.Background(), time.Now(), false); len(errs) != 0 {
		t.Fatalf("publish of none = %v", errs)
	}
}

// testReapedCannotTake covers a consumer paused past its TTL: once reaped,
// it must not take a message until it registers again, or a crash before
// its next heartbeat would leave the message in a list no reaper knows
// (and the run's message count would stop the rescuer).
func testReapedCannotTake(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	register(t, r, "q", "c1", now, time.Second)
	publish(t, r, "q", false, time.Time{}, "m1", "m2")
	take(t, r, "q", "c1", 1, "m1")
	if c, _, err := r.Reap(ctx, "q", now.Add(time.Minute), 10); err != nil || c != 1 {
		t.Fatalf("reap = %d, %v; want 1 consumer", c, err)
	}
	if _, err := r.Take(ctx, "q", "c1", 2); !errors.Is(err, ErrReaped) {
		t.Fatalf("take by a reaped consumer: err = %v, want ErrReaped", err)
	}
	wantList(t, r, r.ProcessingKey("q", "c1"))
	wantList(t, r, r.QueueKey("q"), "m1", "m2")
	// Its late ack of m1 (reaped back to the queue) removes nothing and
	// leaves the count to the copy in the queue.
	if n, err := r.Ack(ctx, "q", "c1", Ack{Body: "m1", RunID: "run-m1"}); err != nil || n != 0 {
		t.Fatalf("late ack = %d, %v", n, err)
	}
	wantCounts(t, r, "q", []string{"run-m1"}, 1)

	added, err := r.Heartbeat(ctx, "q", "c1", now, time.Minute)
	if err != nil || !added {
		t.Fatalf("heartbeat after reap = %v, %v; want registered anew", added, err)
	}
	if added, _ := r.Heartbeat(ctx, "q", "c1", now, time.Minute); added {
		t.Fatal("second heartbeat reported a new registration")
	}
	if pttl := r.client.PTTL(ctx, r.ConsumerKey("q", "c1")).Val(); pttl <= 0 || pttl > time.Minute {
		t.Fatalf("heartbeat key ttl = %s, want within a minute", pttl)
	}
	take(t, r, "q", "c1", 2, "m1", "m2")
}

func testDeregister(t *testing.T, r *RDB) {
	ctx := context.Background()
	register(t, r, "q", "c1", time.Now(), time.Minute)
	publish(t, r, "q", false, time.Time{}, "m1", "m2", "m3")
	take(t, r, "q", "c1", 2, "m1", "m2")
	msgs, err := r.Processing(ctx, "q", "c1")
	if err != nil || !reflect.DeepEqual(msgs, []string{"m1", "m2"}) {
		t.Fatalf("processing = %q, %v", msgs, err)
	}
	n, err := r.Deregister(ctx, "q", "c1")
	if err != nil || n != 2 {
		t.Fatalf("deregister = %d, %v; want 2", n, err)
	}
	wantList(t, r, r.QueueKey("q"), "m1", "m2", "m3")
	if _, err := r.Take(ctx, "q", "c1", 1); !errors.Is(err, ErrReaped) {
		t.Fatalf("take after deregister: err = %v, want ErrReaped", err)
	}
}

func testWait(t *testing.T, r *RDB) {
	ctx := context.Background()
	if ok, err := r.Wait(ctx, "empty", 100*time.Millisecond); err != nil || ok {
		t.Fatalf("wait on an empty queue = %v, %v; want false after the timeout", ok, err)
	}
	publish(t, r, "q", false, time.Time{}, "m1", "m2")
	if ok, err := r.Wait(ctx, "q", time.Second); err != nil || !ok {
		t.Fatalf("wait on a queue with messages = %v, %v; want true", ok, err)
	}
	wantList(t, r, r.QueueKey("q"), "m1", "m2") // left as it was
}

func testStats(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now()
	publish(t, r, "q", false, time.Time{}, "m1", "m2")
	publish(t, r, "q", false, now.Add(time.Hour), "d1")
	ready, delayed, err := r.QueueDepth(ctx, "q")
	if err != nil || ready != 2 || delayed != 1 {
		t.Fatalf("depth = %d, %d, %v; want 2, 1", ready, delayed, err)
	}
	readyMsgs, delayedMsgs, err := r.Pending(ctx, "q")
	if err != nil || !reflect.DeepEqual(readyMsgs, []string{"m1", "m2"}) || !reflect.DeepEqual(delayedMsgs, []string{"d1"}) {
		t.Fatalf("pending = %q, %q, %v", readyMsgs, delayedMsgs, err)
	}
	register(t, r, "q", "c1", now, time.Minute)
	register(t, r, "other", "c2", now, time.Minute)
	register(t, r, "other", "gone", now.Add(-time.Hour), time.Minute)
	if n, err := r.ConsumersOnline(ctx, []string{"q", "other"}, now); err != nil || n != 2 {
		t.Fatalf("consumers online = %d, %v; want 2", n, err)
	}
	if n, err := r.ConsumersOnline(ctx, nil, now); err != nil || n != 0 {
		t.Fatalf("consumers online of no queue = %d, %v", n, err)
	}
}

func testWebhook(t *testing.T, r *RDB) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	for i, want := range []bool{true, true, false} {
		ok, retry, err := r.WebhookAllow(ctx, "wf", 2, 60000, 1000, now)
		if err != nil || ok != want || (!ok && retry < 1) {
			t.Fatalf("allow %d = %v, %d, %v; want %v", i, ok, retry, err, want)
		}
	}
	if v, err := r.WebhookRemember(ctx, "sig", "a", time.Minute); err != nil || v != "a" {
		t.Fatalf("remember = %q, %v", v, err)
	}
	if v, _ := r.WebhookRemember(ctx, "sig", "b", time.Minute); v != "a" {
		t.Fatalf("second remember = %q, want a", v)
	}
	must(t, r.WebhookForget(ctx, "sig", "b")) // not its value: kept
	if v, _ := r.WebhookRemember(ctx, "sig", "c", time.Minute); v != "a" {
		t.Fatalf("remember after a foreign forget = %q, want a", v)
	}
	must(t, r.WebhookForget(ctx, "sig", "a"))
	if v, _ := r.WebhookRemember(ctx, "sig", "c", time.Minute); v != "c" {
		t.Fatalf("remember after forget = %q, want c", v)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	r := New(redis.NewClient(&redis.Options{}), "P")
	for got, want := range map[string]string{
		r.QueueKey("q"):             "P:{q}:queue",
		r.DelayedKey("q"):           "P:{q}:delayed",
		r.ProcessingKey("q", "w:q"): "P:{q}:processing:w:q",
		r.ConsumersKey("q"):         "P:{q}:consumers",
		r.ConsumerKey("q", "w:q"):   "P:{q}:consumer:w:q",
		r.MessagesKey("q"):          "P:{q}:messages",
		r.ResultKeyPrefix() + "id":  "P:result:id",
		r.WebhookRateKey("k"):       "P:webhook:rate:k",
		r.WebhookSeenKey("k"):       "P:webhook:seen:k",
		r.CancelChannel():           "P:cancel",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	// Slot agrees with CLUSTER KEYSLOT.
	if Slot("foo") != 12182 || Slot("123456789") != 12739 || Slot("a{foo}b") != 12182 || Slot("{}foo") != Slot("{}foo") {
		t.Errorf("Slot(foo) = %d, Slot(123456789) = %d, Slot(a{foo}b) = %d", Slot("foo"), Slot("123456789"), Slot("a{foo}b"))
	}
	for _, bad := range []string{"", "a b", "a{b", "}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with prefix %q did not panic", bad)
				}
			}()
			New(redis.NewClient(&redis.Options{}), bad)
		}()
	}
}

// TestScripts_KeysInOneSlot runs every scenario on one server while a hook
// records the keys of each script call, and checks that each call's keys,
// and the keys the reaper builds from its arguments, hash to one Cluster
// slot (CRC16 of the hash tag) — the rule TestScripts_OnRedisCluster checks
// on a real cluster.
func TestScripts_KeysInOneSlot(t *testing.T) {
	t.Parallel()
	rec := &keyRecorder{}
	for _, sc := range scenarios {
		r := sharedRDB(t)
		r.client.AddHook(rec)
		sc.fn(t, r)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.calls < len(scenarios) {
		t.Fatalf("recorded %d script calls", rec.calls)
	}
	for _, keys := range rec.multi {
		for _, k := range keys[1:] {
			if Slot(k) != Slot(keys[0]) {
				t.Errorf("script keys %q are in slots %d and %d", keys, Slot(keys[0]), Slot(k))
			}
		}
	}
	if len(rec.multi) == 0 {
		t.Fatal("no multi-key script call recorded")
	}
}

// keyRecorder is a go-redis hook that records the KEYS (and the key
// prefixes passed as arguments, "...:" ending in a hash-tagged stem) of
// every EVAL and EVALSHA, alone or pipelined.
type keyRecorder struct {
	mu    sync.Mutex
	calls int
	multi [][]string
}

func (k *keyRecorder) record(cmd redis.Cmder) {
	args := cmd.Args()
	name := strings.ToLower(fmt.Sprint(args[0]))
	if name != "eval" && name != "evalsha" {
		return
	}
	n, _ := args[2].(int)
	keys := make([]string, 0, n)
	for _, a := range args[3 : 3+n] {
		keys = append(keys, fmt.Sprint(a))
	}
	for _, a := range args[3+n:] {
		if s, ok := a.(string); ok && strings.Contains(s, "}:") && strings.HasSuffix(s, ":") {
			keys = append(keys, s+"consumer-id") // a key the script builds
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if len(keys) > 1 {
		k.multi = append(k.multi, keys)
	}
}

func (k *keyRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k *keyRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		k.record(cmd)
		return next(ctx, cmd)
	}
}

func (k *keyRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			k.record(c)
		}
		return next(ctx, cmds)
	}
}

// commandCalls is INFO commandstats's calls per command (lower case).
func commandCalls(tb testing.TB, c redis.UniversalClient) map[string]int {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls int
		if _, err := fmt.Sscanf(rest, "calls=%d", &calls); err == nil {
			out[strings.TrimPrefix(name, "cmdstat_")] = calls
		}
	}
	return out
}

// roundTrips is a go-redis hook counting round trips: one per command sent
// alone, one per pipeline.
type roundTrips struct {
	mu sync.Mutex
	n  int
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestPublish_ManyInOneRoundTrip publishes 100 runs on two queues and
// counts, on a private server, what it cost: one round trip, one EVALSHA
// per queue and nothing else; a server that lost its scripts (restarted)
// costs one more round trip of EVAL.
func TestPublish_ManyInOneRoundTrip(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	c, err := Open(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := New(c, "p")
	ctx := context.Background()
	must(t, publishCmd.Load(ctx, c).Err())
	var msgs []Message
	for i := range 100 {
		msgs = append(msgs, Message{Queue: []string{"a", "b"}[i%2], Body: fmt.Sprint("m", i), RunID: fmt.Sprint("run-", i)})
	}
	must(t, c.ConfigResetStat(ctx).Err())
	trips := &roundTrips{}
	c.AddHook(trips)
	mustAll(t, r.Publish(ctx, time.Now(), false, msgs...))
	trips.mu.Lock()
	n := trips.n
	trips.mu.Unlock()
	calls := commandCalls(t, c)
	if n != 1 || calls["evalsha"] != 2 || calls["rpush"] != 100 || calls["hincrby"] != 100 {
		t.Fatalf("publish of 100 on 2 queues: %d round trips, commands %v; want 1 round trip of 2 EVALSHA", n, calls)
	}
	for _, q := range []string{"a", "b"} {
		if ready, _, _ := r.QueueDepth(ctx, q); ready != 50 {
			t.Fatalf("queue %s holds %d, want 50", q, ready)
		}
	}

	must(t, c.ScriptFlush(ctx).Err())
	must(t, c.ConfigResetStat(ctx).Err())
	trips.mu.Lock()
	trips.n = 0
	trips.mu.Unlock()
	mustAll(t, r.Publish(ctx, time.Now(), false, msgs...))
	trips.mu.Lock()
	n = trips.n
	trips.mu.Unlock()
	calls = commandCalls(t, c)
	if n != 2 || calls["evalsha"] != 2 || calls["eval"] != 2 {
		t.Fatalf("publish after SCRIPT FLUSH: %d round trips, commands %v; want EVALSHA then EVAL of both", n, calls)
	}
	if ready, _, _ := r.QueueDepth(ctx, "a"); ready != 100 {
		t.Fatalf("queue a holds %d after the second publish, want 100", ready)
	}
}

// TestAck_StatesInTheAcksRoundTrip acks 10 messages, 8 with task states,
// on a private server: one round trip of one EVALSHA and 8 SETs; a server
// that lost its scripts costs one more round trip, of the EVAL alone, and
// the states are written once.
func TestAck_StatesInTheAcksRoundTrip(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	c, err := Open(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := New(c, "p")
	ctx := context.Background()
	must(t, ackCmd.Load(ctx, c).Err())
	trips := &roundTrips{}
	c.AddHook(trips)
	for round, flush := range []bool{false, true} {
		register(t, r, "q", "c1", time.Now(), time.Minute)
		var bodies []string
		for i := range 10 {
			bodies = append(bodies, fmt.Sprint("m", round, "-", i))
		}
		publish(t, r, "q", false, time.Time{}, bodies...)
		take(t, r, "q", "c1", 10, bodies...)
		acks := make([]Ack, len(bodies))
		for i, b := range bodies {
			acks[i] = Ack{Body: b, RunID: "run-" + b}
			if i < 8 {
				acks[i].Result = &TaskResult{TaskUUID: b, State: []byte("state-" + b), TTL: time.Minute}
			}
		}
		if flush {
			must(t, c.ScriptFlush(ctx).Err())
		}
		must(t, c.ConfigResetStat(ctx).Err())
		trips.mu.Lock()
		trips.n = 0
		trips.mu.Unlock()
		if n, err := r.Ack(ctx, "q", "c1", acks...); err != nil || n != 10 {
			t.Fatalf("ack of 10 = %d, %v", n, err)
		}
		trips.mu.Lock()
		n := trips.n
		trips.mu.Unlock()
		calls := commandCalls(t, c)
		wantTrips, script := 1, "evalsha"
		if flush {
			wantTrips, script = 2, "eval"
		}
		if n != wantTrips || calls[script] != 1 || calls["set"] != 8 || calls["lrem"] != 10 {
			t.Fatalf("ack of 10 with 8 states (scripts flushed: %v): %d round trips, commands %v; want %d round trips, one %s, 8 SET",
				flush, n, calls, wantTrips, script)
		}
		for _, b := range bodies[:8] {
			if got := c.Get(ctx, r.ResultKeyPrefix()+b).Val(); got != "state-"+b {
				t.Fatalf("state of %s = %q", b, got)
			}
		}
		wantList(t, r, r.ProcessingKey("q", "c1"))
	}
}
