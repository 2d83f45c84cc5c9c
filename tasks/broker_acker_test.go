package tasks

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/mock"
	"github.com/redis/go-redis/v9"
)

// ackStacks is a go-redis hook recording the goroutine stack of each ack
// script call.
type ackStacks struct {
	mu     sync.Mutex
	stacks []string
}

func (s *ackStacks) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *ackStacks) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *ackStacks) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		keys := scriptKeys(cmd)
		if len(keys) == 2 && strings.Contains(keys[0], ":processing:") && strings.HasSuffix(keys[1], ":messages") {
			buf := make([]byte, 16<<10)
			s.mu.Lock()
			s.stacks = append(s.stacks, string(buf[:runtime.Stack(buf, false)]))
			s.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// TestAcker_LoneAckOnTheSettlingGoroutine: with no ack being written, a
// message's ack is written by the goroutine that settles it, with no
// hand-off to another goroutine.
func TestAcker_LoneAckOnTheSettlingGoroutine(t *testing.T) {
	t.Parallel()
	e := newBrokerEnv(t)
	spy := &ackStacks{}
	e.rdb.client.AddHook(spy)
	done := make(chan string, 3)
	e.consume(t, "c1", 1, func(sig *mtasks.Signature) error {
		done <- runIDOf(sig)
		return nil
	})
	for range e.publish(t, "run", 3) {
		receive(t, done, "the tasks")
	}
	waitFor(t, "three acks", func() bool { spy.mu.Lock(); defer spy.mu.Unlock(); return len(spy.stacks) >= 3 })
	spy.mu.Lock()
	defer spy.mu.Unlock()
	for i, st := range spy.stacks {
		if !strings.Contains(st, "(*consumerLoop).process") {
			t.Fatalf("ack %d written off the settling goroutine:\n%s", i, st)
		}
	}
}

// TestCompleter_LoneCompletionOnItsWaitersGoroutine: with no batch being
// written, a completion handed in with hand is written by the goroutine
// that waits for it.
func TestCompleter_LoneCompletionOnItsWaitersGoroutine(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var stacks []string
	runs := &mock.RunService{CompleteRunsFn: func(_ context.Context, cs []orcheo.AttemptCompletion) ([]orcheo.RunCompleted, error) {
		buf := make([]byte, 16<<10)
		mu.Lock()
		stacks = append(stacks, string(buf[:runtime.Stack(buf, false)]))
		mu.Unlock()
		out := make([]orcheo.RunCompleted, len(cs))
		for i, c := range cs {
			out[i] = orcheo.RunCompleted{Run: &orcheo.Run{ID: c.RunID, Attempt: c.Attempt, Status: c.Completion.Status}}
		}
		return out, nil
	}}
	c := newCompleter(runs, time.Minute)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	for range 3 {
		wait := c.hand(&orcheo.Run{ID: orcheo.NewID(), Attempt: 1}, orcheo.RunCompletion{Status: orcheo.RunSucceeded}, testLogger())
		if got := wait(); got == nil || got.Status != orcheo.RunSucceeded {
			t.Fatalf("completion = %+v", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stacks) != 3 {
		t.Fatalf("%d CompleteRuns calls, want 3", len(stacks))
	}
	for i, st := range stacks {
		if !strings.Contains(st, "(*completer).hand") || strings.Contains(st, "tasks.batchLoop") {
			t.Fatalf("CompleteRuns %d ran off the waiting goroutine:\n%s", i, st)
		}
	}
}
