package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// runningChild is a RunStarter whose one child never ends and which, like
// a store answering from a warm pool, ignores an ended context.
type runningChild struct{}

func (runningChild) StartChildRun(context.Context, orcheo.ChildRun) (*orcheo.Run, error) {
	return nil, errors.New("not used")
}

func (runningChild) FindRunByID(_ context.Context, id string) (*orcheo.Run, error) {
	return &orcheo.Run{ID: id, Status: orcheo.RunRunning}, nil
}

// TestWorkflowAction_ResumePastDeadline: a workflow node resumed after its
// deadline times out; it never suspends again. The node's look at the child
// may succeed after its context ended (the store above ignores ctx), and
// then the old code suspended, depending on which of runAction's select
// cases won (TestWorkflowNode_TimeoutAcrossSuspensions failed in CI).
func TestWorkflowAction_ResumePastDeadline(t *testing.T) {
	t.Parallel()
	cause := &timeoutError{scope: "node", d: 2 * time.Hour}
	ctx, cancel := context.WithDeadlineCause(context.Background(), time.Now().Add(-time.Minute), cause)
	defer cancel()
	scope := &Scope{
		engine:      &Engine{runs: runningChild{}, childInSlot: 20 * time.Millisecond, childPoll: 10 * time.Millisecond},
		resume:      &childWait{RunID: "child-1", Deadline: time.Now().Add(-time.Minute), Timeout: 2 * time.Hour},
		suspendable: true,
	}
	_, err := (&workflowAction{ref: "w", wait: true}).Run(ctx, scope)
	if sig := (*suspendSignal)(nil); errors.As(err, &sig) {
		t.Fatalf("suspended until %s past the node's deadline", sig.until)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("err %v, want the node's timeout", err)
	}
}
