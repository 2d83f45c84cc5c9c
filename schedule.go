package orcheo

import (
	"context"
	"strings"
	"time"
)

// CatchupPolicy says what a cron trigger does with slots that were missed
// because nothing dispatched them in time (beat down, API down).
type CatchupPolicy string

const (
	// CatchupNone drops missed slots: only a slot dispatched within the
	// dispatcher's grace period fires.
	CatchupNone CatchupPolicy = "none"
	// CatchupLatest fires the newest missed slot once, late, and drops the
	// older ones.
	CatchupLatest CatchupPolicy = "latest"
	// CatchupAll fires missed slots oldest first, at most CatchupLimit of
	// them (the newest ones); older ones are dropped.
	CatchupAll CatchupPolicy = "all"
)

// Catch-up bounds of CatchupAll.
const (
	CatchupLimitDefault = 10
	CatchupLimitMax     = 1000
)

// CronTrigger fires a workflow on a cron schedule. Each slot (a time the
// expression matches in Timezone) creates at most one run: the database
// keeps one run per (workflow, scheduled_for).
type CronTrigger struct {
	WorkflowID string `json:"workflow_id"`
	// Expression has five fields (minute hour day-of-month month
	// day-of-week) or is a descriptor such as @hourly; see docs/cron.md.
	Expression string `json:"expression"`
	// Timezone is an IANA zone name; empty means UTC.
	Timezone string `json:"timezone"`
	// AllowOverlapping lets a slot fire while the previous cron run of the
	// workflow is still pending or running. When false such a slot is
	// recorded as a skipped run instead.
	AllowOverlapping bool `json:"allow_overlapping"`
	// StartAt and EndAt bound the slots that fire (both inclusive).
	StartAt *time.Time `json:"start_at,omitempty"`
	EndAt   *time.Time `json:"end_at,omitempty"`
	// Catchup is the policy for missed slots; empty means CatchupNone.
	Catchup CatchupPolicy `json:"catchup"`
	// CatchupLimit bounds CatchupAll; 0 means CatchupLimitDefault.
	CatchupLimit int `json:"catchup_limit,omitempty"`

	// LastDispatchedAt is the newest slot a dispatch has handled (fired,
	// skipped or dropped); dispatch never looks at slots up to it again.
	LastDispatchedAt *time.Time `json:"last_dispatched_at,omitempty"`
	// UpdatedAt is when the config was last set. Slots up to it never fire,
	// so a new or changed schedule does not replay the past.
	UpdatedAt time.Time `json:"updated_at"`
	// NextAt is the next slot after now, filled in by the API for display.
	NextAt *time.Time `json:"next_at,omitempty"`
}

// Validate checks every field except the expression's syntax, which the
// CronScheduler checks (the root package does not parse cron). It fills in
// defaults (UTC, CatchupNone) and returns EINVALID naming the field at fault.
func (t *CronTrigger) Validate() error {
	t.Expression = strings.TrimSpace(t.Expression)
	if t.Expression == "" {
		return Errorf(EINVALID, "expression: is required (for example \"*/5 * * * *\" or \"@hourly\")")
	}
	if len(t.Expression) > 200 {
		return Errorf(EINVALID, "expression: must be at most 200 characters")
	}
	if t.Timezone == "" {
		t.Timezone = "UTC"
	}
	if _, err := t.Location(); err != nil {
		return err
	}
	if t.StartAt != nil && t.EndAt != nil && !t.EndAt.After(*t.StartAt) {
		return Errorf(EINVALID, "end_at: must be after start_at")
	}
	switch t.Catchup {
	case "":
		t.Catchup = CatchupNone
	case CatchupNone, CatchupLatest, CatchupAll:
	default:
		return Errorf(EINVALID, "catchup: %q is not one of none, latest, all", t.Catchup)
	}
	if t.CatchupLimit < 0 || t.CatchupLimit > CatchupLimitMax {
		return Errorf(EINVALID, "catchup_limit: must be between 0 and %d", CatchupLimitMax)
	}
	if t.CatchupLimit != 0 && t.Catchup != CatchupAll {
		return Errorf(EINVALID, "catchup_limit: only applies to catchup \"all\"")
	}
	return nil
}

// Location returns the trigger's time zone. Returns EINVALID naming the
// timezone field for an unknown zone. "Local" is refused: it would depend
// on the host that computes the slots.
func (t *CronTrigger) Location() (*time.Location, error) {
	name := t.Timezone
	if name == "" {
		name = "UTC"
	}
	if name == "Local" {
		return nil, Errorf(EINVALID, "timezone: \"Local\" is not allowed; name an IANA zone such as Europe/Paris")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Errorf(EINVALID, "timezone: %q is not a known IANA time zone", name)
	}
	return loc, nil
}

// Limit returns how many missed slots CatchupAll fires.
func (t *CronTrigger) Limit() int {
	if t.CatchupLimit <= 0 {
		return CatchupLimitDefault
	}
	return t.CatchupLimit
}

// CronService stores cron triggers and answers the questions dispatch asks
// the database. Safe for concurrent use.
type CronService interface {
	// FindCronTrigger returns the workflow's cron trigger. Returns
	// ENOTFOUND if the workflow has none.
	FindCronTrigger(ctx context.Context, workflowID string) (*CronTrigger, error)

	// FindCronTriggers returns the cron triggers of every workflow that is
	// not archived, oldest workflow first.
	FindCronTriggers(ctx context.Context) ([]*CronTrigger, error)

	// SetCronTrigger creates or replaces t's workflow trigger after
	// t.Validate, sets t.UpdatedAt and keeps LastDispatchedAt. Returns
	// ENOTFOUND if the workflow does not exist.
	SetCronTrigger(ctx context.Context, t *CronTrigger) error

	// DeleteCronTrigger removes the workflow's trigger; runs it created
	// stay. Returns ENOTFOUND if there is none.
	DeleteCronTrigger(ctx context.Context, workflowID string) error

	// MarkCronDispatched records slot as handled. It only ever moves
	// LastDispatchedAt forward, so concurrent dispatchers cannot move it
	// back. A missing trigger (deleted meanwhile) is not an error.
	MarkCronDispatched(ctx context.Context, workflowID string, slot time.Time) error

	// FindActiveCronRun returns the newest pending or running cron run of
	// the workflow scheduled before slot, or nil if there is none.
	FindActiveCronRun(ctx context.Context, workflowID string, before time.Time) (*Run, error)

	// CreateSkippedRun stores run (a cron run with ScheduledFor set) as
	// RunSkipped with reason as its error, never enqueued. Like CreateRun,
	// if the slot is already taken the existing run is returned with
	// created=false.
	CreateSkippedRun(ctx context.Context, run *Run, reason string) (existing *Run, created bool, err error)
}

// CronScheduler does the schedule maths of cron triggers. Implemented by
// schedule/; the root package does not parse cron expressions.
type CronScheduler interface {
	// CheckCronTrigger runs t.Validate and parses the expression. Returns
	// EINVALID naming the field at fault.
	CheckCronTrigger(t *CronTrigger) error

	// NextCronSlot returns t's first slot strictly after `after` within its
	// start/end window, or the zero time if there is none.
	NextCronSlot(t *CronTrigger, after time.Time) (time.Time, error)
}

// CronDispatch is the result of one dispatch.
type CronDispatch struct {
	// Now is the time the dispatch considered current.
	Now time.Time `json:"now"`
	// Runs are the runs this dispatch created, pending or skipped, oldest
	// slot first. Slots another dispatcher had already taken are not
	// listed.
	Runs []*Run `json:"runs"`
}

// CronDispatcher fires due cron slots. Implemented by schedule/ on the store
// and the queue, and by client/ over HTTP for the beat.
type CronDispatcher interface {
	// DispatchCron creates and enqueues one run for every slot of every
	// trigger due at now (nil means the current time), applying start/end
	// windows, catch-up and overlap rules. Any number of concurrent calls
	// create each slot's run once. Returns EINVALID for a now too far in the
	// future.
	DispatchCron(ctx context.Context, now *time.Time) (*CronDispatch, error)
}
