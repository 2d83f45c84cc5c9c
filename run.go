package orcheo

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// RunStatus is the state of a run. Transitions: pending → running →
// succeeded | failed | cancelled, and pending → cancelled.
type RunStatus string

const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
	// RunSkipped records a cron slot that did not fire because the
	// previous run of the schedule was still pending or running; Error
	// says why. A skipped run is terminal from birth and never executes.
	RunSkipped RunStatus = "skipped"
)

// RunStatuses lists every status, in lifecycle order.
var RunStatuses = []RunStatus{RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled, RunSkipped}

// Valid reports whether s is a known status.
func (s RunStatus) Valid() bool {
	for _, v := range RunStatuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether no further transition leaves s.
func (s RunStatus) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled || s == RunSkipped
}

// What created a run.
const (
	TriggerManual  = "manual"
	TriggerWebhook = "webhook"
	TriggerCron    = "cron"
	// TriggerWorkflow marks a child run started by a workflow node of
	// another run.
	TriggerWorkflow = "workflow"
)

// Run is one execution of one workflow version.
type Run struct {
	ID             string          `json:"id"`
	WorkflowID     string          `json:"workflow_id"`
	VersionID      string          `json:"version_id"`
	Version        int             `json:"version"`
	Queue          string          `json:"queue"`
	Status         RunStatus       `json:"status"`
	TriggeredBy    string          `json:"triggered_by"`
	Input          json.RawMessage `json:"input"`
	Output         json.RawMessage `json:"output,omitempty"`
	Error          string          `json:"error,omitempty"`
	Attempt        int             `json:"attempt"`
	MaxAttempts    int             `json:"max_attempts"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	ScheduledFor   *time.Time      `json:"scheduled_for,omitempty"`
	NotBefore      *time.Time      `json:"not_before,omitempty"`
	LeaseUntil     *time.Time      `json:"lease_until,omitempty"`
	WorkerID       string          `json:"worker_id,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	EnqueuedAt     *time.Time      `json:"enqueued_at,omitempty"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	CompletedAt    *time.Time      `json:"completed_at,omitempty"`

	// ReleasedAttempts counts attempts a worker handed back unfinished at
	// shutdown (ReleaseRun). They do not use up MaxAttempts: the attempts
	// used are Attempt - ReleasedAttempts. Attempt itself never goes down,
	// so every claim has its own number and its own steps.
	ReleasedAttempts int `json:"released_attempts,omitempty"`

	// ParentRunID is the run whose workflow node started this one, and
	// RootRunID the run at the top of that chain (the one a webhook, a
	// cron slot or a person started); both are empty on a root run. Depth
	// is the length of the chain of parents: 0 for a root run. They let
	// tasks.RunStarter bound how far and how wide workflows start each
	// other.
	ParentRunID string `json:"parent_run_id,omitempty"`
	RootRunID   string `json:"root_run_id,omitempty"`
	Depth       int    `json:"depth,omitempty"`

	// CancelRequested is set when an operator cancels a running run: the
	// worker executing it stops at the next node and ends it cancelled.
	CancelRequested bool `json:"cancel_requested,omitempty"`

	// Checkpoint is what a suspended run resumes from (SuspendRun): set by
	// the store only on a run whose claim resumes it, that is while the
	// attempts used (Attempt - ReleasedAttempts) are those of the attempt
	// that suspended it. A later attempt (a retry after a failure, a
	// rescue, a manual retry) starts over. It is the engine's business
	// and never leaves the server.
	Checkpoint json.RawMessage `json:"-"`

	// Steps is filled in by FindRunByID only.
	Steps []*RunStep `json:"steps,omitempty"`
}

// Validate returns EINVALID if a new run's fields are not acceptable and
// fills in the default queue.
func (r *Run) Validate() error {
	if r.Queue == "" {
		r.Queue = DefaultQueue
	}
	if r.WorkflowID == "" || r.VersionID == "" {
		return Errorf(EINVALID, "run needs a workflow and a version")
	}
	switch r.TriggeredBy {
	case TriggerManual, TriggerWebhook, TriggerCron, TriggerWorkflow:
	default:
		return Errorf(EINVALID, "unknown trigger %q", r.TriggeredBy)
	}
	if len(r.Input) > 0 && !json.Valid(r.Input) {
		return Errorf(EINVALID, "run input must be JSON")
	}
	if len(r.Input) > 0 {
		if err := CheckJSON("run input", r.Input); err != nil {
			return err
		}
	}
	if len(r.IdempotencyKey) > 255 {
		return Errorf(EINVALID, "idempotency key must be at most 255 characters")
	}
	return CheckText("idempotency key", r.IdempotencyKey)
}

// StepStatus is the outcome of one node.
type StepStatus string

const (
	// StepRunning marks a step saved while its node is still running, so
	// that a running run shows its progress.
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	// StepWaiting marks the delay step at which an attempt suspended the
	// run (RunService.SuspendRun); the attempt that resumes the run
	// records the same node, same Seq, again as it ends.
	StepWaiting StepStatus = "waiting"
)

// RunStep records one node of one attempt of a run.
type RunStep struct {
	RunID    string     `json:"run_id"`
	Attempt  int        `json:"attempt"`
	Seq      int        `json:"seq"`
	Node     string     `json:"node"`
	NodeType string     `json:"type"`
	Status   StepStatus `json:"status"`
	// NodeAttempt counts the tries of the node within this run attempt,
	// from 1: a node retried after a transient failure gets one step per
	// try.
	NodeAttempt int `json:"node_attempt,omitempty"`
	// Input summarises what the node acted on (an http node's method and
	// URL, a delay's end), as JSON; empty for nodes with nothing to say.
	Input       json.RawMessage `json:"input,omitempty"`
	Output      json.RawMessage `json:"output,omitempty"`
	Error       string          `json:"error,omitempty"`
	StartedAt   time.Time       `json:"started_at"`
	CompletedAt *time.Time      `json:"completed_at,omitempty"`
}

// RunFilter selects runs. Nil fields do not filter.
type RunFilter struct {
	WorkflowID *string
	Status     *RunStatus
	// TriggeredBy selects runs created by one trigger (TriggerCron, …).
	TriggeredBy *string
	Offset      int
	Limit       int

	// Queue selects the runs of one queue.
	Queue *string
	// CreatedSince and CreatedUntil bound created_at: since <= created_at
	// < until.
	CreatedSince *time.Time
	CreatedUntil *time.Time
	// ID selects one run by its id, and IdempotencyKey the runs holding
	// that key (of any workflow and trigger): exact matches, for search.
	ID             *string
	IdempotencyKey *string
	// Before, the position of the last run of the previous page, selects
	// the runs after it in the newest-first order (keyset pagination):
	// those created before it, or at the same time with a smaller id.
	// Runs inserted between two pages never shift the next one.
	Before *RunCursor
}

// RunCursor is a position in the newest-first order of runs, (CreatedAt,
// ID) of one run; ListRuns pages resume after it.
type RunCursor struct {
	CreatedAt time.Time
	ID        string
}

// Empty reports whether f selects every run: no field that narrows the
// set is set (Offset, Limit and Before only page through it). Bulk actions
// refuse such a filter unless told to act on all runs.
func (f *RunFilter) Empty() bool {
	return f.WorkflowID == nil && f.Status == nil && f.TriggeredBy == nil && f.Queue == nil &&
		f.CreatedSince == nil && f.CreatedUntil == nil && f.ID == nil && f.IdempotencyKey == nil
}

// Validate returns EINVALID for a filter no run can match because it names
// an unknown status or trigger. A WorkflowID that is not an id is not an
// error: it matches no run.
func (f *RunFilter) Validate() error {
	if f.Status != nil && !f.Status.Valid() {
		return Errorf(EINVALID, "unknown run status %q", *f.Status)
	}
	if f.TriggeredBy != nil {
		switch *f.TriggeredBy {
		case TriggerManual, TriggerWebhook, TriggerCron, TriggerWorkflow:
		default:
			return Errorf(EINVALID, "trigger %q is not one of manual, webhook, cron, workflow", *f.TriggeredBy)
		}
	}
	if f.Queue != nil {
		if !queueRE.MatchString(*f.Queue) {
			return Errorf(EINVALID, "queue %q must be 1-63 characters of a-z, 0-9, '-' or '_'", *f.Queue)
		}
	}
	if f.CreatedSince != nil && f.CreatedUntil != nil && !f.CreatedSince.Before(*f.CreatedUntil) {
		return Errorf(EINVALID, "since must be before until")
	}
	if f.ID != nil && !IsID(*f.ID) {
		return Errorf(EINVALID, "run id %q is not a run id", *f.ID)
	}
	if f.IdempotencyKey != nil {
		if *f.IdempotencyKey == "" || len(*f.IdempotencyKey) > 255 {
			return Errorf(EINVALID, "idempotency key must be 1 to 255 characters")
		}
		if err := CheckText("idempotency key", *f.IdempotencyKey); err != nil {
			return err
		}
	}
	if f.Before != nil && !IsID(f.Before.ID) {
		return Errorf(EINVALID, "cursor names no run")
	}
	return nil
}

// RunCompletion is what a worker reports at the end of an attempt.
type RunCompletion struct {
	Status RunStatus // RunSucceeded, RunFailed or RunCancelled
	Output json.RawMessage
	Error  string
	Steps  []*RunStep

	// RetryAt, on a failed attempt, asks for another attempt at that time:
	// the run goes back to pending with NotBefore = RetryAt (its steps and
	// error kept) instead of failing, provided it has attempts left
	// (Attempt - ReleasedAttempts < MaxAttempts) and no cancel was
	// requested. The caller enqueues it with that delay when the returned
	// run is pending.
	RetryAt *time.Time
}

// RunClaim is one id's outcome in RunService.ClaimRuns: Run is the claimed
// run (running, its attempt incremented), or Err says why that id was not
// claimed (ECONFLICT, ENOTFOUND), exactly as ClaimRun would.
type RunClaim struct {
	ID  string
	Run *Run
	Err error
}

// AttemptCompletion is one item of RunService.CompleteRuns: Completion
// ends attempt Attempt of run RunID.
type AttemptCompletion struct {
	RunID      string
	Attempt    int
	Completion RunCompletion
}

// RunCompleted is one item's outcome in RunService.CompleteRuns: Run is the
// run as stored (pending again when a retry was granted), with the steps
// stored, or Err says why that completion was not (ECONFLICT: the attempt
// lost its claim; ENOTFOUND; EINVALID), exactly as CompleteRun would.
type RunCompleted struct {
	Run *Run
	Err error
}

// RunCreated is one run's outcome in RunService.CreateRuns: Run is the
// stored run with Created true, or the run already holding its idempotency
// key or cron slot with Created false, or Err says why it was not stored
// (EINVALID, ENOTFOUND for the version, or the database's error).
type RunCreated struct {
	Run     *Run
	Created bool
	Err     error
}

// RunService stores runs and moves them through their lifecycle. Every
// transition is one conditional update, so concurrent callers cannot both
// win it.
type RunService interface {
	// CreateRun stores run as pending and fills in its ID, Status, Attempt,
	// CreatedAt and EnqueuedAt (set optimistically: the caller enqueues it
	// next and calls MarkRunUnenqueued if that fails). If run has an
	// IdempotencyKey already used for its workflow by a run of the same
	// trigger (keys of webhooks, manual calls and child runs never match
	// each other), or a ScheduledFor slot already taken for its workflow,
	// the existing run is returned with created=false and nothing is
	// stored. A child run (ParentRunID set) is stored with its
	// ParentRunID, RootRunID and Depth as given.
	CreateRun(ctx context.Context, run *Run) (existing *Run, created bool, err error)

	// CreateRuns stores many runs as CreateRun stores each, in one
	// statement and one commit where the backend can: results[i] is
	// runs[i]'s outcome, and runs[i] is filled in as CreateRun fills it
	// when it was created. One run's idempotency conflict, unknown version
	// or unstorable row fails only that run; a database that cannot be
	// reached fails them all, each with the error. Two runs with the same
	// key (or slot) in one call yield one run: the other gets it with
	// Created false. A run whose own ID is already stored (a retried
	// statement whose first try did commit) counts as created.
	CreateRuns(ctx context.Context, runs []*Run) (results []RunCreated)

	// CountChildRuns counts, for the bounds on child runs, the runs whose
	// parent is parentID (children) and those in the tree under rootID
	// (tree), leaving out any run holding idempotency key exceptKey: the
	// child a repeated start would find again is not a new one.
	CountChildRuns(ctx context.Context, parentID, rootID, exceptKey string) (children, tree int, err error)

	// FindRunByID returns a run with its steps. Returns ENOTFOUND.
	FindRunByID(ctx context.Context, id string) (*Run, error)

	// FindRuns returns runs matching filter, newest first, without steps,
	// and the total count ignoring Offset and Limit. The count reads every
	// matching row: lists people page through use ListRuns.
	FindRuns(ctx context.Context, filter RunFilter) ([]*Run, int, error)

	// ListRuns returns one page of the runs matching filter, newest first
	// by (CreatedAt, ID), without steps: at most filter.Limit runs (0
	// means 50, at most 1000), those after filter.Before when set, and
	// whether more match after the last one. It counts nothing and ignores
	// Offset, so each page costs the same at any depth and table size.
	// Returns EINVALID for an invalid filter.
	ListRuns(ctx context.Context, filter RunFilter) (runs []*Run, more bool, err error)

	// ClaimRun moves a pending run to running for workerID, increments its
	// attempt and sets its lease. Returns ECONFLICT if the run is not
	// pending (a duplicate delivery, or a cancelled run) and ENOTFOUND if it
	// does not exist.
	ClaimRun(ctx context.Context, id, workerID string, leaseUntil time.Time) (*Run, error)

	// CompleteRun ends attempt of a running run with c and stores c.Steps,
	// replacing steps of the same seq saved by SaveRunStep.
	// Returns ECONFLICT if the run is no longer running that attempt, so a
	// worker that lost its claim cannot overwrite the run.
	CompleteRun(ctx context.Context, id string, attempt int, c RunCompletion) (*Run, error)

	// ClaimRuns claims many runs at once, as ClaimRun claims each of ids,
	// in one transaction: claims[i] is ids[i]'s outcome (its claimed run,
	// or ClaimRun's ECONFLICT or ENOTFOUND for that id alone). An id given
	// twice is claimed once; its later entries get ECONFLICT. err is a
	// failure of the whole batch (the database), in which case nothing was
	// claimed.
	ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) (claims []RunClaim, err error)

	// CompleteRuns ends many attempts at once, as CompleteRun ends each, in
	// one transaction: results[i] is cs[i]'s outcome. Each is fenced on its
	// own: a completion whose run is no longer running that attempt gets
	// ECONFLICT (ENOTFOUND, EINVALID as CompleteRun) and the others commit.
	// err is a failure of the whole batch, in which case nothing was
	// written; an EINVALID err means the database refused one item's data,
	// which completing the items one by one isolates.
	CompleteRuns(ctx context.Context, cs []AttemptCompletion) (results []RunCompleted, err error)

	// SaveRunStep inserts or replaces (by run id, attempt and seq) one step
	// of a running run, so that progress is visible while the run runs.
	// step.RunID and step.Attempt name the run and attempt. Returns
	// ECONFLICT if the run is not running that attempt (a worker that lost
	// its claim cannot write), ENOTFOUND if the run does not exist and
	// EINVALID for a step whose Input or Output is not JSON.
	SaveRunStep(ctx context.Context, step *RunStep) error

	// CancelRun cancels a pending run at once. On a running run it sets
	// CancelRequested and returns the run still running: the worker holding
	// it cancels its context and completes it as cancelled. Requesting
	// again is a no-op. Returns ECONFLICT if the run already ended,
	// ENOTFOUND if it does not exist.
	CancelRun(ctx context.Context, id string) (*Run, error)

	// RetryRun starts a new attempt of a failed or cancelled run by hand:
	// the run goes back to pending, due now, marked enqueued (the caller
	// publishes it), with one more attempt allowed (MaxAttempts becomes the
	// attempts used + 1). Steps of earlier attempts are kept. Returns
	// ECONFLICT if the run is not failed or cancelled, ENOTFOUND if it does
	// not exist.
	RetryRun(ctx context.Context, id string) (*Run, error)

	// FindCancelRequested returns those of ids that are running with
	// CancelRequested set: a worker's periodic check for cancels whose
	// notice it missed.
	FindCancelRequested(ctx context.Context, ids []string) ([]string, error)

	// MarkRunUnenqueued records that enqueuing a pending run failed, so that
	// ClaimUnenqueuedRuns returns it later. A run that is no longer pending
	// needs no enqueue: nil. Returns ENOTFOUND if the run does not exist.
	MarkRunUnenqueued(ctx context.Context, id string) error

	// ClaimUnenqueuedRuns marks up to limit pending runs that are not
	// enqueued as enqueued now and returns their ids; the caller enqueues
	// them and calls MarkRunUnenqueued for any that fail again. Runs come
	// oldest first with only ID, Queue, NotBefore and CreatedAt filled in;
	// limit <= 0 means 100.
	ClaimUnenqueuedRuns(ctx context.Context, limit int) ([]*Run, error)

	// ReleaseRun hands attempt of a running run back unfinished (a worker
	// shutting down): the run returns to pending, marked enqueued now (the
	// caller publishes it again), its lease cleared, and ReleasedAttempts
	// grows so the attempt does not count against MaxAttempts. Returns
	// ECONFLICT if the run is no longer running that attempt, ENOTFOUND if
	// it does not exist.
	ReleaseRun(ctx context.Context, id string, attempt int) (*Run, error)

	// SuspendRun parks attempt of a running run at a long delay: like
	// ReleaseRun the run returns to pending, marked enqueued now (the
	// caller publishes it with ETA notBefore), its lease cleared, without
	// using up an attempt; in addition NotBefore becomes notBefore and
	// checkpoint is kept for the next claim (Run.Checkpoint). Steps are not
	// touched: save them first with SaveRunStep. A run whose cancel was
	// requested meanwhile ends cancelled instead (the returned run says
	// which). Returns ECONFLICT if the run is no longer running that
	// attempt, ENOTFOUND if it does not exist and EINVALID if checkpoint
	// is not JSON.
	SuspendRun(ctx context.Context, id string, attempt int, notBefore time.Time, checkpoint json.RawMessage) (*Run, error)

	// HeartbeatRuns sets lease_until to until on each run of ids that is
	// running and held by workerID, and returns the ids it extended. A run
	// missing from the result is no longer this worker's (rescued,
	// released or finished): the worker should stop executing it.
	HeartbeatRuns(ctx context.Context, workerID string, ids []string, until time.Time) ([]string, error)

	// RescueExpiredRuns takes up to limit running runs whose lease ended
	// before now, oldest lease first. A run with attempts left (Attempt -
	// ReleasedAttempts < MaxAttempts) goes back to pending, marked enqueued
	// now so the caller publishes it; the others end failed with the error
	// "worker lost". Returns the runs it changed, with their new Status and
	// only ID, Queue, Status, Attempt, MaxAttempts, WorkerID (the worker
	// that lost it), NotBefore and CreatedAt filled in. Concurrent callers
	// get disjoint sets. limit <= 0 means 100.
	RescueExpiredRuns(ctx context.Context, now time.Time, limit int) ([]*Run, error)

	// ClaimStaleRuns stamps up to limit pending runs whose enqueued_at is
	// unset or older than enqueuedBefore as enqueued now and returns them,
	// oldest first, with only ID, Queue, NotBefore and CreatedAt filled in.
	// The caller publishes again those whose message is gone. Concurrent
	// callers get disjoint sets. limit <= 0 means 100.
	ClaimStaleRuns(ctx context.Context, enqueuedBefore time.Time, limit int) ([]*Run, error)

	// DeleteFinishedRuns deletes, with their steps and events, up to
	// p.Limit runs of p.Statuses whose CompletedAt is before p.Before,
	// oldest first, and returns how many (with p.DryRun: how many it
	// would, deleting nothing). A child run whose parent is still pending
	// or running is kept: the parent may still look at it. Runs another
	// transaction holds locked are skipped, so a purge never waits on
	// (or blocks) a run's transition. Returns EINVALID for a p that does
	// not pass Validate.
	DeleteFinishedRuns(ctx context.Context, p RunPurge) (n int, err error)
}

// RunPurgeLimitDefault is how many runs one DeleteFinishedRuns call
// deletes when RunPurge.Limit is not set: small batches, so that no
// statement holds many row locks or runs long.
const RunPurgeLimitDefault = 500

// RunPurge selects the finished runs RunService.DeleteFinishedRuns deletes
// (retention, orcheo runs purge).
type RunPurge struct {
	// Before: runs whose CompletedAt is before it (required).
	Before time.Time
	// Statuses are the statuses to delete, all terminal; empty means every
	// terminal status (succeeded, failed, cancelled, skipped).
	Statuses []RunStatus
	// Limit bounds the runs of one call; <= 0 means RunPurgeLimitDefault.
	Limit int
	// DryRun counts, up to Limit, instead of deleting.
	DryRun bool
}

// ParseAge reads an age such as 30d, 12h or 90m: a Go duration, or a whole
// number of days followed by d. allowZero accepts 0 (keep forever).
// Returns EINVALID for anything else, negative ages included.
func ParseAge(s string, allowZero bool) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" && allowZero {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, Errorf(EINVALID, "age %q: want a number of days such as 30d, or a duration such as 12h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, Errorf(EINVALID, "age %q: want a number of days such as 30d, or a duration such as 12h", s)
		}
	}
	return d, nil
}

// Validate returns EINVALID for a purge without Before or naming a status
// that is not terminal: a pending or running run is never purged. It fills
// in the default statuses and limit.
func (p *RunPurge) Validate() error {
	if p.Before.IsZero() {
		return Errorf(EINVALID, "purge needs a time before which runs finished")
	}
	if len(p.Statuses) == 0 {
		p.Statuses = []RunStatus{RunSucceeded, RunFailed, RunCancelled, RunSkipped}
	}
	for _, st := range p.Statuses {
		if !st.Valid() {
			return Errorf(EINVALID, "unknown run status %q", st)
		}
		if !st.Terminal() {
			return Errorf(EINVALID, "runs that are %s are not finished: only succeeded, failed, cancelled or skipped runs can be purged", st)
		}
	}
	if p.Limit <= 0 {
		p.Limit = RunPurgeLimitDefault
	}
	return nil
}

// RunQueue hands runs to workers. Implemented by tasks/ on machinery.
type RunQueue interface {
	// EnqueueRun publishes the execute_run task for run.ID on run.Queue.
	// Delivering a run twice is harmless: the worker's claim skips the
	// duplicate.
	EnqueueRun(ctx context.Context, run *Run) error

	// EnqueueRuns publishes the execute_run task of each run, in one round
	// trip where the queue can. errs[i] is runs[i]'s error (nil: published);
	// errs has len(runs) entries.
	EnqueueRuns(ctx context.Context, runs []*Run) (errs []error)
}

// EnqueueEach publishes runs one at a time through enqueue: the EnqueueRuns
// of a RunQueue that has no batched publish. errs[i] is runs[i]'s error.
func EnqueueEach(ctx context.Context, runs []*Run, enqueue func(context.Context, *Run) error) []error {
	errs := make([]error, len(runs))
	for i, run := range runs {
		errs[i] = enqueue(ctx, run)
	}
	return errs
}
