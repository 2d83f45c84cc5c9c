package tasks

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// RunStarter starts child runs for workflow nodes: it implements
// orcheo.RunStarter on a RunService, a WorkflowService and a RunQueue, the
// same way the API creates manual runs (store, then enqueue; a failed
// enqueue is left to the requeuer).
type RunStarter struct {
	Workflows orcheo.WorkflowService
	Runs      orcheo.RunService
	Queue     orcheo.RunQueue
	Logger    logrus.FieldLogger
}

var _ orcheo.RunStarter = (*RunStarter)(nil)

// StartChildRun creates and enqueues a run of c.Workflow's latest version.
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
	if wf.Archived() {
		return nil, orcheo.Errorf(orcheo.ECONFLICT, "workflow %q is archived", wf.Handle)
	}
	input := c.Input
	if len(input) == 0 {
		input = []byte(`{}`)
	}
	run := &orcheo.Run{
		WorkflowID:     wf.ID,
		VersionID:      wf.LatestVersionID,
		Queue:          wf.Queue,
		TriggeredBy:    orcheo.TriggerWorkflow,
		Input:          input,
		IdempotencyKey: fmt.Sprintf("parent:%s:%d:%s", c.Parent.ID, c.Parent.Attempt-c.Parent.ReleasedAttempts, c.Node),
	}
	existing, created, err := s.Runs.CreateRun(ctx, run)
	if err != nil {
		return nil, fmt.Errorf("create child run: %w", err)
	}
	if !created {
		return existing, nil
	}
	if err := s.Queue.EnqueueRun(ctx, run); err != nil {
		// The run is stored; the requeuer enqueues it once it is marked.
		if merr := s.Runs.MarkRunUnenqueued(context.WithoutCancel(ctx), run.ID); merr != nil && s.Logger != nil {
			s.Logger.WithError(merr).WithField("run_id", run.ID).Error("mark child run unenqueued")
		}
		if s.Logger != nil {
			s.Logger.WithError(err).WithField("run_id", run.ID).Warn("enqueue child run; left to the requeuer")
		}
	}
	return run, nil
}

// FindRunByID returns the run.
func (s *RunStarter) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	return s.Runs.FindRunByID(ctx, id)
}
