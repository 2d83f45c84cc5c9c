package orcheo

import "context"

// RunSubmitter is the one way a run enters execution, as River's
// Client.Insert is its one entry point: webhooks, manual runs, cron slots,
// child runs, the requeuer, the rescuer and a retry by hand all go through
// it, so the promise the API makes lives here and nowhere else.
//
// The promise: a run SubmitRun returns without error is stored, so a 2xx
// built on it means the run will execute. It was also published, or, when
// publishing failed, marked unenqueued (RunService.MarkRunUnenqueued) for
// the requeuer; and should the process die between the commit and the
// publish, the rescuer publishes the pending run whose message is missing.
// Implemented by package submit, which batches submissions; safe for
// concurrent use.
type RunSubmitter interface {
	// SubmitRun stores a pending run of wf's latest version and publishes
	// it. The caller fills run's TriggeredBy, Input and, as it applies,
	// IdempotencyKey, ScheduledFor, NotBefore and the parent fields;
	// WorkflowID, VersionID, Version and Queue come from wf. Returns
	// ECONFLICT, storing nothing, if wf is archived, and EINVALID if run is
	// not acceptable (Run.Validate). When the idempotency key or cron slot
	// is taken, the run holding it is returned with created=false and
	// nothing is published. A caller whose ctx ends before its run is
	// stored gets ctx's error and the run may or may not be stored; once it
	// is stored its publish finishes whatever ctx does.
	SubmitRun(ctx context.Context, wf *Workflow, run *Run) (_ *Run, created bool, err error)

	// PublishRuns publishes runs that are already stored, pending and
	// stamped enqueued (a retry by hand, the requeuer's and the rescuer's
	// runs). A run whose publish fails is marked unenqueued, its
	// EnqueuedAt cleared, and errs[i] says why; errs has len(runs)
	// entries, nil for a published run.
	PublishRuns(ctx context.Context, runs []*Run, opts PublishOptions) (errs []error)
}

// PublishOptions changes how PublishRuns publishes.
type PublishOptions struct {
	// Front puts the runs at the front of their queues, runs[0] first:
	// the rescuer's runs of dead workers,
	// which were taken from the queue long ago and must not wait for the
	// backlog queued since. A queue that cannot publish at the front
	// publishes at the end.
	Front bool
}
