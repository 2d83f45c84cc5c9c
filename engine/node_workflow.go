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

const (
	// defaultChildWait bounds waiting for a child run when the node sets
	// no timeout of its own.
	defaultChildWait = time.Hour
	// maxChildRecheck is the longest a run suspended on its child waits
	// between two looks at it (unless the engine's ChildPollInterval is
	// longer).
	maxChildRecheck = 30 * time.Second
)

// workflowType starts a run of another workflow (option `workflow`, its
// handle or id) with option `input` (an expression; default {}) and, unless
// `wait: false`, waits for it to end, bounded by the node's timeout
// (default one hour) and the run's. It first polls the child in its worker
// slot for up to the engine's SuspendChildWaitAfter, so a quick child costs
// nothing more; a child still going then suspends the parent when the
// caller allows it (the slot may be the one the child needs): the
// checkpoint keeps the child's id and the node's deadline, and the run
// resumes to look again after ChildPollInterval, doubling up to 30 s.
// The output is {"run_id", "status"} and, after waiting, the child's
// "output" and "error". A child that fails or is cancelled fails the node.
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

// childWait is what a workflow node waiting on its child run keeps across
// suspensions (checkpoint.Child).
type childWait struct {
	RunID string `json:"run_id"`
	// Deadline is when the node times out, in real time: Timeout (its own
	// timeout, or defaultChildWait) after its first try started.
	Deadline time.Time     `json:"deadline"`
	Timeout  time.Duration `json:"timeout"`
	// Poll is how long the next suspension lasts.
	Poll time.Duration `json:"poll,omitempty"`
}

func (a *workflowAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	starter := scope.engine.runs
	if starter == nil {
		return Result{}, errors.New("this engine cannot start child runs (no run starter configured)")
	}
	// On resume the child exists: look at it once, and suspend again if it
	// is still going.
	w, budget := scope.resume, time.Duration(0)
	if w == nil {
		child, err := a.start(ctx, scope, starter)
		if err != nil {
			return Result{}, err
		}
		if !a.wait {
			return Result{Output: map[string]any{"run_id": child.ID, "status": string(child.Status)}}, nil
		}
		timeout := scope.timeout
		if timeout <= 0 {
			timeout = defaultChildWait
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, timeout, &timeoutError{scope: "node", d: timeout})
			defer cancel()
		}
		w = &childWait{RunID: child.ID, Deadline: time.Now().Add(timeout), Timeout: timeout}
		budget = scope.engine.childInSlot
	} else {
		scope.SetInput(map[string]any{"workflow": a.ref, "run_id": w.RunID})
	}
	suspend := scope.suspendable && scope.engine.childInSlot > 0
	if !suspend {
		budget = -1
	}
	done, err := waitChild(ctx, starter, w.RunID, scope.engine.childPoll, budget)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, context.Cause(ctx)
		}
		return Result{}, err
	}
	if done == nil {
		// A look that answered after the node's or the run's deadline
		// passed is a timeout, not another suspension: a resume past the
		// deadline must fail the node whichever way runAction's select goes.
		if ctx.Err() != nil {
			return Result{}, context.Cause(ctx)
		}
		return Result{}, w.recheck(ctx, scope.engine.childPoll)
	}
	return childResult(done)
}

// start creates (or finds again, see orcheo.RunStarter) the child run and
// records it as the step's input.
func (a *workflowAction) start(ctx context.Context, scope *Scope, starter orcheo.RunStarter) (*orcheo.Run, error) {
	input := json.RawMessage(`{}`)
	if a.input != nil {
		v, err := scope.Eval(a.input)
		if err != nil {
			return nil, err
		}
		if input, err = marshal(v); err != nil {
			return nil, fmt.Errorf("field \"input\": %w", err)
		}
	}
	child, err := starter.StartChildRun(ctx, orcheo.ChildRun{Parent: scope.Run, Node: scope.Node, Workflow: a.ref, Input: input})
	if err != nil {
		if code := orcheo.ErrorCode(err); code == orcheo.ENOTFOUND || code == orcheo.ECONFLICT || code == orcheo.EINVALID {
			return nil, fmt.Errorf("field \"workflow\": %s", orcheo.ErrorMessage(err))
		}
		return nil, Transient(fmt.Errorf("start child run of %q: %w", a.ref, err))
	}
	scope.SetInput(map[string]any{"workflow": a.ref, "run_id": child.ID})
	return child, nil
}

// childResult is the node's result for a child that ended.
func childResult(done *orcheo.Run) (Result, error) {
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

// recheck is the suspension until the next look at the child: Poll from
// now (first minPoll), never past the node's deadline or ctx's (the run's
// timeout), so a resume at the deadline times the node or run out; the
// look after it comes twice as late, up to maxChildRecheck.
func (w *childWait) recheck(ctx context.Context, minPoll time.Duration) *suspendSignal {
	poll := w.Poll
	if poll <= 0 {
		poll = minPoll
	}
	until := time.Now().Add(poll)
	if w.Deadline.Before(until) {
		until = w.Deadline
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		until = dl
	}
	next := *w
	next.Poll = min(poll*2, max(maxChildRecheck, minPoll))
	return &suspendSignal{until: until, child: &next}
}

// childEnded reports whether a look at the child (FindRunByID's result)
// settles the node: the child is over, or gone. Any other error is a look
// that failed, to try again.
func childEnded(r *orcheo.Run, err error) bool {
	return err == nil && r.Status.Terminal() || orcheo.ErrorCode(err) == orcheo.ENOTFOUND
}

// waitChild polls the child run until it ends, starting at 50ms and
// doubling up to poll, so short children return fast and long ones cost
// one query per poll interval. After budget it gives up and returns nil,
// nil: 0 looks once, a negative budget waits until ctx ends.
func waitChild(ctx context.Context, starter orcheo.RunStarter, id string, poll, budget time.Duration) (*orcheo.Run, error) {
	var giveUp <-chan time.Time
	if budget >= 0 {
		t := time.NewTimer(budget)
		defer t.Stop()
		giveUp = t.C
	}
	wait := min(50*time.Millisecond, poll)
	for {
		r, err := starter.FindRunByID(ctx, id)
		if childEnded(r, err) {
			if err != nil {
				return nil, fmt.Errorf("child run %s disappeared", id)
			}
			return r, nil
		}
		if budget == 0 {
			return nil, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-giveUp:
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		wait = min(wait*2, poll)
	}
}
