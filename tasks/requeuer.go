package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// Requeuer defaults.
const (
	RequeuerIntervalDefault  = 5 * time.Second
	RequeuerBatchSizeDefault = 500
)

// RequeuerConfig configures a Requeuer.
type RequeuerConfig struct {
	// Runs finds pending runs whose enqueue failed (required).
	Runs orcheo.RunService
	// Queue publishes them again (required).
	Queue orcheo.RunQueue
	// Interval between passes; default RequeuerIntervalDefault.
	Interval time.Duration
	// BatchSize is how many runs one query claims; a pass repeats batches
	// until one comes back short. Default RequeuerBatchSizeDefault.
	BatchSize int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
}

// Requeuer periodically enqueues pending runs whose enqueue failed (the
// API marks them with MarkRunUnenqueued), so that a Redis outage delays
// runs instead of losing them. Running several Requeuers is safe: each run
// is claimed by one ClaimUnenqueuedRuns call, and a duplicate enqueue is
// skipped by the worker's claim.
type Requeuer struct {
	startstop.BaseStartStop
	cfg    RequeuerConfig
	logger logrus.FieldLogger

	// passDone, if set by a test, receives the result of every pass.
	passDone chan requeueResult
}

var _ startstop.Service = (*Requeuer)(nil)

// requeueResult is what one pass did.
type requeueResult struct {
	Enqueued int
	Failed   int
}

// NewRequeuer fills zero fields of cfg with defaults. It panics if Runs or
// Queue is nil or a field is negative: those are programmer errors.
func NewRequeuer(cfg RequeuerConfig) *Requeuer {
	if cfg.Interval == 0 {
		cfg.Interval = RequeuerIntervalDefault
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = RequeuerBatchSizeDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	cfg.mustValidate()
	return &Requeuer{cfg: cfg, logger: cfg.Logger.WithField("component", "requeuer")}
}

func (c *RequeuerConfig) mustValidate() {
	if c.Runs == nil || c.Queue == nil {
		panic("tasks: RequeuerConfig needs Runs and Queue")
	}
	if c.Interval < 0 || c.BatchSize < 0 {
		panic("tasks: RequeuerConfig Interval and BatchSize must not be negative")
	}
}

// Start launches the requeuer's goroutine: one pass now, then one every
// Interval, until Stop or ctx is done. Errors are logged, not returned.
// Starting twice does nothing.
func (r *Requeuer) Start(ctx context.Context) {
	ctx, shouldStart, stopped := r.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		ticker := time.NewTicker(r.cfg.Interval)
		defer ticker.Stop()
		for {
			res, err := r.runOnce(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				r.logger.WithError(err).Error("requeue pass")
			} else if res.Enqueued > 0 || res.Failed > 0 {
				r.logger.WithFields(logrus.Fields{"enqueued": res.Enqueued, "failed": res.Failed}).Info("requeued runs")
			}
			if r.passDone != nil {
				select {
				case r.passDone <- res:
				case <-ctx.Done():
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// runOnce makes one pass: it claims unenqueued runs in batches and
// enqueues them. When an enqueue fails (Redis is down), publishRuns marks
// that run and the rest of the batch unenqueued again, and the pass ends.
func (r *Requeuer) runOnce(ctx context.Context) (requeueResult, error) {
	var res requeueResult
	for {
		runs, err := r.cfg.Runs.ClaimUnenqueuedRuns(ctx, r.cfg.BatchSize)
		if err != nil {
			return res, fmt.Errorf("claim unenqueued runs: %w", err)
		}
		n, err := publishRuns(ctx, r.cfg.Queue, r.cfg.Runs, runs, r.logger)
		res.Enqueued += n
		if err != nil {
			res.Failed += len(runs) - n
			return res, fmt.Errorf("requeue: %w", err)
		}
		if len(runs) < r.cfg.BatchSize {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
}

// publishRuns publishes runs in order and returns how many it published.
// At the first failure (Redis is down, so the rest would fail too) it marks
// that run and the rest unenqueued, so the Requeuer's next pass retries
// them, and returns the error. The Requeuer and the Rescuer share it.
func publishRuns(ctx context.Context, q orcheo.RunQueue, store orcheo.RunService, runs []*orcheo.Run, log logrus.FieldLogger) (int, error) {
	for i, run := range runs {
		err := q.EnqueueRun(ctx, run)
		if err == nil {
			continue
		}
		for _, back := range runs[i:] {
			if merr := store.MarkRunUnenqueued(context.WithoutCancel(ctx), back.ID); merr != nil {
				// Still stamped as enqueued: the rescuer publishes it
				// again once ReenqueueAfter has passed.
				log.WithError(merr).WithField("run_id", back.ID).Error("mark run unenqueued; it waits for the rescuer")
			}
		}
		return i, fmt.Errorf("publish run %s: %w", run.ID, err)
	}
	return len(runs), nil
}
