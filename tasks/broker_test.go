package tasks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// fakeProcessor is machinery's side of a consumer: it runs each message
// by calling fn.
type fakeProcessor struct {
	queue string
	fn    func(sig *mtasks.Signature) error
}

func (p *fakeProcessor) Process(sig *mtasks.Signature) error { return p.fn(sig) }
func (p *fakeProcessor) CustomQueue() string                 { return p.queue }
func (p *fakeProcessor) PreConsumeHandler() bool             { return true }

// scriptSpy is a go-redis hook on the broker's client: it records how many
// messages each take script call returned, and delays each ack script call
// by ackDelay (widening the window in which a slot freed too early would
// show).
type scriptSpy struct {
	ackDelay time.Duration
	mu       sync.Mutex
	takes    []int
}

// scriptKeys is the KEYS of an EVAL or EVALSHA, else nil.
func scriptKeys(cmd redis.Cmder) []string {
	args := cmd.Args()
	if len(args) < 3 {
		return nil
	}
	if name := strings.ToLower(fmt.Sprint(args[0])); name != "evalsha" && name != "eval" {
		return nil
	}
	n, _ := args[2].(int)
	keys := make([]string, 0, n)
	for _, a := range args[3 : 3+n] {
		keys = append(keys, fmt.Sprint(a))
	}
	return keys
}

func (s *scriptSpy) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scriptSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *scriptSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		keys := scriptKeys(cmd)
		isTake := len(keys) == 3 && strings.HasSuffix(keys[0], ":queue") && strings.Contains(keys[1], ":processing:")
		isAck := len(keys) == 2 && strings.Contains(keys[0], ":processing:") && strings.HasSuffix(keys[1], ":messages")
		if isAck && s.ackDelay > 0 {
			time.Sleep(s.ackDelay)
		}
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.Cmd); ok && isTake && err == nil {
			if list, ok := c.Val().([]any); ok && len(list) > 0 {
				s.mu.Lock()
				s.takes = append(s.takes, len(list))
				s.mu.Unlock()
			}
		}
		return err
	}
}

// brokerEnv is a queue and brokers on the shared Redis, under a prefix of
// the test's own.
type brokerEnv struct {
	cfg   Config
	rdb   *rdb
	queue *Queue
}

func newBrokerEnv(tb testing.TB) *brokerEnv {
	tb.Helper()
	cfg := Config{RedisURL: testenv.RedisURL(tb), Prefix: "tasks-broker-test:" + orcheo.NewID()}
	must(tb, cfg.Validate())
	r, err := newRDB(&cfg)
	must(tb, err)
	tb.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := r.client.Keys(ctx, cfg.Prefix+":*").Result(); len(keys) > 0 {
			_ = r.client.Del(ctx, keys...).Err()
		}
		_ = r.close()
	})
	q, err := NewQueue(cfg, r.client, testLogger())
	must(tb, err)
	return &brokerEnv{cfg: cfg, rdb: r, queue: q}
}

// publish enqueues n runs "<tag>-<i>" on the default queue in one call.
func (e *brokerEnv) publish(tb testing.TB, tag string, n int) []*orcheo.Run {
	tb.Helper()
	runs := make([]*orcheo.Run, n)
	for i := range runs {
		runs[i] = &orcheo.Run{ID: fmt.Sprintf("%s-%d", tag, i)}
	}
	for _, err := range e.queue.EnqueueRuns(context.Background(), runs) {
		must(tb, err)
	}
	return runs
}

// consume starts a broker consuming the default queue as consumer id with
// concurrency slots, and returns it once it is registered and fetching.
// Each setup function gets the broker before it starts. The test's end
// stops it.
func (e *brokerEnv) consume(tb testing.TB, id string, concurrency int, fn func(*mtasks.Signature) error, setup ...func(*reliableBroker)) *reliableBroker {
	tb.Helper()
	b := newReliableBroker(&e.cfg, machineryConfig(&e.cfg), e.rdb, testLogger())
	b.SetRegisteredTaskNames([]string{TaskExecuteRun})
	for _, f := range setup {
		f(b)
	}
	go func() { _, _ = b.StartConsuming(id, concurrency, &fakeProcessor{queue: orcheo.DefaultQueue, fn: fn}) }()
	tb.Cleanup(b.StopConsuming)
	select {
	case <-b.ready:
	case <-time.After(10 * time.Second):
		tb.Fatal("broker did not start consuming")
	}
	return b
}

func (e *brokerEnv) llen(tb testing.TB, key string) int64 {
	tb.Helper()
	n, err := e.rdb.client.LLen(context.Background(), key).Result()
	must(tb, err)
	return n
}

func (e *brokerEnv) counts(tb testing.TB, runs []*orcheo.Run) []int {
	tb.Helper()
	c, err := e.rdb.messageCounts(context.Background(), runs)
	must(tb, err)
	return c
}

func receive(tb testing.TB, ch <-chan string, what string) string {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		tb.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// TestBroker_TakesAtMostFreeSlots: a consumer with 3 slots takes its 3
// messages in one script call (all are in its processing list when the
// first task starts), never runs more than 3 nor holds more than its hold
// capacity, and takes more only as slots free.
func TestBroker_TakesAtMostFreeSlots(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t)
	spy := &scriptSpy{}
	e.rdb.client.AddHook(spy)
	runs := e.publish(t, "run", 10)
	const slots = 3
	plist := e.rdb.ProcessingKey(orcheo.DefaultQueue, "c1")
	started := make(chan string, len(runs))
	release := make(chan struct{})
	var running, maxRunning, maxHeld atomic.Int64
	var first sync.Once
	var heldAtFirst int64
	e.consume(t, "c1", slots, func(sig *mtasks.Signature) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		held := e.llen(t, plist)
		first.Do(func() { heldAtFirst = held })
		for m := maxHeld.Load(); held > m && !maxHeld.CompareAndSwap(m, held); m = maxHeld.Load() {
		}
		started <- runIDOf(sig)
		<-release
		return nil
	})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the broker's stop, should the test fail
	for range slots {
		receive(t, started, "the first tasks")
	}
	spy.mu.Lock()
	firstTake := spy.takes[0]
	spy.mu.Unlock()
	if firstTake != slots || heldAtFirst != slots {
		t.Fatalf("the first take moved %d messages (%d held when the first task started), want %d: one take of every free slot", firstTake, heldAtFirst, slots)
	}
	if n := e.llen(t, plist); n != slots {
		t.Fatalf("processing list = %d with every slot busy, want %d", n, slots)
	}
	if n := e.llen(t, e.rdb.QueueKey(orcheo.DefaultQueue)); n != int64(len(runs)-slots) {
		t.Fatalf("queue = %d with every slot busy, want %d", n, len(runs)-slots)
	}
	unblock()
	for range len(runs) - slots {
		receive(t, started, "the other tasks")
	}
	waitFor(t, "every message acked", func() bool { return e.llen(t, plist) == 0 })
	if m := maxRunning.Load(); m > slots {
		t.Fatalf("%d tasks ran at once on %d slots", m, slots)
	}
	if m := maxHeld.Load(); m > int64(holdCapacity(slots)) {
		t.Fatalf("the processing list held %d messages on %d slots (hold capacity %d)", m, slots, holdCapacity(slots))
	}
	spy.mu.Lock()
	for _, n := range spy.takes {
		if n > slots {
			t.Fatalf("a take moved %d messages on %d slots", n, slots)
		}
	}
	spy.mu.Unlock()
	for i, c := range e.counts(t, runs) {
		if c != 0 {
			t.Fatalf("run %s still counts %d messages after its ack", runs[i].ID, c)
		}
	}
}

// TestBroker_AckAfterTheTask: while a task runs its message is held and
// counted; the slot takes the next message once the task has returned,
// its ack still being written, but the processing list never holds more
// than the hold capacity. Stop writes the last ack before deregistering.
func TestBroker_AckAfterTheTask(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t)
	e.rdb.client.AddHook(&scriptSpy{ackDelay: 100 * time.Millisecond})
	runs := e.publish(t, "run", 4)
	plist := e.rdb.ProcessingKey(orcheo.DefaultQueue, "c1")
	done := make(chan string, len(runs))
	var mu sync.Mutex
	var problems []string
	b := e.consume(t, "c1", 1, func(sig *mtasks.Signature) error {
		id := runIDOf(sig)
		held, err := e.rdb.client.LRange(context.Background(), plist, 0, -1).Result()
		c, cerr := e.rdb.messageCounts(context.Background(), []*orcheo.Run{{ID: id}})
		mine := false
		for _, m := range held {
			mine = mine || runIDOfBody(m) == id
		}
		mu.Lock()
		if err != nil || !mine || len(held) > holdCapacity(1) {
			problems = append(problems, fmt.Sprintf("%s started with the processing list %d long (%v), its own message in it: %v; want it in a list of at most %d",
				id, len(held), err, mine, holdCapacity(1)))
		}
		if cerr != nil || c[0] != 1 {
			problems = append(problems, fmt.Sprintf("%s counted %v (%v) while running, want 1", id, c, cerr))
		}
		mu.Unlock()
		done <- id
		return nil
	})
	for range runs {
		receive(t, done, "the tasks")
	}
	b.StopConsuming()
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	// Stopped: every ack written, nothing handed back, consumer gone.
	if n := e.llen(t, plist); n != 0 {
		t.Fatalf("processing list = %d after Stop", n)
	}
	if n := e.llen(t, e.rdb.QueueKey(orcheo.DefaultQueue)); n != 0 {
		t.Fatalf("queue = %d after Stop, want 0 (nothing handed back)", n)
	}
	for i, c := range e.counts(t, runs) {
		if c != 0 {
			t.Fatalf("run %s counts %d after Stop", runs[i].ID, c)
		}
	}
	if n, _ := e.rdb.client.ZCard(context.Background(), e.rdb.ConsumersKey(orcheo.DefaultQueue)).Result(); n != 0 {
		t.Fatalf("%d consumers registered after Stop", n)
	}
}

func runIDOfBody(msg string) string {
	sig, err := decodeMessage(msg)
	if err != nil {
		return ""
	}
	return runIDOf(sig)
}

// TestWorker_ReapsBeforeItsFirstTake: a consumer killed with a batch taken
// (it never acks nor beats again: what a kill -9 leaves in Redis) has the
// whole batch reaped back to the front of the queue by the next worker's
// reaper (tasks/maintenance) before that worker's consumer takes anything,
// so the batch runs first, in order.
func TestWorker_ReapsBeforeItsFirstTake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t, db.BackendSQLite, "")
	f := newFixture(t, store, testenv.StartRedis(t).URL(), func(c *Config, _ *engine.Options) { c.Concurrency = 1 })
	runs := make([]*orcheo.Run, 5)
	for i := range runs {
		runs[i] = f.createRun(t, okDefinition, `{"n":1}`)
	}
	for _, err := range f.queue.EnqueueRuns(ctx, runs) {
		must(t, err)
	}
	r := f.queue.rdb
	_, err := r.Heartbeat(ctx, orcheo.DefaultQueue, "killed", time.Now().Add(-time.Hour), time.Second)
	must(t, err)
	// The killed consumer took the first three; the queue holds the rest.
	taken, err := r.Take(ctx, orcheo.DefaultQueue, "killed", 3)
	if err != nil || len(taken) != 3 {
		t.Fatalf("take = %d, %v", len(taken), err)
	}
	order := make(chan string, len(runs))
	f.worker.Observer = observerFunc(func(run *orcheo.Run) { order <- run.ID })
	f.start(t)
	for i := range runs {
		if got := receive(t, order, "the runs"); got != runs[i].ID {
			t.Fatalf("run %d finished was %s, want %s (the reaped batch first, in order)", i, got, runs[i].ID)
		}
	}
	if n := r.list(t, r.ProcessingKey(orcheo.DefaultQueue, "killed")); len(n) != 0 {
		t.Fatalf("the killed consumer's list still holds %d", len(n))
	}
}

// observerFunc is an AttemptObserver calling fn with each stored run.
type observerFunc func(run *orcheo.Run)

func (fn observerFunc) AttemptFinished(run *orcheo.Run, _ orcheo.RunStatus, _ time.Duration) { fn(run) }

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

// TestQueue_EnqueueRunsAsMachineryWould: EnqueueRuns writes each run's
// message as machinery's SendTaskWithContext would publish it (the
// execute_run signature, a "task_" UUID, the empty headers its tracing
// leaves), at the end of its own queue or in the delayed set
// for a future NotBefore; EnqueueRunsFront puts the last first.
func TestQueue_EnqueueRunsAsMachineryWould(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	runs := []*orcheo.Run{{ID: "a"}, {ID: "b", Queue: "reports"}, {ID: "c", NotBefore: &later}}
	for _, err := range e.queue.EnqueueRuns(ctx, runs) {
		must(t, err)
	}
	for _, err := range e.queue.EnqueueRunsFront(ctx, []*orcheo.Run{{ID: "f1"}, {ID: "f2"}}) {
		must(t, err)
	}
	def, delayed, err := e.rdb.Pending(ctx, orcheo.DefaultQueue)
	must(t, err)
	reports, _, err := e.rdb.Pending(ctx, "reports")
	must(t, err)
	if len(def) != 3 || len(reports) != 1 || len(delayed) != 1 {
		t.Fatalf("default %d, reports %d, delayed %d; want 3, 1, 1", len(def), len(reports), len(delayed))
	}
	for i, want := range []string{"f2", "f1", "a"} {
		if got := runIDOfBody(def[i]); got != want {
			t.Fatalf("default queue[%d] = %s, want %s", i, got, want)
		}
	}
	sig, err := decodeMessage(reports[0])
	must(t, err)
	if sig.Name != TaskExecuteRun || sig.RoutingKey != "reports" || sig.Headers == nil || !strings.HasPrefix(sig.UUID, "task_") {
		t.Fatalf("message = %+v", sig)
	}
	if sig, _ := decodeMessage(delayed[0]); sig == nil || sig.ETA == nil || !sig.ETA.Equal(later) {
		t.Fatalf("delayed message = %+v, want ETA %s", sig, later)
	}
	got, err := e.rdb.messageCounts(ctx, append(runs, &orcheo.Run{ID: "b"}))
	must(t, err)
	if fmt.Sprint(got) != "[1 1 1 0]" {
		t.Fatalf("counts = %v, want [1 1 1 0] (b counted under its own queue only)", got)
	}
}
