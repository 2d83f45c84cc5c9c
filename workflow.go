package orcheo

import (
	"context"
	"encoding/json"
	"regexp"
	"time"
)

// Workflow is a named, versioned automation. Its handle is a stable,
// human-friendly reference; its versions are immutable.
type Workflow struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
	Name   string `json:"name"`
	// Queue is the task queue its runs are sent to; workers listen on one
	// or more queues. Empty means DefaultQueue.
	Queue      string     `json:"queue"`
	CreatedAt  time.Time  `json:"created_at"`
	ArchivedAt *time.Time `json:"archived_at,omitempty"`

	// LatestVersion and LatestVersionID are filled in by the store from the
	// newest row of workflow_versions.
	LatestVersion   int    `json:"latest_version"`
	LatestVersionID string `json:"latest_version_id"`
}

var (
	handleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	queueRE  = handleRE
)

// DefaultQueue is the queue of workflows that name none.
const DefaultQueue = "default"

// Validate returns EINVALID if the workflow's fields are not acceptable
// and fills in the default queue.
func (w *Workflow) Validate() error {
	if !handleRE.MatchString(w.Handle) {
		return Errorf(EINVALID, "handle %q must be 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit", w.Handle)
	}
	if IsID(w.Handle) {
		return Errorf(EINVALID, "handle %q must not look like an id", w.Handle)
	}
	if w.Queue == "" {
		w.Queue = DefaultQueue
	} else if !queueRE.MatchString(w.Queue) {
		return Errorf(EINVALID, "queue %q must be 1-63 characters of a-z, 0-9, '-' or '_'", w.Queue)
	}
	if len(w.Name) > 200 {
		return Errorf(EINVALID, "name must be at most 200 characters")
	}
	return CheckText("name", w.Name)
}

// IsHandle reports whether s is a well-formed handle. A lookup by anything
// else (NUL, invalid UTF-8, upper case…) can match no workflow, so stores
// answer it without a query.
func IsHandle(s string) bool { return handleRE.MatchString(s) && !IsID(s) }

// Archived reports whether the workflow was archived; archived workflows
// accept no new runs.
func (w *Workflow) Archived() bool { return w.ArchivedAt != nil }

// WorkflowVersion is one immutable definition of a workflow. Runs keep the
// version they were created with.
type WorkflowVersion struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflow_id"`
	Version    int             `json:"version"`
	Definition json.RawMessage `json:"definition"`
	CreatedAt  time.Time       `json:"created_at"`
}

// WorkflowFilter selects workflows. Nil fields do not filter.
type WorkflowFilter struct {
	Handle          *string
	IncludeArchived bool
	Offset          int
	Limit           int
}

// WorkflowService stores workflows and their versions.
type WorkflowService interface {
	// FindWorkflowByRef returns the workflow whose id or handle is ref,
	// archived or not. Returns ENOTFOUND if there is none.
	FindWorkflowByRef(ctx context.Context, ref string) (*Workflow, error)

	// FindWorkflows returns the workflows matching filter, newest first, and
	// the total number of matches ignoring Offset and Limit.
	FindWorkflows(ctx context.Context, filter WorkflowFilter) ([]*Workflow, int, error)

	// CreateWorkflow stores wf with definition as its version 1 and fills in
	// wf's ID, CreatedAt and latest version. The definition must already be
	// compiled by the engine. Returns ECONFLICT if the handle is taken.
	CreateWorkflow(ctx context.Context, wf *Workflow, definition json.RawMessage) (*WorkflowVersion, error)

	// CreateWorkflowVersion stores definition as the next version of the
	// workflow. Returns ENOTFOUND if the workflow does not exist and
	// ECONFLICT if it is archived.
	CreateWorkflowVersion(ctx context.Context, workflowID string, definition json.RawMessage) (*WorkflowVersion, error)

	// FindWorkflowVersions returns all versions of a workflow, oldest first.
	FindWorkflowVersions(ctx context.Context, workflowID string) ([]*WorkflowVersion, error)

	// FindWorkflowVersionByID returns one version. Returns ENOTFOUND.
	FindWorkflowVersionByID(ctx context.Context, id string) (*WorkflowVersion, error)

	// ArchiveWorkflow marks the workflow archived; archiving twice is a
	// no-op. Returns ENOTFOUND.
	ArchiveWorkflow(ctx context.Context, id string) (*Workflow, error)
}

// Engine compiles and executes workflow definitions. Implemented by engine/.
type Engine interface {
	// Compile parses a JSON or YAML definition, validates it and returns its
	// canonical JSON form, which is what the store keeps. Returns EINVALID
	// with a message naming the node and field at fault.
	Compile(definition []byte) (json.RawMessage, error)

	// Execute runs a compiled definition for run. Failures of the workflow
	// are reported in Execution.Err, never as a panic. Cancelling ctx stops
	// execution before the next node and aborts a node that waits (an HTTP
	// call, a delay). opts.Recorder, when set, hears of every step as it
	// starts and ends.
	Execute(ctx context.Context, definition json.RawMessage, run *Run, opts ExecuteOptions) *Execution
}

// ExecuteOptions are the per-run options of Engine.Execute. The zero value
// records nothing as it happens.
type ExecuteOptions struct {
	// Recorder hears of each step as it happens. Nil: none.
	Recorder StepRecorder
	// Suspendable says the caller can store a suspension and execute the
	// run again later (tasks/ does): a delay node longer than the
	// engine's suspend threshold, or a workflow node whose child run is
	// not over after a short wait, then ends the execution with
	// Execution.Suspended instead of waiting. Without it every delay and
	// child waits in the caller's goroutine.
	Suspendable bool
	// Checkpoint, when set, is the Suspension.Checkpoint of an earlier
	// execution of the same run and definition: execution resumes after
	// the node it stopped at, with the state and step outputs it had,
	// instead of starting over.
	Checkpoint json.RawMessage
}

// Execution is the result of executing a workflow once.
type Execution struct {
	Output json.RawMessage
	Steps  []*RunStep
	// Err is the run's failure, if any; its message is stored on the run.
	Err error
	// Suspended is set, with Err nil, when the run stopped at a long delay
	// or to wait for a child run, to be resumed later
	// (ExecuteOptions.Suspendable): Steps end with the waiting node's step
	// in status StepWaiting (none when a resumed run found its child still
	// going and suspended again at once) and Output is the state so far.
	Suspended *Suspension
}

// Suspension is where a suspended execution stopped and how to go on.
type Suspension struct {
	// Until is when the delay ends, or when to look at the child run
	// again: execute again, with Checkpoint, at or after it.
	Until time.Time
	// Checkpoint is opaque to everyone but the engine that made it: what
	// ExecuteOptions.Checkpoint needs to resume (state, step outputs,
	// which nodes remain, the run's deadline).
	Checkpoint json.RawMessage
}
