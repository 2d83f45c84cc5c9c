package tasks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
)

// settleEnv is a consumer on the shared Redis whose tasks leave their
// messages to be settled later (settleLater), each settlement waiting on
// the test's gate and then answering what eta says for its run.
type settleEnv struct {
	*brokerEnv
	b       *reliableBroker
	plist   string
	gate    chan struct{}
	open    sync.Once
	started chan string   // run ids, as tasks start
	full    chan struct{} // the fetcher waits for a hold
	maxHeld atomic.Int64  // longest processing list a task saw at its start
}

func newSettleEnv(t *testing.T, slots, messages int, eta func(runID string) time.Time) (*settleEnv, []*orcheo.Run) {
	t.Helper()
	e := &settleEnv{brokerEnv: newBrokerEnv(t), gate: make(chan struct{}),
		started: make(chan string, messages), full: make(chan struct{}, 1)}
	e.plist = e.rdb.ProcessingKey(orcheo.DefaultQueue, "c1")
	runs := e.publish(t, "run", messages)
	t.Cleanup(e.openGate) // before the broker's stop, should the test fail
	e.consume(t, "c1", slots, func(sig *mtasks.Signature) error {
		held := e.llen(t, e.plist)
		for m := e.maxHeld.Load(); held > m && !e.maxHeld.CompareAndSwap(m, held); m = e.maxHeld.Load() {
		}
		id := runIDOf(sig)
		e.b.settleLater(sig, func() time.Time {
			<-e.gate
			return eta(id)
		})
		e.started <- id
		return nil
	}, func(b *reliableBroker) {
		e.b = b
		b.holdFull = func() {
			select {
			case e.full <- struct{}{}:
			default:
			}
		}
	})
	return e, runs
}

func (e *settleEnv) openGate() { e.open.Do(func() { close(e.gate) }) }

// TestBroker_SettleLaterFreesTheSlot: tasks that leave their messages to be
// settled later free their slots at once, so a consumer of 2 slots runs
// tasks until it holds its hold capacity (4) of unsettled messages, then
// takes no more: every one of them is still in its processing list and
// counted (none acked before its settlement). Once they settle, the rest
// run and everything is acked.
func TestBroker_SettleLaterFreesTheSlot(t *testing.T) {
	t.Parallel()
	const slots, messages = 2, 10
	hold := holdCapacity(slots)
	e, runs := newSettleEnv(t, slots, messages, func(string) time.Time { return time.Time{} })
	for range hold {
		receive(t, e.started, "the tasks up to the hold capacity")
	}
	select {
	case <-e.full:
	case <-time.After(10 * time.Second):
		t.Fatal("the fetcher never waited for a hold")
	}
	// The fetcher waits for a hold and nothing can settle: this is final.
	if n := len(e.started); n != 0 {
		t.Fatalf("%d more tasks started beyond the hold capacity %d", n, hold)
	}
	held, err := e.rdb.client.LRange(context.Background(), e.plist, 0, -1).Result()
	must(t, err)
	if len(held) != hold {
		t.Fatalf("processing list = %d with every hold taken, want %d", len(held), hold)
	}
	if n := e.llen(t, e.rdb.QueueKey(orcheo.DefaultQueue)); n != int64(messages-hold) {
		t.Fatalf("queue = %d, want %d", n, messages-hold)
	}
	for i, c := range e.counts(t, runs[:hold]) {
		if c != 1 {
			t.Fatalf("run %s counts %d before its settlement, want 1 (not acked)", runs[i].ID, c)
		}
	}
	e.openGate()
	for range messages - hold {
		receive(t, e.started, "the other tasks")
	}
	waitFor(t, "every message acked", func() bool { return e.llen(t, e.plist) == 0 })
	if m := e.maxHeld.Load(); m > int64(hold) {
		t.Fatalf("the processing list held %d messages, hold capacity %d", m, hold)
	}
	for i, c := range e.counts(t, runs) {
		if c != 0 {
			t.Fatalf("run %s counts %d after its ack", runs[i].ID, c)
		}
	}
}

// TestBroker_SettleLaterRetry: a settlement that answers a time moves the
// message, in one script, from the processing list to the delayed set
// until then (still counted for its run), or to the front of the queue
// when that time has passed, where the consumer takes it again; until it
// answers, the message stays held.
func TestBroker_SettleLaterRetry(t *testing.T) {
	t.Parallel()
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	var run1Settled atomic.Int64
	e, runs := newSettleEnv(t, 2, 2, func(id string) time.Time {
		switch {
		case id == "run-0":
			return later
		case run1Settled.Add(1) == 1:
			return time.Now().Add(-time.Second) // a retry already due
		}
		return time.Time{}
	})
	receive(t, e.started, "the first task")
	receive(t, e.started, "the second task")
	if n := e.llen(t, e.plist); n != 2 {
		t.Fatalf("processing list = %d before the settlements, want 2", n)
	}
	e.openGate()
	if got := receive(t, e.started, "run-1 again"); got != "run-1" {
		t.Fatalf("ran %s, want run-1 again (its retry was due)", got)
	}
	waitFor(t, "both settled", func() bool { return e.llen(t, e.plist) == 0 && run1Settled.Load() == 2 })
	ctx := context.Background()
	queued, delayed, err := e.rdb.Pending(ctx, orcheo.DefaultQueue)
	must(t, err)
	if len(queued) != 0 || len(delayed) != 1 || runIDOfBody(delayed[0]) != "run-0" {
		t.Fatalf("queue %d, delayed %d messages; want only run-0's, delayed", len(queued), len(delayed))
	}
	score, err := e.rdb.client.ZScore(ctx, e.rdb.DelayedKey(orcheo.DefaultQueue), delayed[0]).Result()
	must(t, err)
	if int64(score) != later.UnixMilli() {
		t.Fatalf("run-0 delayed until %d, want %d", int64(score), later.UnixMilli())
	}
	if got := e.counts(t, runs); got[0] != 1 || got[1] != 0 {
		t.Fatalf("counts = %v, want [1 0]: run-0's delayed message, run-1's acked", got)
	}
}

// TestBroker_StopWaitsForSettlements: StopConsuming with messages waiting
// for their settlements returns only once they are settled and acked;
// nothing is handed back and the consumer is gone.
func TestBroker_StopWaitsForSettlements(t *testing.T) {
	t.Parallel()
	const slots = 1
	e, runs := newSettleEnv(t, slots, holdCapacity(slots), func(string) time.Time { return time.Time{} })
	for range runs {
		receive(t, e.started, "the tasks")
	}
	stopped := make(chan struct{})
	go func() {
		e.b.StopConsuming()
		close(stopped)
	}()
	waitFor(t, "the stop under way", func() bool { e.b.mu.Lock(); defer e.b.mu.Unlock(); return e.b.stopped })
	if n := e.llen(t, e.plist); n != int64(len(runs)) {
		t.Fatalf("processing list = %d while the settlements wait, want %d", n, len(runs))
	}
	e.openGate()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("StopConsuming did not return after the settlements")
	}
	if n := e.llen(t, e.plist); n != 0 {
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
