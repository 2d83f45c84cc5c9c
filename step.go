package orcheo

import (
	"context"
	"encoding/json"
)

// StepRecorder hears of a run's steps while the engine executes it, so that
// a running run shows its progress. tasks/ implements it on
// RunService.SaveRunStep.
type StepRecorder interface {
	// RecordStep is called when a step starts (Status StepRunning) and
	// again when it ends, with the same Seq; a skipped step is recorded
	// once. The engine calls it from the run's goroutine, one step at a
	// time, so it must return quickly (buffer, do not write inline), and
	// must not keep step: the engine may reuse it after the call.
	RecordStep(ctx context.Context, step *RunStep)
}

// StepRecorderFunc adapts a function to StepRecorder.
type StepRecorderFunc func(ctx context.Context, step *RunStep)

// RecordStep calls f.
func (f StepRecorderFunc) RecordStep(ctx context.Context, step *RunStep) { f(ctx, step) }

// ChildRun asks a RunStarter for a run of another workflow.
type ChildRun struct {
	// Parent is the run whose workflow node starts the child; Node is that
	// node's id. Together with the parent's attempt (as counted against
	// max_attempts: Attempt - ReleasedAttempts, the same across a
	// suspension or a hand-back) they make the child's idempotency key, so
	// a repeated start of the same node attempt yields the same child.
	Parent *Run
	Node   string
	// Workflow is the child workflow's id or handle.
	Workflow string
	// Input is the child's input (JSON); empty means {}.
	Input json.RawMessage
}

// RunStarter lets a workflow start runs of other workflows and follow them.
// The engine takes one through engine.Options; cmd/orcheo wires one built on
// RunService, WorkflowService and RunQueue (tasks.RunStarter).
type RunStarter interface {
	// StartChildRun creates a run of c.Workflow's latest version, triggered
	// by "workflow", and enqueues it. Starting the same (parent, attempt,
	// node) again returns the run created the first time. Returns
	// ENOTFOUND if the workflow does not exist and ECONFLICT if it is
	// archived.
	StartChildRun(ctx context.Context, c ChildRun) (*Run, error)

	// FindRunByID returns a run, for waiting on a child. Returns ENOTFOUND.
	FindRunByID(ctx context.Context, id string) (*Run, error)
}
