// Package rules holds the checks and defaults both store backends apply
// before they touch the database, so PostgreSQL and SQLite agree on them.
package rules

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/orcheo/orcheo"
)

// Listing limits: a filter's Limit of 0 means DefaultLimit; larger than
// MaxLimit is cut to MaxLimit.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Limit returns the effective page size for a filter's Limit.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// Offset returns the effective offset; negative means 0.
func Offset(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// DefaultUnenqueuedBatch is ClaimUnenqueuedRuns's limit when given none.
const DefaultUnenqueuedBatch = 100

// Time returns t in UTC at the microsecond precision both backends keep, so
// what is written equals what is read back.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// TimePtr is Time for an optional time.
func TimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := Time(*t)
	return &u
}

// Definition checks a workflow definition before it is stored.
func Definition(def json.RawMessage) error {
	if len(def) == 0 || !json.Valid(def) {
		return orcheo.Errorf(orcheo.EINVALID, "workflow definition must be JSON")
	}
	return orcheo.CheckJSON("workflow definition", def)
}

// NewRun validates run and fills in the fields CreateRun owns: ID, Status,
// Attempt, CreatedAt, EnqueuedAt and defaults for Input and MaxAttempts.
func NewRun(run *orcheo.Run, now time.Time) error {
	if err := run.Validate(); err != nil {
		return err
	}
	if run.MaxAttempts < 0 {
		return orcheo.Errorf(orcheo.EINVALID, "max_attempts must not be negative")
	}
	if run.MaxAttempts == 0 {
		run.MaxAttempts = 1
	}
	if err := runTree(run); err != nil {
		return err
	}
	if len(run.Input) == 0 {
		run.Input = json.RawMessage(`{}`)
	}
	run.ID = orcheo.NewID()
	run.Status = orcheo.RunPending
	run.Attempt = 0
	run.CreatedAt = now
	run.EnqueuedAt = &now
	run.LeaseUntil, run.WorkerID, run.StartedAt, run.CompletedAt = nil, "", nil, nil
	run.Output, run.Error, run.Steps = nil, "", nil
	run.ScheduledFor = TimePtr(run.ScheduledFor)
	run.NotBefore = TimePtr(run.NotBefore)
	return nil
}

// runTree checks a new run's place in its tree: a root run has no parent,
// no root and depth 0; a child names both (ids) and is at least 1 deep.
func runTree(run *orcheo.Run) error {
	if run.ParentRunID == "" {
		if run.RootRunID != "" || run.Depth != 0 {
			return orcheo.Errorf(orcheo.EINVALID, "a run without a parent has no root run and depth 0")
		}
		return nil
	}
	if !orcheo.IsID(run.ParentRunID) || !orcheo.IsID(run.RootRunID) || run.Depth < 1 {
		return orcheo.Errorf(orcheo.EINVALID, "a child run needs a parent run id, a root run id and a depth of at least 1")
	}
	return nil
}

// Completion validates c and returns the steps to store for attempt of run
// id: copies with RunID and Attempt set, Seq defaulted to the 1-based
// position, and times normalised.
func Completion(id string, attempt int, c orcheo.RunCompletion) ([]*orcheo.RunStep, error) {
	if c.Status != orcheo.RunSucceeded && c.Status != orcheo.RunFailed && c.Status != orcheo.RunCancelled {
		return nil, orcheo.Errorf(orcheo.EINVALID, "a run completes as succeeded, failed or cancelled, not %q", c.Status)
	}
	if c.RetryAt != nil && c.Status != orcheo.RunFailed {
		return nil, orcheo.Errorf(orcheo.EINVALID, "only a failed attempt can be retried")
	}
	if len(c.Output) > 0 && !json.Valid(c.Output) {
		return nil, orcheo.Errorf(orcheo.EINVALID, "run output must be JSON")
	}
	if len(c.Output) > 0 {
		if err := orcheo.CheckJSON("run output", c.Output); err != nil {
			return nil, err
		}
	}
	steps := make([]*orcheo.RunStep, len(c.Steps))
	seen := make(map[int]bool, len(c.Steps))
	for i, s := range c.Steps {
		if s == nil {
			return nil, orcheo.Errorf(orcheo.EINVALID, "step %d is missing", i+1)
		}
		cp := *s
		cp.RunID, cp.Attempt = id, attempt
		if cp.Seq == 0 {
			cp.Seq = i + 1
		}
		if seen[cp.Seq] {
			return nil, orcheo.Errorf(orcheo.EINVALID, "step seq %d is repeated", cp.Seq)
		}
		seen[cp.Seq] = true
		norm, err := Step(&cp)
		if err != nil {
			return nil, err
		}
		steps[i] = norm
	}
	return steps, nil
}

// Transition kinds written to run_events.
const (
	EventCreated   = "created"
	EventClaimed   = "claimed"
	EventSucceeded = "succeeded"
	EventFailed    = "failed"
	EventCancelled = "cancelled"
)

// NotPending is the ECONFLICT for a transition that needs a pending run.
func NotPending(id string, status orcheo.RunStatus, notBefore *time.Time, now time.Time) error {
	if status == orcheo.RunPending && notBefore != nil && notBefore.After(now) {
		return orcheo.Errorf(orcheo.ECONFLICT, "run %s is not due until %s", id, notBefore.UTC().Format(time.RFC3339))
	}
	if status == orcheo.RunPending {
		return orcheo.Errorf(orcheo.ECONFLICT, "run %s changed while being claimed", id)
	}
	return orcheo.Errorf(orcheo.ECONFLICT, "run %s is %s, not pending", id, status)
}

// NotRunningAttempt is the ECONFLICT for a completion that lost its claim.
func NotRunningAttempt(id string, attempt int, status orcheo.RunStatus, current int) error {
	if status != orcheo.RunRunning {
		return orcheo.Errorf(orcheo.ECONFLICT, "run %s is %s, not running", id, status)
	}
	return orcheo.Errorf(orcheo.ECONFLICT, "run %s is running attempt %d, not %d", id, current, attempt)
}

// RunNotFound is the ENOTFOUND for a run id.
func RunNotFound(id string) error { return orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id) }

// WorkflowNotFound is the ENOTFOUND for a workflow id or handle.
func WorkflowNotFound(ref string) error {
	return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", ref)
}

// NotCancellable is the ECONFLICT for cancelling a run that is not pending.
func NotCancellable(id string, status orcheo.RunStatus) error {
	return orcheo.Errorf(orcheo.ECONFLICT, "run %s is %s; only a pending or running run can be cancelled", id, status)
}

// SortByCreated orders runs oldest first, ties by id.
func SortByCreated(runs []*orcheo.Run) {
	slices.SortFunc(runs, func(a, b *orcheo.Run) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
}
