package tasks

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
)

// RunStarter starts child runs for workflow nodes: it implements
// orcheo.RunStarter on a WorkflowService, a RunService (for the bounds)
// and the RunSubmitter that stores and publishes every run.
type RunStarter struct {
	Workflows orcheo.WorkflowService
	Runs      orcheo.RunService
	Submitter orcheo.RunSubmitter

	// Bounds on workflows that start each other, so that one run can never
	// start an unbounded number of runs (a workflow that starts itself).
	// Zero fields take the defaults below.
	//
	// MaxDepth is the longest chain of parents a child may have: a root
	// run is at depth 0, its children at 1.
	MaxDepth int
	// MaxChildren is how many child runs one run may start over all its
	// attempts.
	MaxChildren int
	// MaxTree is how many runs the tree under one root run may hold, not
	// counting the root. Checked before each start, so concurrent starts in
	// one tree may pass it by at most the number of runs starting at once.
	MaxTree int
}

// Defaults of RunStarter's bounds.
const (
	MaxChildDepthDefault = 10
	MaxChildRunsDefault  = 100
	MaxRunTreeDefault    = 1000
)

var _ orcheo.RunStarter = (*RunStarter)(nil)

// StartChildRun submits a run of c.Workflow's latest version.
// Its idempotency key names the parent run, attempt and node, so starting
// the same node attempt again (a retried node, a redelivered message)
// returns the child created the first time and enqueues nothing. The
// attempt is counted as against max_attempts (Attempt - ReleasedAttempts):
// a claim after a suspension or a hand-back at shutdown has a new Attempt
// number but goes on with the same attempt, so it finds the same child.
func (s *RunStarter) StartChildRun(ctx context.Context, c orcheo.ChildRun) (*orcheo.Run, error) {
	if c.Parent == nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "a child run needs a parent run")
	}
	wf, err := s.Workflows.FindWorkflowByRef(ctx, c.Workflow)
	if err != nil {
		return nil, err
	}
	input := c.Input
	if len(input) == 0 {
		input = []byte(`{}`)
	}
	root := c.Parent.RootRunID
	if root == "" {
		root = c.Parent.ID
	}
	run := &orcheo.Run{
		WorkflowID:     wf.ID,
		VersionID:      wf.LatestVersionID,
		TriggeredBy:    orcheo.TriggerWorkflow,
		Input:          input,
		IdempotencyKey: fmt.Sprintf("parent:%s:%d:%s", c.Parent.ID, c.Parent.Attempt-c.Parent.ReleasedAttempts, c.Node),
		ParentRunID:    c.Parent.ID,
		RootRunID:      root,
		Depth:          c.Parent.Depth + 1,
	}
	if err := s.checkBounds(ctx, run); err != nil {
		return nil, err
	}
	// The submitter refuses an archived workflow (ECONFLICT) and returns
	// the child created the first time when the key was used before.
	child, _, err := s.Submitter.SubmitRun(ctx, wf, run)
	if err != nil {
		return nil, fmt.Errorf("create child run: %w", err)
	}
	return child, nil
}

// checkBounds refuses a child run beyond MaxDepth, MaxChildren or MaxTree
// with EINVALID (the workflow node fails with the message, and is not
// retried). The child a repeated start finds again is not counted: it was
// within the bounds when it was created.
func (s *RunStarter) checkBounds(ctx context.Context, run *orcheo.Run) error {
	maxDepth := orDefault(s.MaxDepth, MaxChildDepthDefault)
	if run.Depth > maxDepth {
		return orcheo.Errorf(orcheo.EINVALID, "child run refused: it would be %d levels below its root run, and child runs nest at most %d deep (ORCHEO_MAX_CHILD_DEPTH)", run.Depth, maxDepth)
	}
	children, tree, err := s.Runs.CountChildRuns(ctx, run.ParentRunID, run.RootRunID, run.IdempotencyKey)
	if err != nil {
		return err
	}
	if maxChildren := orDefault(s.MaxChildren, MaxChildRunsDefault); children >= maxChildren {
		return orcheo.Errorf(orcheo.EINVALID, "child run refused: run %s has started %d child runs, the most one run may start (ORCHEO_MAX_CHILD_RUNS)", run.ParentRunID, children)
	}
	if maxTree := orDefault(s.MaxTree, MaxRunTreeDefault); tree >= maxTree {
		return orcheo.Errorf(orcheo.EINVALID, "child run refused: root run %s already has %d runs below it, the most one tree may hold (ORCHEO_MAX_RUN_TREE)", run.RootRunID, tree)
	}
	return nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// FindRunByID returns the run.
func (s *RunStarter) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	return s.Runs.FindRunByID(ctx, id)
}
