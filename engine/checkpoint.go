package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

// checkpointVersion is the format of checkpoint. A checkpoint of another
// version is refused, so a worker never resumes what it cannot read.
const checkpointVersion = 1

// checkpoint is what resuming a run suspended at a delay node, or at a
// workflow node waiting for its child run, needs:
// everything the nodes after it can see or that decides which of them run.
// It holds node ids, not positions, so it does not depend on how the graph
// orders nodes. Only the engine reads it (orcheo.Suspension.Checkpoint).
type checkpoint struct {
	V int `json:"v"`
	// Node is the node the run stopped at; Seq, StartedAt and Until are
	// its step's number, start and end of the wait (for a child wait, the
	// next look at the child).
	Node      string    `json:"node"`
	Seq       int       `json:"seq"`
	StartedAt time.Time `json:"started_at"`
	Until     time.Time `json:"until"`
	// Child is set when Node is a workflow node waiting for its child.
	Child *childWait `json:"child,omitempty"`
	// Deadline is when the run times out (the definition's timeout counted
	// from the first start, the wait included); zero: no timeout.
	Deadline time.Time `json:"deadline,omitzero"`
	// State and Steps are the expression environment's state and steps.
	State map[string]any `json:"state"`
	Steps map[string]any `json:"steps"`
	// Done lists the nodes already visited (run or skipped), the delay
	// included; Active the nodes not yet visited that an edge leads to.
	Done   []string `json:"done"`
	Active []string `json:"active"`
}

// suspendSignal is what a delay or workflow action returns, as its error,
// to ask the executor to suspend the run until until; child is the
// workflow node's wait.
type suspendSignal struct {
	until time.Time
	child *childWait
}

func (s *suspendSignal) Error() string {
	return "suspended until " + s.until.UTC().Format(time.RFC3339)
}

// canSuspend reports whether a wait until end may suspend the run instead
// of sleeping: the caller can resume it, the wait is longer than the
// engine's threshold, and no deadline (the node's, the run's, the
// caller's) falls before end, because a suspended run would miss it; such
// a wait sleeps and the deadline stops it as before.
func (s *Scope) canSuspend(ctx context.Context, end time.Time) bool {
	if !s.suspendable || s.engine == nil || s.engine.suspendAfter <= 0 {
		return false
	}
	if end.Sub(s.Now()) <= s.engine.suspendAfter {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		return false
	}
	return true
}

// suspend ends the execution at the waiting step ls of node i, with the
// checkpoint made from the environment and the graph's progress.
func (ex *executor) suspend(ls *liveStep, i int, sig *suspendSignal, visited []bool, active []bool) {
	p := ex.prog
	c := &checkpoint{V: checkpointVersion, Node: p.nodes[i].id, Seq: ls.st.Seq, StartedAt: ls.st.StartedAt, Until: sig.until,
		Child: sig.child, Deadline: ex.deadline, State: ex.env.State, Steps: ex.env.Steps, Done: []string{}, Active: []string{}}
	for j, n := range p.nodes {
		switch {
		case visited[j]:
			c.Done = append(c.Done, n.id)
		case active[j]:
			c.Active = append(c.Active, n.id)
		}
	}
	ex.park(ls, c)
}

// park ends the execution at the waiting step ls with checkpoint c: the
// step is recorded as waiting, and Execution.Suspended carries c.
func (ex *executor) park(ls *liveStep, c *checkpoint) {
	ls.mu.Lock()
	ls.done = true
	ls.st.Status = orcheo.StepWaiting
	st := ls.st
	ls.mu.Unlock()
	ex.x.Steps[st.Seq-ex.seqBase-1] = &st
	final := st
	ex.recordCopy(&final)
	ex.suspendWith(c)
}

// suspendWith ends the execution with checkpoint c.
func (ex *executor) suspendWith(c *checkpoint) {
	raw, err := marshal(c)
	if err != nil {
		// The environment holds only values decoded from JSON.
		panic(fmt.Sprintf("encode checkpoint: %v", err))
	}
	ex.x.Suspended = &orcheo.Suspension{Until: c.Until, Checkpoint: raw}
}

// restore loads a checkpoint into the executor: the environment, which
// nodes are visited and active, the numbering of steps and the deadline.
// It then records the delay's step as succeeded, or, when the resume came
// before the delay's end, returns the time still to wait.
func (ex *executor) restore(raw json.RawMessage, visited, active []bool) (*checkpoint, error) {
	var c checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("resume: checkpoint is not readable: %w", err)
	}
	if c.V != checkpointVersion {
		return nil, fmt.Errorf("resume: checkpoint version %d is not %d", c.V, checkpointVersion)
	}
	index := make(map[string]int, len(ex.prog.nodes))
	for i, n := range ex.prog.nodes {
		index[n.id] = i
	}
	mark := func(ids []string, set []bool) error {
		for _, id := range ids {
			i, ok := index[id]
			if !ok {
				return fmt.Errorf("resume: checkpoint names node %q, which the definition does not have", id)
			}
			set[i] = true
		}
		return nil
	}
	if err := errors.Join(mark(c.Done, visited), mark(c.Active, active), mark([]string{c.Node}, visited)); err != nil {
		return nil, err
	}
	if c.State == nil {
		c.State = map[string]any{}
	}
	if c.Steps == nil {
		c.Steps = map[string]any{}
	}
	ex.env.State, ex.env.Steps = c.State, c.Steps
	ex.deadline = c.Deadline
	// The resumed attempt numbers its steps on from the delay's, which it
	// records again (same Seq) as it ends.
	ex.seqBase = c.Seq - 1
	return &c, nil
}

// resumeNode ends the node the run was suspended at, in the resumed
// attempt; it reports false if the run must stop.
func (ex *executor) resumeNode(ctx context.Context, c *checkpoint) bool {
	if c.Child != nil {
		return ex.resumeChild(ctx, c)
	}
	return ex.resumeDelay(ctx, c)
}

// resumeChild looks at the child run a workflow node waits for. While the
// child is still going (or the look failed) and the node's deadline is
// ahead, the run suspends again until the next look, recording no step, so
// a long child does not add a step per look. Otherwise the node runs again
// with the wait (Scope.resume): it ends with the child's outcome or times
// out, under its retry and continue_on_error options, or suspends again if
// the child's state went back under it.
func (ex *executor) resumeChild(ctx context.Context, c *checkpoint) bool {
	if ex.suspendable && ex.engine.runs != nil && ex.engine.childInSlot > 0 && time.Now().Before(c.Child.Deadline) {
		if r, err := ex.engine.runs.FindRunByID(ctx, c.Child.RunID); !childEnded(r, err) {
			sig := c.Child.recheck(ctx, ex.engine.childPoll)
			c.Until, c.Child = sig.until, sig.child
			ex.suspendWith(c)
			return false
		}
	}
	i := ex.nodeIndex(c.Node)
	ex.resumed = c
	_, ok := ex.executeNode(ctx, i)
	return ok
}

// nodeIndex returns the index of the node id, which exists.
func (ex *executor) nodeIndex(id string) int {
	for j, n := range ex.prog.nodes {
		if n.id == id {
			return j
		}
	}
	panic("no node " + id)
}

// resumeDelay ends the delay step the run was suspended at, in the resumed
// attempt. A resume before the delay's end (an early delivery) waits for
// the rest, suspending again if that is still long; it reports false if the
// run must stop (suspended again, cancelled or timed out).
func (ex *executor) resumeDelay(ctx context.Context, c *checkpoint) bool {
	n := ex.prog.nodes[ex.nodeIndex(c.Node)]
	ls := ex.newStep(n, 1, c.StartedAt)
	until := c.Until.UTC().Format(time.RFC3339Nano)
	ls.st.Input, _ = marshal(map[string]any{"until": until})
	ex.record(ls)
	if wait := c.Until.Sub(ex.engine.now()); wait > 0 {
		scope := &Scope{engine: ex.engine, suspendable: ex.suspendable}
		if scope.canSuspend(ctx, c.Until) {
			// Nothing changed since the checkpoint was made: hand it back.
			ex.park(ls, c)
			return false
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			err := stopReason(ctx)
			ex.finish(ls, orcheo.StepFailed, nil, errorText(err))
			ex.x.Err = &NodeError{Node: n.id, Err: err}
			return false
		case <-t.C:
		}
	}
	// "waited" is the delay's length, as when it sleeps, however late the
	// resume came.
	out := map[string]any{"until": until, "waited": max(c.Until.Sub(c.StartedAt), 0).Round(time.Millisecond).String()}
	raw, decoded, err := normalise(out)
	if err != nil {
		panic(fmt.Sprintf("encode delay output: %v", err))
	}
	ex.env.Steps[n.id] = map[string]any{"output": decoded, "status": string(orcheo.StepSucceeded)}
	ex.finish(ls, orcheo.StepSucceeded, raw, "")
	return true
}
