package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

func init() { builtinTypes["workflow"] = workflowType{} }

// defaultChildWait bounds waiting for a child run when the node sets no
// timeout of its own.
const defaultChildWait = time.Hour

// workflowType starts a run of another workflow (option `workflow`, its
// handle or id) with option `input` (an expression; default {}) and, unless
// `wait: false`, waits for it to end. Waiting polls the child run and is
// bounded by the node's timeout (default one hour). The output is
// {"run_id", "status"} and, after waiting, the child's "output" and
// "error". A child that fails or is cancelled fails the node.
type workflowType struct{}

func (workflowType) Compile(spec *Spec) (Action, error) {
	ref, err := spec.String("workflow", true)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		return nil, spec.Errorf("workflow", "must name a workflow by handle or id")
	}
	input, err := spec.Expr("input", false)
	if err != nil {
		return nil, err
	}
	wait, err := spec.Bool("wait", true)
	if err != nil {
		return nil, err
	}
	return &workflowAction{ref: ref, input: input, wait: wait}, nil
}

type workflowAction struct {
	ref   string
	input *Expr
	wait  bool
}

func (a *workflowAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	starter := scope.engine.runs
	if starter == nil {
		return Result{}, errors.New("this engine cannot start child runs (no run starter configured)")
	}
	input := json.RawMessage(`{}`)
	if a.input != nil {
		v, err := scope.Eval(a.input)
		if err != nil {
			return Result{}, err
		}
		if input, err = marshal(v); err != nil {
			return Result{}, fmt.Errorf("field \"input\": %w", err)
		}
	}
	child, err := starter.StartChildRun(ctx, orcheo.ChildRun{Parent: scope.Run, Node: scope.Node, Workflow: a.ref, Input: input})
	if err != nil {
		if code := orcheo.ErrorCode(err); code == orcheo.ENOTFOUND || code == orcheo.ECONFLICT || code == orcheo.EINVALID {
			return Result{}, fmt.Errorf("field \"workflow\": %s", orcheo.ErrorMessage(err))
		}
		return Result{}, Transient(fmt.Errorf("start child run of %q: %w", a.ref, err))
	}
	scope.SetInput(map[string]any{"workflow": a.ref, "run_id": child.ID})
	if !a.wait {
		return Result{Output: map[string]any{"run_id": child.ID, "status": string(child.Status)}}, nil
	}
	if !scope.nodeTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, defaultChildWait, &timeoutError{scope: "node", d: defaultChildWait})
		defer cancel()
	}
	done, err := a.waitChild(ctx, starter, child.ID, scope.engine.childPoll)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, context.Cause(ctx)
		}
		return Result{}, err
	}
	out := map[string]any{"run_id": done.ID, "status": string(done.Status), "output": nil, "error": done.Error}
	if len(done.Output) > 0 {
		var v any
		if json.Unmarshal(done.Output, &v) == nil {
			out["output"] = v
		}
	}
	if done.Status != orcheo.RunSucceeded {
		msg := done.Error
		if msg == "" {
			msg = string(done.Status)
		}
		return Result{}, fmt.Errorf("child run %s %s: %s", done.ID, done.Status, msg)
	}
	return Result{Output: out}, nil
}

// waitChild polls the child run until it ends, starting at 50ms and
// doubling up to poll, so short children return fast and long ones cost
// one query per poll interval.
func (a *workflowAction) waitChild(ctx context.Context, starter orcheo.RunStarter, id string, poll time.Duration) (*orcheo.Run, error) {
	wait := min(50*time.Millisecond, poll)
	for {
		r, err := starter.FindRunByID(ctx, id)
		if err == nil && r.Status.Terminal() {
			return r, nil
		}
		if err != nil && orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
			return nil, fmt.Errorf("child run %s disappeared", id)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, poll)
	}
}
