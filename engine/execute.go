package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// Execute runs a compiled definition for run and never panics.
//
// Nodes run one at a time in the graph's order, starting at the start node
// and following edges; a node none of whose incoming edges was followed is
// recorded as a skipped step. Each try of a node becomes a RunStep (Seq
// from 1, Attempt = run.Attempt, NodeAttempt from 1, timestamps from the
// engine's clock); opts.Recorder hears of it when it starts (status
// running) and when it ends. The first node that fails for good (after its
// retries, without continue_on_error) fails the run: Execution.Err is a
// *NodeError reading `node "<id>": <message>` and no later node runs.
//
// Cancelling ctx, the definition's run timeout and a node's timeout stop the
// run: a running node's step fails with "cancelled", "timed out after …"
// or "run timed out after …", and no further node starts. Execution.Err then
// wraps context.Canceled or context.DeadlineExceeded, so callers can tell an
// operator's cancel from a workflow failure with errors.Is.
//
// Execution.Output is the state (the merged values of every set node that
// ran) as a JSON object, "{}" if none ran, also when the run failed.
//
// With opts.Suspendable, a delay longer than Options.SuspendDelaysAfter
// ends the execution early with Execution.Suspended (see checkpoint.go);
// executing again with opts.Checkpoint set to its checkpoint goes on after
// the delay. The run timeout counts from the first start, the wait
// included: a suspension does not reset it.
func (e *Engine) Execute(ctx context.Context, definition json.RawMessage, run *orcheo.Run, opts orcheo.ExecuteOptions) (x *orcheo.Execution) {
	if run == nil {
		run = &orcheo.Run{}
	}
	x = &orcheo.Execution{Output: json.RawMessage("{}")}
	log := e.logger.WithFields(logrus.Fields{"component": "engine", "run_id": run.ID, "workflow_id": run.WorkflowID})
	defer func() {
		if r := recover(); r != nil {
			log.WithField("stack", string(debug.Stack())).Errorf("engine panic: %v", r)
			x.Err = fmt.Errorf("internal error: panic: %v", r)
		}
	}()

	p, err := e.program(definition)
	if err != nil {
		x.Err = &invalidDefinition{err: err}
		return x
	}
	info := runInfo{ID: run.ID, Attempt: run.Attempt, TriggeredBy: run.TriggeredBy, WorkflowID: run.WorkflowID}
	if run.ScheduledFor != nil {
		info.ScheduledFor = run.ScheduledFor.UTC().Format(time.RFC3339Nano)
	}
	ex := &executor{
		engine:      e,
		prog:        p,
		run:         run,
		x:           x,
		log:         log,
		recorder:    opts.Recorder,
		ctx:         ctx,
		suspendable: opts.Suspendable,
		resume:      opts.Checkpoint,
		env: &exprEnv{
			Steps: map[string]any{},
			State: map[string]any{},
			Run:   info,
			Env:   e.env,
		},
	}
	ex.execute(ctx)
	return x
}

// executor holds the state of one Execute call. Only Execute's goroutine
// touches it; a node's goroutine reads env but never writes it.
type executor struct {
	engine   *Engine
	prog     *program
	run      *orcheo.Run
	x        *orcheo.Execution
	log      logrus.FieldLogger
	env      *exprEnv
	recorder orcheo.StepRecorder
	ctx      context.Context // the caller's, for the recorder

	// suspendable and resume are the ExecuteOptions of the same names.
	suspendable bool
	resume      json.RawMessage
	// seqBase is the Seq of the step before this execution's first: 0,
	// or on resume the steps of the attempts before the suspension.
	seqBase int
	// deadline is when the run times out; zero: no run timeout.
	deadline time.Time
	// resumed is the checkpoint of a child wait that the next try of its
	// workflow node goes on with (resumeChild), once.
	resumed *checkpoint
	// visited marks nodes run or skipped; active those an edge leads to.
	visited, active []bool
	// kept is the size, as JSON, of each node's output the environment
	// holds; keptTotal their sum, which MaxRunDataBytes bounds.
	kept      map[int]int
	keptTotal int
}

// keep accounts for node i's output of size bytes replacing its last one,
// and refuses it when the run's outputs would pass MaxRunDataBytes.
func (ex *executor) keep(i, size int) error {
	if ex.kept == nil {
		ex.kept = map[int]int{}
	}
	total := ex.keptTotal - ex.kept[i] + size
	if total > MaxRunDataBytes {
		return orcheo.Permanent(fmt.Errorf("the run's step outputs would take %d bytes, more than the limit of %d", total, MaxRunDataBytes))
	}
	ex.kept[i], ex.keptTotal = size, total
	return nil
}

func (ex *executor) execute(ctx context.Context) {
	p := ex.prog
	ex.visited, ex.active = make([]bool, len(p.nodes)), make([]bool, len(p.nodes))
	var resumed *checkpoint
	if len(ex.resume) > 0 {
		c, err := ex.restore(ex.resume, ex.visited, ex.active)
		if err != nil {
			ex.x.Err = err
			return
		}
		resumed = c
	} else {
		ex.active[p.graph.start] = true
		if p.timeout > 0 {
			// Real time, as the context that enforces it.
			ex.deadline = time.Now().Add(p.timeout)
		}
	}
	if !ex.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, ex.deadline, &timeoutError{scope: "run", d: p.timeout})
		defer cancel()
	}
	var input any = map[string]any{}
	if len(ex.run.Input) > 0 {
		if err := json.Unmarshal(ex.run.Input, &input); err != nil {
			ex.x.Err = fmt.Errorf("run input is not valid JSON: %w", err)
			return
		}
		if input == nil {
			input = map[string]any{}
		}
	}
	ex.env.Input = input

	ok := true
	if resumed != nil {
		if err := stopReason(ctx); err != nil {
			ex.x.Err = fmt.Errorf("%w before resuming after node %q", err, resumed.Node)
			ok = false
		} else if ok = ex.resumeNode(ctx, resumed); ok {
			for j, n := range p.nodes {
				if n.id == resumed.Node {
					for _, t := range p.graph.out[j] {
						ex.active[t] = true
					}
				}
			}
		}
	}
	for _, i := range p.graph.order {
		if !ok {
			break
		}
		n := p.nodes[i]
		if ex.visited[i] {
			continue
		}
		ex.visited[i] = true
		if !ex.active[i] {
			now := ex.engine.now()
			ex.finish(ex.newStep(n, 0, now), orcheo.StepSkipped, nil, "")
			continue
		}
		if err := stopReason(ctx); err != nil {
			ex.x.Err = fmt.Errorf("%w before node %q", err, n.id)
			break
		}
		var next []string
		if next, ok = ex.executeNode(ctx, i); !ok {
			break
		}
		for _, t := range p.graph.out[i] {
			if next == nil || contains(next, p.nodes[t].id) {
				ex.active[t] = true
			}
		}
	}
	out, err := marshal(ex.env.State)
	if err != nil {
		// State holds only values decoded from JSON, so this is a bug.
		panic(fmt.Sprintf("encode state: %v", err))
	}
	ex.x.Output = out
}

// executeNode runs n, retrying transient failures as its retry option
// allows, records a step per try and folds the result into the
// environment. It returns the edge targets to follow (nil: all) and false
// if the run must stop.
func (ex *executor) executeNode(ctx context.Context, i int) ([]string, bool) {
	n := ex.prog.nodes[i]
	tries := n.retry.tries()
	for try := 1; ; try++ {
		next, err := ex.tryNode(ctx, i, try)
		if err == nil {
			return next, true
		}
		if ex.x.Suspended != nil {
			return nil, false
		}
		if abandoned := (*abandonedError)(nil); errors.As(err, &abandoned) {
			ex.x.Err = &NodeError{Node: n.id, Err: orcheo.Permanent(err)}
			return nil, false
		}
		if stop := stopReason(ctx); stop != nil {
			ex.x.Err = &NodeError{Node: n.id, Err: err}
			return nil, false
		}
		if try < tries && isTransient(err) {
			wait := n.retry.delay(try)
			ex.log.WithFields(logrus.Fields{"node": n.id, "try": try, "wait": wait.String()}).Debug("node failed; retrying")
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				ex.x.Err = fmt.Errorf("%w while waiting to retry node %q", stopReason(ctx), n.id)
				return nil, false
			case <-timer.C:
			}
			continue
		}
		if n.continueOnError {
			ex.env.Steps[n.id] = map[string]any{"output": nil, "status": string(orcheo.StepFailed), "error": errorText(err)}
			return nil, true
		}
		ex.x.Err = &NodeError{Node: n.id, Err: err}
		return nil, false
	}
}

// tryNode runs one try of node i and records its step. On success it
// updates the environment and returns the edges to follow.
func (ex *executor) tryNode(ctx context.Context, i, try int) ([]string, error) {
	n := ex.prog.nodes[i]
	started, resume := ex.engine.now(), (*childWait)(nil)
	if c := ex.resumed; c != nil {
		// The step the run suspended at goes on: same start, same Seq.
		started, resume, ex.resumed = c.StartedAt, c.Child, nil
	}
	step := ex.newStep(n, try, started)
	ex.record(step)
	scope := &Scope{Node: n.id, Type: n.typ, Run: ex.run, Logger: ex.log.WithField("node", n.id),
		env: ex.env, engine: ex.engine, step: step, nodeTimeout: n.timeout > 0, timeout: n.timeout,
		resume: resume, suspendable: ex.suspendable}
	res, err := ex.runAction(ctx, n, scope)
	if sig := (*suspendSignal)(nil); errors.As(err, &sig) {
		ex.suspend(step, i, sig, ex.visited, ex.active)
		scope.Logger.WithField("until", sig.until.UTC().Format(time.RFC3339)).Debug("run suspended")
		return nil, err
	}
	var raw json.RawMessage
	var decoded any
	if err == nil {
		raw, decoded, err = normalise(res.Output)
	}
	var merge map[string]any
	if err == nil && res.MergeState {
		var isObject bool
		if merge, isObject = decoded.(map[string]any); !isObject {
			err = errors.New("output must be an object to merge into the state")
		}
	}
	if err == nil {
		for _, id := range res.Next {
			if !ex.hasEdge(i, id) {
				err = fmt.Errorf("chose %q, which is not the target of an edge from this node", id)
			}
		}
	}
	if err == nil {
		err = ex.keep(i, len(raw))
	}
	if err != nil {
		ex.finish(step, orcheo.StepFailed, nil, errorText(err))
		scope.Logger.WithFields(logrus.Fields{"type": n.typ, "try": try}).Debug("node failed")
		return nil, err
	}
	for k, v := range merge {
		ex.env.State[k] = v
	}
	ex.env.Steps[n.id] = map[string]any{"output": decoded, "status": string(orcheo.StepSucceeded)}
	ex.finish(step, orcheo.StepSucceeded, ex.truncate(raw), "")
	scope.Logger.WithField("type", n.typ).Debug("node succeeded")
	return res.Next, nil
}

// runAction runs n's action in its own goroutine under the node's context,
// so that a timeout or cancel ends the node even while an expression is
// still evaluating; the abandoned evaluation finishes in the background and
// its result is dropped. A panic in the action becomes the node's error.
func (ex *executor) runAction(ctx context.Context, n *node, scope *Scope) (Result, error) {
	switch {
	case scope.resume != nil:
		// The node's timeout counts from its first try, before the
		// suspension.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, scope.resume.Deadline, &timeoutError{scope: "node", d: scope.resume.Timeout})
		defer cancel()
	case n.timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, n.timeout, &timeoutError{scope: "node", d: n.timeout})
		defer cancel()
	}
	// The node's expressions stop on this context (see evalGuard).
	scope.ctx = ctx
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				scope.Logger.WithField("stack", string(debug.Stack())).Errorf("node panic: %v", r)
				done <- outcome{err: fmt.Errorf("panic: %v", r)}
			}
		}()
		res, err := n.action.Run(ctx, scope)
		done <- outcome{res: res, err: err}
	}()
	select {
	case o := <-done:
		if o.err != nil && ctx.Err() != nil &&
			(errors.Is(o.err, context.Canceled) || errors.Is(o.err, context.DeadlineExceeded)) {
			return Result{}, stopReason(ctx)
		}
		return o.res, o.err
	case <-ctx.Done():
		// Wait for the node to stop before going on: its goroutine reads
		// the run's steps and state, which the executor writes next (a
		// retry, continue_on_error, the next node). Built-in nodes stop
		// within milliseconds of their context.
		timer := time.NewTimer(abandonGrace)
		defer timer.Stop()
		select {
		case o := <-done:
			if o.err == nil {
				return o.res, nil
			}
			return Result{}, stopReason(ctx)
		case <-timer.C:
			scope.Logger.WithField("grace", abandonGrace.String()).Error("node did not stop after its timeout or cancel; ending the run")
			return Result{}, &abandonedError{stop: stopReason(ctx)}
		}
	}
}

// abandonGrace is how long a node may take to stop once its context is
// done. One that takes longer is left running in the background, and the
// run ends (abandonedError), so the executor never writes what the node
// may still be reading.
const abandonGrace = 2 * time.Second

// abandonedError ends the run at a node that did not stop after its
// timeout or cancel. Neither a retry nor continue_on_error goes past it.
type abandonedError struct{ stop error }

func (e *abandonedError) Error() string {
	return fmt.Sprintf("%v, and the node did not stop within %s of it", e.stop, abandonGrace)
}

func (e *abandonedError) Unwrap() error { return e.stop }

// hasEdge reports whether node i has an edge to the node id.
func (ex *executor) hasEdge(i int, id string) bool {
	for _, t := range ex.prog.graph.out[i] {
		if ex.prog.nodes[t].id == id {
			return true
		}
	}
	return false
}

// liveStep is a step being executed. The executor owns it; a node's
// goroutine may set its input through Scope.SetInput, hence the lock.
type liveStep struct {
	ex *executor
	mu sync.Mutex
	st orcheo.RunStep
	// done is set once the step ended, so a late SetInput from an
	// abandoned node changes nothing.
	done bool
}

// newStep starts the step of one try of n (try 0: a skipped node).
func (ex *executor) newStep(n *node, try int, started time.Time) *liveStep {
	ls := &liveStep{ex: ex, st: orcheo.RunStep{
		RunID:       ex.run.ID,
		Attempt:     ex.run.Attempt,
		Seq:         ex.seqBase + len(ex.x.Steps) + 1,
		Node:        n.id,
		NodeType:    n.typ,
		Status:      orcheo.StepRunning,
		NodeAttempt: max(try, 1),
		StartedAt:   started,
	}}
	// The step takes its seq now; finish fills in the final record.
	ex.x.Steps = append(ex.x.Steps, nil)
	return ls
}

func (ls *liveStep) setInput(raw json.RawMessage) {
	ls.mu.Lock()
	if ls.done {
		ls.mu.Unlock()
		return
	}
	ls.st.Input = raw
	cp := ls.st
	ls.mu.Unlock()
	ls.ex.recordCopy(&cp)
}

// record reports a step's current state to the recorder.
func (ex *executor) record(ls *liveStep) {
	ls.mu.Lock()
	cp := ls.st
	ls.mu.Unlock()
	ex.recordCopy(&cp)
}

func (ex *executor) recordCopy(st *orcheo.RunStep) {
	if ex.recorder != nil {
		ex.recorder.RecordStep(ex.ctx, st)
	}
}

// finish ends a step now with status and records it.
func (ex *executor) finish(ls *liveStep, status orcheo.StepStatus, output json.RawMessage, errText string) {
	completed := ex.engine.now()
	ls.mu.Lock()
	ls.done = true
	ls.st.Status, ls.st.Output, ls.st.Error, ls.st.CompletedAt = status, output, errText, &completed
	cp := ls.st
	ls.mu.Unlock()
	ex.x.Steps[cp.Seq-ex.seqBase-1] = &cp
	final := cp
	ex.recordCopy(&final)
}

// truncate replaces an output larger than the engine's limit with a
// marker: {"truncated": true, "bytes": <size>, "preview": "<first KiB>"}.
// Expressions still see the whole output; only the step record is cut.
func (ex *executor) truncate(raw json.RawMessage) json.RawMessage {
	if len(raw) <= ex.engine.maxOutput {
		return raw
	}
	n := min(previewBytes, ex.engine.maxOutput/2)
	preview := strings.ToValidUTF8(string(raw[:n]), "")
	out, err := marshal(map[string]any{"truncated": true, "bytes": len(raw), "preview": preview})
	if err != nil {
		return nil
	}
	return out
}

// previewBytes is how much of a truncated output the marker keeps.
const previewBytes = 1024

// normalise encodes a node's output as JSON and decodes it back, so that
// later expressions see exactly what the step records.
func normalise(v any) (json.RawMessage, any, error) {
	if v == nil {
		return nil, nil, nil
	}
	// Bound the encoding before making it: an output may hold one large
	// string many times over.
	if size, err := valueSize(v, MaxNodeOutputBytes); err != nil {
		return nil, nil, fmt.Errorf("output is not JSON: %w", err)
	} else if size > MaxNodeOutputBytes {
		return nil, nil, orcheo.Permanent(fmt.Errorf("output is larger than %d bytes", MaxNodeOutputBytes))
	}
	raw, err := marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("output is not JSON: %w", err)
	}
	var decoded any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return nil, nil, fmt.Errorf("output is not JSON: %w", err)
	}
	return raw, decoded, nil
}
