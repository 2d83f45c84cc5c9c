package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// Rescuer defaults. tasks.Config's RescueIntervalDefault and
// ReenqueueAfterDefault are these.
const (
	// RescuerIntervalDefault is the time between passes: with a lease of
	// 30 s, a dead worker's run is pending again within 40 s.
	RescuerIntervalDefault = 10 * time.Second
	// RescuerReenqueueAfterDefault is how long a pending run may go
	// without a message in Redis before it is published again.
	RescuerReenqueueAfterDefault = 30 * time.Second
	// RescuerBatchSizeDefault is how many runs one store call handles.
	RescuerBatchSizeDefault = 200
	// RescuerLeadership is the name of the rescuer's leadership.
	RescuerLeadership = "rescuer"
)

// RescuerElectorTTL is the TTL of the rescuer's leadership for a rescue
// interval: half of it, at least a second and at most
// leadership.TTLDefault. A crashed leader's successor makes its first pass
// about 1.4 TTLs after the crash (within 7.1 s at the defaults), within one
// rescue interval: failover delays rescue by less than one interval. (It
// was three intervals, up to 15 s, and the next pass came 21 s after the
// crash: issue #10.)
func RescuerElectorTTL(interval time.Duration) time.Duration {
	return min(max(interval/2, time.Second), leadership.TTLDefault)
}

// RescuerConfig configures a Rescuer.
type RescuerConfig struct {
	// Runs is the store (required).
	Runs orcheo.RunService
	// Submitter publishes rescued runs and marks those it cannot
	// (required). Runs of dead workers go to the front of their queues:
	// they were taken from the queue long ago, and at the end they would
	// wait for the whole backlog queued since, which at the default
	// timings breaks the promise that an orphan is running again within
	// 60 s (docs/architecture.md, "Bound"). The broker and the Reaper
	// already put messages they hand back or reap at the front.
	Submitter orcheo.RunSubmitter
	// RDB tells which pending runs still have a message in Redis, from
	// each queue's message counts (required).
	RDB *rdb.RDB
	// Interval between passes; default RescuerIntervalDefault.
	Interval time.Duration
	// ReenqueueAfter is how long a pending run may go without a message
	// before it is published again; default RescuerReenqueueAfterDefault.
	ReenqueueAfter time.Duration
	// BatchSize bounds each store call; a pass repeats batches until one
	// comes back short. Default RescuerBatchSizeDefault.
	BatchSize int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RescuerStats counts what a Rescuer did since it was built (the worker's
// metrics export them).
type RescuerStats struct {
	Passes        int64 // passes made
	Rescued       int64 // runs with an expired lease put back to pending
	Failed        int64 // runs with an expired lease and no attempt left, failed as "worker lost"
	Reenqueued    int64 // pending runs whose message was lost, published again
	EnqueueFailed int64 // runs left unpublished by a failed publish (for the next pass or the API's requeuer)
}

// Rescuer returns runs of dead workers to work, on one worker at a time
// (the leader of RescuerLeadership; the worker starts it through
// leadership.RunWhileLeader). Each pass:
//
//  1. takes runs whose lease expired (their worker died or hung): back to
//     pending and published again at the front of their queues, or failed
//     with "worker lost" when no attempt is left;
//  2. takes pending runs not published for ReenqueueAfter and publishes
//     again those without a message in Redis (the enqueue failed, Redis
//     restarted empty, or a process died between insert and publish).
//
// Both steps are safe to run twice at once: the store hands each run to one
// caller, and a duplicate message is skipped by the claim.
type Rescuer struct {
	startstop.BaseStartStop
	cfg    RescuerConfig
	logger logrus.FieldLogger
	stats  struct{ passes, rescued, failed, reenqueued, enqueueFailed atomic.Int64 }
}

var _ startstop.Service = (*Rescuer)(nil)

// NewRescuer fills zero fields of cfg with defaults. It panics if a
// required field is nil or a field is negative: programmer errors.
func NewRescuer(cfg RescuerConfig) *Rescuer {
	orDefault(&cfg.Interval, RescuerIntervalDefault)
	orDefault(&cfg.ReenqueueAfter, RescuerReenqueueAfterDefault)
	orDefault(&cfg.BatchSize, RescuerBatchSizeDefault)
	orDefault[logrus.FieldLogger](&cfg.Logger, logrus.StandardLogger())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.mustValidate()
	return &Rescuer{cfg: cfg, logger: cfg.Logger.WithField("component", "rescuer")}
}

func (c *RescuerConfig) mustValidate() {
	if c.Runs == nil || c.Submitter == nil || c.RDB == nil {
		panic("maintenance: RescuerConfig needs Runs, Submitter and RDB")
	}
	if c.Interval < 0 || c.ReenqueueAfter < 0 || c.BatchSize < 0 {
		panic("maintenance: RescuerConfig durations and BatchSize must not be negative")
	}
}

// Stats returns the counters. Safe for concurrent use.
func (r *Rescuer) Stats() RescuerStats {
	return RescuerStats{
		Passes: r.stats.passes.Load(), Rescued: r.stats.rescued.Load(), Failed: r.stats.failed.Load(),
		Reenqueued: r.stats.reenqueued.Load(), EnqueueFailed: r.stats.enqueueFailed.Load(),
	}
}

// Start launches the rescuer's goroutine: a pass now, then one every
// Interval until Stop or ctx is done. Errors are logged, not returned.
// Starting a started rescuer does nothing; after Stop it may start again
// (a worker that leads again).
func (r *Rescuer) Start(ctx context.Context) {
	ctx, shouldStart, stopped := r.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		every(ctx, r.cfg.Interval, true, func(ctx context.Context) {
			if err := r.runOnce(ctx); err != nil && !errors.Is(err, context.Canceled) {
				r.logger.WithError(err).Error("rescue pass")
			}
		})
	}()
}

// runOnce makes one pass of both steps.
func (r *Rescuer) runOnce(ctx context.Context) error {
	r.stats.passes.Add(1)
	err := r.rescueExpired(ctx)
	return errors.Join(err, r.reenqueueLost(ctx))
}

func (r *Rescuer) rescueExpired(ctx context.Context) error {
	for {
		runs, err := r.cfg.Runs.RescueExpiredRuns(ctx, r.cfg.Now(), r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("rescue expired runs: %w", err)
		}
		var pending []*orcheo.Run
		for _, run := range runs {
			log := r.logger.WithFields(logrus.Fields{"run_id": run.ID, "attempt": run.Attempt, "lost_worker": run.WorkerID})
			if run.Status == orcheo.RunFailed {
				r.stats.failed.Add(1)
				log.Warn("lease expired with no attempt left: run failed (worker lost)")
				continue
			}
			r.stats.rescued.Add(1)
			log.Warn("lease expired: run back to pending")
			pending = append(pending, run)
		}
		// Oldest lease first: the oldest orphan ends up at the very front.
		if _, err := r.publish(ctx, pending, orcheo.PublishOptions{Front: true}); err != nil {
			return fmt.Errorf("publish rescued runs: %w", err)
		}
		if len(runs) < r.cfg.BatchSize || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (r *Rescuer) reenqueueLost(ctx context.Context) error {
	for {
		runs, err := r.cfg.Runs.ClaimStaleRuns(ctx, r.cfg.Now().Add(-r.cfg.ReenqueueAfter), r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("find runs with lost messages: %w", err)
		}
		counts, err := r.messageCounts(ctx, runs)
		if err != nil {
			// Without Redis nothing can be published; ClaimStaleRuns
			// stamped them, so they come back after ReenqueueAfter.
			return fmt.Errorf("find runs with lost messages: %w", err)
		}
		var lost []*orcheo.Run
		for i, run := range runs {
			if counts[i] == 0 { // else still waiting in Redis: a long queue, not a loss
				lost = append(lost, run)
			}
		}
		errs := r.cfg.Submitter.PublishRuns(ctx, lost, orcheo.PublishOptions{})
		n, err := published(errs)
		r.stats.reenqueued.Add(int64(n))
		r.stats.enqueueFailed.Add(int64(len(lost) - n))
		for i, run := range lost {
			if errs[i] == nil {
				r.logger.WithField("run_id", run.ID).Warn("pending run had no message: published again")
			}
		}
		if err != nil {
			return fmt.Errorf("publish runs with lost messages: %w", err)
		}
		if len(runs) < r.cfg.BatchSize || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// messageCounts reports, for each run, how many of its messages Redis
// holds, counted under the run's queue. One round trip.
func (r *Rescuer) messageCounts(ctx context.Context, runs []*orcheo.Run) ([]int, error) {
	queues, ids := make([]string, len(runs)), make([]string, len(runs))
	for i, run := range runs {
		queues[i], ids[i] = queueName(run.Queue), run.ID
	}
	return r.cfg.RDB.MessageCounts(ctx, queues, ids)
}

// publish publishes runs; those it could not are marked unenqueued by the
// submitter, so the next pass (or the API's requeuer) retries them. It
// returns how many it published and the first failure.
func (r *Rescuer) publish(ctx context.Context, runs []*orcheo.Run, opts orcheo.PublishOptions) (int, error) {
	n, err := published(r.cfg.Submitter.PublishRuns(ctx, runs, opts))
	r.stats.enqueueFailed.Add(int64(len(runs) - n))
	return n, err
}
