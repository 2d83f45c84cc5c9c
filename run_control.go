package orcheo

import (
	"context"
	"time"
)

// NotifyCancelTimeout bounds telling a worker of a cancel: the stored flag
// is the truth, so a slow notice is given up rather than holding the
// caller.
const NotifyCancelTimeout = 10 * time.Second

// RunControl is how a run is cancelled or retried by hand: the API's
// single and bulk routes (POST /api/runs/{id}/cancel|retry, POST
// /api/runs/cancel|retry) and the web UI's buttons all call it, so what a
// cancel or a retry promises is written once. Runs and Submitter are
// required; Cancels and NotifyFailed may be nil.
type RunControl struct {
	Runs      RunService
	Submitter RunSubmitter
	// Cancels tells the worker executing a run of its cancel at once;
	// nil leaves it to the worker's periodic check of the database.
	Cancels CancelNotifier
	// NotifyFailed is told of a notice that failed (the caller logs it):
	// the cancel stands, the worker finds it at its next check.
	NotifyFailed func(runID string, err error)
}

// Cancel cancels run id: it comes back cancelled if it was pending, or
// still running with CancelRequested, its worker told; ECONFLICT if it
// already ended, ENOTFOUND if there is no such run.
func (c RunControl) Cancel(ctx context.Context, id string) (*Run, error) {
	run, err := c.Runs.CancelRun(ctx, id)
	if err != nil || run.Status != RunRunning || c.Cancels == nil {
		return run, err
	}
	// The caller hanging up must not lose the notice: it is sent on a
	// context of its own, bounded.
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), NotifyCancelTimeout)
	defer cancel()
	if err := c.Cancels.NotifyCancel(nctx, run.ID); err != nil && c.NotifyFailed != nil {
		c.NotifyFailed(run.ID, err)
	}
	return run, nil
}

// Retry starts a new attempt of run id and publishes it through the
// process's RunSubmitter: a failed publish is marked for the requeuer, so
// a run answered as retried will execute. ECONFLICT unless it is failed
// or cancelled, ENOTFOUND if there is no such run.
func (c RunControl) Retry(ctx context.Context, id string) (*Run, error) {
	run, err := c.Runs.RetryRun(ctx, id)
	if err != nil {
		return nil, err
	}
	c.Submitter.PublishRuns(ctx, []*Run{run}, PublishOptions{})
	return run, nil
}
