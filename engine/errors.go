package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// NodeError is the failure of one node; Execution.Err is a *NodeError when
// a node failed. Its message reads `node "<id>": <message>`.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %s", e.Node, errorText(e.Err)) }

// Unwrap returns the node's error, so that errors.Is(err,
// context.Canceled) and errors.Is(err, context.DeadlineExceeded) tell
// cancellation and timeouts apart from workflow failures.
func (e *NodeError) Unwrap() error { return e.Err }

// timeoutError is the cause of a run or node context whose timeout from the
// definition expired.
type timeoutError struct {
	scope string // "run" or "node"
	d     time.Duration
}

func (e *timeoutError) Error() string {
	if e.scope == "run" {
		return fmt.Sprintf("run timed out after %s", e.d)
	}
	return fmt.Sprintf("timed out after %s", e.d)
}

func (e *timeoutError) Unwrap() error { return context.DeadlineExceeded }

// stopError reports a context the caller ended: cancelled (an operator
// cancel, a worker shutting down) or past the caller's own deadline.
type stopError struct {
	ctxErr error // context.Canceled or context.DeadlineExceeded
	cause  error // context.Cause, when it says more than ctxErr
}

func (e *stopError) Error() string {
	msg := "cancelled"
	if errors.Is(e.ctxErr, context.DeadlineExceeded) {
		msg = "timed out"
	}
	if e.cause != nil {
		return msg + ": " + e.cause.Error()
	}
	return msg
}

func (e *stopError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.ctxErr, e.cause}
	}
	return []error{e.ctxErr}
}

// stopReason explains why ctx is done, or returns nil if it is not.
func stopReason(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	var te *timeoutError
	if errors.As(cause, &te) {
		return te
	}
	if cause == nil || cause == err {
		return &stopError{ctxErr: err}
	}
	return &stopError{ctxErr: err, cause: cause}
}

// invalidDefinition wraps a compile error met by Execute: the stored
// definition no longer compiles (a node type was removed, or it was stored
// without Compile).
type invalidDefinition struct{ err error }

func (e *invalidDefinition) Error() string {
	return "invalid definition: " + errorText(e.err)
}

func (e *invalidDefinition) Unwrap() error { return e.err }
