package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
)

// MaxFutureDefault is how far ahead of the clock a dispatch's now may be:
// a little, for clock skew between a beat and the API; never enough to
// fire a slot long before its time.
const MaxFutureDefault = time.Minute

// Dispatcher implements orcheo.CronDispatcher on the store and the run
// submitter. The database's unique (workflow_id, scheduled_for) index, not
// a lock, makes concurrent dispatches safe: each slot's insert succeeds
// once and the other callers get the existing run back. Safe for
// concurrent use.
type Dispatcher struct {
	Cron      orcheo.CronService
	Workflows orcheo.WorkflowService
	// Submitter stores and publishes each slot's run.
	Submitter orcheo.RunSubmitter

	// Seconds allows a leading seconds field (ORCHEO_CRON_SECONDS).
	Seconds bool
	// Grace is how late a slot may be and still count as on time;
	// 0 means GraceDefault.
	Grace time.Duration
	// MaxFuture bounds a caller's now ahead of Now; 0 means
	// MaxFutureDefault.
	MaxFuture time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger logrus.FieldLogger
}

var _ orcheo.CronDispatcher = (*Dispatcher)(nil)

// cronInput is the input of a run created by a cron slot.
type cronInput struct {
	// ScheduledFor is the slot in the trigger's zone, with its offset.
	ScheduledFor string `json:"scheduled_for"`
	Timezone     string `json:"timezone"`
}

// DispatchCron fires every due slot of every trigger. A trigger that fails
// (its workflow vanished, the database blinked) does not stop the others;
// the first such error is returned after all were tried, so the caller
// retries, and the retry creates only what is still missing.
func (d *Dispatcher) DispatchCron(ctx context.Context, at *time.Time) (*orcheo.CronDispatch, error) {
	clock := time.Now
	if d.Now != nil {
		clock = d.Now
	}
	now := clock()
	if at != nil {
		maxFuture := d.MaxFuture
		if maxFuture <= 0 {
			maxFuture = MaxFutureDefault
		}
		if at.After(now.Add(maxFuture)) {
			return nil, orcheo.Errorf(orcheo.EINVALID, "now: must not be more than %s in the future", maxFuture)
		}
		now = *at
	}
	now = now.UTC().Truncate(time.Microsecond)
	triggers, err := d.Cron.FindCronTriggers(ctx)
	if err != nil {
		return nil, err
	}
	out := &orcheo.CronDispatch{Now: now, Runs: []*orcheo.Run{}}
	var errs []error
	for _, t := range triggers {
		runs, err := d.dispatchTrigger(ctx, t, now)
		out.Runs = append(out.Runs, runs...)
		if err != nil {
			d.logger().WithError(err).WithField("workflow_id", t.WorkflowID).Error("dispatch cron trigger")
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("dispatch cron: %w", errors.Join(errs...))
	}
	return out, nil
}

func (d *Dispatcher) logger() logrus.FieldLogger {
	if d.Logger == nil {
		return logrus.StandardLogger()
	}
	return d.Logger
}

// dispatchTrigger fires t's due slots and records the newest as dispatched.
// The cursor moves only after every slot's run exists, so a failure leaves
// the slots for the next dispatch.
func (d *Dispatcher) dispatchTrigger(ctx context.Context, t *orcheo.CronTrigger, now time.Time) ([]*orcheo.Run, error) {
	sched, err := Compile(t, d.Seconds)
	if err != nil {
		// Stored before a setting changed (ORCHEO_CRON_SECONDS turned off):
		// nothing can fire until the trigger is set again.
		return nil, fmt.Errorf("trigger of workflow %s: %w", t.WorkflowID, err)
	}
	cursor := t.UpdatedAt
	if t.LastDispatchedAt != nil && t.LastDispatchedAt.After(cursor) {
		cursor = *t.LastDispatchedAt
	}
	grace := d.Grace
	if grace <= 0 {
		grace = GraceDefault
	}
	plan := sched.Plan(cursor, now, t.Catchup, t.Limit(), grace)
	if plan.Cursor.IsZero() {
		return nil, nil
	}
	wf, err := d.Workflows.FindWorkflowByRef(ctx, t.WorkflowID)
	if err != nil {
		return nil, err
	}
	log := d.logger().WithFields(logrus.Fields{"workflow_id": wf.ID, "workflow": wf.Handle})
	var created []*orcheo.Run
	// An archived workflow fires no slot, and its cursor still moves: the
	// submitter would refuse each slot's run (ECONFLICT), and the error
	// would make every later dispatch try the same slots again.
	if !wf.Archived() {
		// fired is the run this call started last: without overlapping,
		// the later slots of one catch-up are skipped because of it, not
		// because of what a fast worker has done with it meanwhile (it is
		// published as soon as it is stored), so the slots that fire do
		// not depend on timing.
		var fired *orcheo.Run
		for _, slot := range plan.Fire {
			run, ok, err := d.fire(ctx, t, wf, sched.Location(), slot, fired)
			if err != nil {
				return created, err
			}
			if ok {
				log.WithFields(logrus.Fields{"run_id": run.ID, "scheduled_for": slot, "status": run.Status}).Info("cron slot fired")
				created = append(created, run)
				if run.Status == orcheo.RunPending {
					fired = run
				}
			}
		}
	}
	if plan.Dropped > 0 {
		log.WithFields(logrus.Fields{"dropped": plan.Dropped, "catchup": t.Catchup}).Info("cron slots missed and dropped")
	}
	if err := d.Cron.MarkCronDispatched(ctx, wf.ID, plan.Cursor); err != nil {
		return created, err
	}
	return created, nil
}

// fire creates slot's run: pending (stored and published by the
// submitter), or skipped when overlapping is not allowed and an earlier
// slot's run is still pending or running: fired, the run this dispatch
// started last, or one the store finds. created is false when another
// dispatcher took the slot first.
func (d *Dispatcher) fire(ctx context.Context, t *orcheo.CronTrigger, wf *orcheo.Workflow, loc *time.Location, slot time.Time, fired *orcheo.Run) (*orcheo.Run, bool, error) {
	input, err := json.Marshal(cronInput{ScheduledFor: slot.In(loc).Format(time.RFC3339), Timezone: t.Timezone})
	if err != nil {
		return nil, false, err
	}
	utc := slot.UTC()
	run := &orcheo.Run{
		WorkflowID:   wf.ID,
		VersionID:    wf.LatestVersionID,
		Version:      wf.LatestVersion,
		Queue:        wf.Queue,
		TriggeredBy:  orcheo.TriggerCron,
		Input:        input,
		ScheduledFor: &utc,
	}
	if err := run.Validate(); err != nil {
		return nil, false, err
	}
	if !t.AllowOverlapping {
		active := fired
		if active == nil {
			if active, err = d.Cron.FindActiveCronRun(ctx, wf.ID, utc); err != nil {
				return nil, false, err
			}
		}
		if active != nil {
			reason := fmt.Sprintf("skipped: the run of slot %s (%s) is still %s and allow_overlapping is false",
				active.ScheduledFor.In(loc).Format(time.RFC3339), active.ID, active.Status)
			r, created, err := d.Cron.CreateSkippedRun(ctx, run, reason)
			return r, created, err
		}
	}
	return d.Submitter.SubmitRun(ctx, wf, run)
}
