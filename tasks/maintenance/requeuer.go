package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// Requeuer defaults. ORCHEO_REQUEUE_INTERVAL sets the interval.
const (
	RequeuerIntervalDefault  = 5 * time.Second
	RequeuerBatchSizeDefault = 500
)

// RequeuerConfig configures a Requeuer.
type RequeuerConfig struct {
	// Runs finds pending runs whose enqueue failed (required).
	Runs orcheo.RunService
	// Submitter publishes them again, and marks those it cannot
	// (required).
	Submitter orcheo.RunSubmitter
	// Interval between passes; default RequeuerIntervalDefault.
	Interval time.Duration
	// BatchSize is how many runs one query claims; a pass repeats batches
	// until one comes back short. Default RequeuerBatchSizeDefault.
	BatchSize int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
}

// Requeuer periodically publishes pending runs whose publish failed (the
// submitter marks them with MarkRunUnenqueued), so that a Redis outage
// delays runs instead of losing them. Every API process runs one. Running
// several is safe: ClaimUnenqueuedRuns hands each run to one caller (FOR
// UPDATE SKIP LOCKED on PostgreSQL), and a duplicate message is skipped by
// the worker's claim.
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
// Submitter is nil or a field is negative: those are programmer errors.
func NewRequeuer(cfg RequeuerConfig) *Requeuer {
	orDefault(&cfg.Interval, RequeuerIntervalDefault)
	orDefault(&cfg.BatchSize, RequeuerBatchSizeDefault)
	orDefault[logrus.FieldLogger](&cfg.Logger, logrus.StandardLogger())
	cfg.mustValidate()
	return &Requeuer{cfg: cfg, logger: cfg.Logger.WithField("component", "requeuer")}
}

func (c *RequeuerConfig) mustValidate() {
	if c.Runs == nil || c.Submitter == nil {
		panic("maintenance: RequeuerConfig needs Runs and Submitter")
	}
	if c.Interval < 0 || c.BatchSize < 0 {
		panic("maintenance: RequeuerConfig Interval and BatchSize must not be negative")
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
		every(ctx, r.cfg.Interval, true, func(ctx context.Context) {
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
		})
	}()
}

// runOnce makes one pass: it claims unenqueued runs in batches and
// publishes each batch. When a publish fails (Redis is down), the
// submitter marks those runs unenqueued again, and the pass ends.
func (r *Requeuer) runOnce(ctx context.Context) (requeueResult, error) {
	var res requeueResult
	for {
		runs, err := r.cfg.Runs.ClaimUnenqueuedRuns(ctx, r.cfg.BatchSize)
		if err != nil {
			return res, fmt.Errorf("claim unenqueued runs: %w", err)
		}
		n, err := published(r.cfg.Submitter.PublishRuns(ctx, runs, orcheo.PublishOptions{}))
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
