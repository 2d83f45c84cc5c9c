package tasks

import (
	"context"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
)

// stopConsumingAsync starts b.StopConsuming and returns once b's stop is
// closed (StopConsuming does that first), with a channel closed when
// StopConsuming has returned: the consumer drained and deregistered.
func stopConsumingAsync(b *reliableBroker) <-chan struct{} {
	drained := make(chan struct{})
	go func() {
		b.StopConsuming()
		close(drained)
	}()
	<-b.stop
	return drained
}

// queueRunIDs is the run ids of the messages in the default queue, front
// first.
func (e *brokerEnv) queueRunIDs(tb testing.TB) []string {
	tb.Helper()
	msgs, err := e.rdb.client.LRange(context.Background(), e.rdb.QueueKey(orcheo.DefaultQueue), 0, -1).Result()
	must(tb, err)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = runIDOfBody(m)
	}
	return ids
}

func runIDs(runs []*orcheo.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

// TestBroker_TakesNothingAfterItsStop: a consumer asked to stop while one
// of its two slots holds a task (a worker draining after orcheo control
// shutdown) takes none of the messages published after the stop: they
// stay in the queue, in order, for other consumers, while the held task
// finishes and is acked. The fetch once chose at random between the stop
// and a free slot (a select with both ready), so a draining consumer took
// new work about half the time; twenty rounds make such a consumer fail
// this test all but surely.
func TestBroker_TakesNothingAfterItsStop(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		e := newBrokerEnv(t)
		held := e.publish(t, "held", 1)[0]
		started := make(chan string, 8)
		release := make(chan struct{})
		b := e.consume(t, "c1", 2, func(sig *mtasks.Signature) error {
			started <- runIDOf(sig)
			if runIDOf(sig) == held.ID {
				<-release
			}
			return nil
		})
		if got := receive(t, started, "the held task"); got != held.ID {
			t.Fatalf("round %d: first task %s, want %s", round, got, held.ID)
		}
		drained := stopConsumingAsync(b)
		late := e.publish(t, "late", 3)
		close(release)
		select {
		case <-drained:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the consumer did not drain within 30 s of its held task's end", round)
		}
		select {
		case id := <-started:
			t.Fatalf("round %d: the stopped consumer ran %s, published after its stop", round, id)
		default:
		}
		if got, want := e.queueRunIDs(t), runIDs(late); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: queue after the drain = %v, want the late messages in order %v", round, got, want)
		}
		if n := e.llen(t, e.rdb.ProcessingKey(orcheo.DefaultQueue, "c1")); n != 0 {
			t.Fatalf("round %d: processing list = %d after the drain", round, n)
		}
		if c := e.counts(t, []*orcheo.Run{held}); c[0] != 0 {
			t.Fatalf("round %d: the held run counts %d messages after the drain, want 0 (acked)", round, c[0])
		}
	}
}

// takeHook runs before, once, just ahead of the first take script call
// on its client.
type takeHook struct {
	before func()
	done   atomic.Bool
}

func (h *takeHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *takeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *takeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		keys := scriptKeys(cmd)
		isTake := len(keys) == 3 && strings.HasSuffix(keys[0], ":queue") && strings.Contains(keys[1], ":processing:")
		if isTake && h.done.CompareAndSwap(false, true) {
			h.before()
		}
		return next(ctx, cmd)
	}
}

// TestBroker_HandsBackATakeItsStopOvertook: messages a take moved while
// the consumer was being stopped go back to the front of the queue at
// once, in their order, and none of their tasks starts, rather than
// running on a worker that is about to exit.
func TestBroker_HandsBackATakeItsStopOvertook(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t)
	runs := e.publish(t, "taken", 3)
	var b *reliableBroker
	drained := make(chan (<-chan struct{}), 1)
	e.rdb.client.AddHook(&takeHook{before: func() { drained <- stopConsumingAsync(b) }})
	ran := make(chan string, len(runs))
	e.consume(t, "c1", len(runs), func(sig *mtasks.Signature) error {
		ran <- runIDOf(sig)
		return nil
	}, func(br *reliableBroker) { b = br })
	select {
	case <-<-drained:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not stop within 30 s")
	}
	select {
	case id := <-ran:
		t.Fatalf("the stopped consumer ran %s, taken as it stopped", id)
	default:
	}
	if got, want := e.queueRunIDs(t), runIDs(runs); !reflect.DeepEqual(got, want) {
		t.Fatalf("queue after the stop = %v, want every message back in order %v", got, want)
	}
	if n := e.llen(t, e.rdb.ProcessingKey(orcheo.DefaultQueue, "c1")); n != 0 {
		t.Fatalf("processing list = %d after the stop", n)
	}
	for i, c := range e.counts(t, runs) {
		if c != 1 {
			t.Fatalf("run %s counts %d messages after the hand-back, want 1", runs[i].ID, c)
		}
	}
}
