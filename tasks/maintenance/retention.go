package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// Retention defaults. ORCHEO_RUN_RETENTION sets Retention (0 there runs no
// Retention service at all).
const (
	// RetentionDefault keeps finished runs for 30 days.
	RetentionDefault = 30 * 24 * time.Hour
	// RetentionIntervalDefault is the time between passes: a run is
	// deleted within a minute of its retention ending.
	RetentionIntervalDefault = time.Minute
	// RetentionBatchSizeDefault is how many runs one statement deletes:
	// few enough that no statement holds many locks or runs long.
	RetentionBatchSizeDefault = orcheo.RunPurgeLimitDefault
	// RetentionBatchPauseDefault is the pause between two batches of a
	// pass, which lets the workers' writes through between them while a
	// large backlog (the first pass on an old database) is deleted.
	RetentionBatchPauseDefault = 50 * time.Millisecond
)

// RetentionConfig configures a Retention.
type RetentionConfig struct {
	// Runs is the store (required).
	Runs orcheo.RunService
	// Retention is how long a finished run is kept after it completed
	// (required, positive).
	Retention time.Duration
	// Statuses are the statuses deleted; empty means every terminal one.
	Statuses []orcheo.RunStatus
	// Interval between passes; default RetentionIntervalDefault.
	Interval time.Duration
	// BatchSize is how many runs one store call deletes; a pass repeats
	// batches until one comes back short. Default
	// RetentionBatchSizeDefault.
	BatchSize int
	// BatchPause is the pause between batches; default
	// RetentionBatchPauseDefault.
	BatchPause time.Duration
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RetentionStats counts what a Retention did since it was built (the
// worker's metrics export Deleted as orcheo_retention_deleted_runs_total).
type RetentionStats struct {
	Passes  int64 // passes made
	Deleted int64 // runs deleted, with their steps and events
}

// Retention deletes finished runs (with their steps and events) whose
// completion is older than Retention, on one worker at a time: it runs
// under the rescuer's leadership (the worker starts it beside the rescuer
// through leadership.RunWhileLeader), so one process deletes and the
// others stay idle. Each pass deletes in batches of BatchSize, oldest
// first, pausing BatchPause between them, so no statement is long and no
// lock is held for more than a batch. Running two at once is safe all the
// same: PostgreSQL skips rows another purge holds (FOR UPDATE SKIP LOCKED).
// A child run whose parent has not finished is kept (DeleteFinishedRuns).
type Retention struct {
	startstop.BaseStartStop
	cfg    RetentionConfig
	logger logrus.FieldLogger
	stats  struct{ passes, deleted atomic.Int64 }

	// passDone, if set by a test, receives the runs each pass deleted.
	passDone chan int
}

var _ startstop.Service = (*Retention)(nil)

// NewRetention fills zero fields of cfg with defaults. It panics if Runs
// is nil, Retention is not positive, a field is negative or a status is
// not terminal: programmer errors (cmd/orcheo checks the configuration).
func NewRetention(cfg RetentionConfig) *Retention {
	orDefault(&cfg.Interval, RetentionIntervalDefault)
	orDefault(&cfg.BatchSize, RetentionBatchSizeDefault)
	orDefault(&cfg.BatchPause, RetentionBatchPauseDefault)
	orDefault[logrus.FieldLogger](&cfg.Logger, logrus.StandardLogger())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.mustValidate()
	return &Retention{cfg: cfg, logger: cfg.Logger.WithField("component", "retention")}
}

func (c *RetentionConfig) mustValidate() {
	if c.Runs == nil || c.Retention <= 0 {
		panic("maintenance: RetentionConfig needs Runs and a positive Retention")
	}
	if c.Interval < 0 || c.BatchSize < 0 || c.BatchPause < 0 {
		panic("maintenance: RetentionConfig durations and BatchSize must not be negative")
	}
	p := orcheo.RunPurge{Before: time.Unix(0, 0), Statuses: c.Statuses}
	if err := p.Validate(); err != nil {
		panic("maintenance: RetentionConfig: " + err.Error())
	}
}

// Stats returns the counters. Safe for concurrent use.
func (r *Retention) Stats() RetentionStats {
	return RetentionStats{Passes: r.stats.passes.Load(), Deleted: r.stats.deleted.Load()}
}

// Start launches the goroutine: a pass now, then one every Interval until
// Stop or ctx is done. Errors are logged, not returned. Starting a started
// Retention does nothing; after Stop it may start again (a worker that
// leads again).
func (r *Retention) Start(ctx context.Context) {
	ctx, shouldStart, stopped := r.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		every(ctx, r.cfg.Interval, true, func(ctx context.Context) {
			n, err := r.runOnce(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				r.logger.WithError(err).WithField("deleted", n).Error("retention pass")
			} else if n > 0 {
				r.logger.WithFields(logrus.Fields{"deleted": n, "retention": r.cfg.Retention.String()}).Info("deleted finished runs")
			}
			if r.passDone != nil {
				select {
				case r.passDone <- n:
				case <-ctx.Done():
				}
			}
		})
	}()
}

// runOnce deletes, batch after batch, the runs that finished before now -
// Retention (now read once: runs finishing during the pass wait for the
// next), and returns how many.
func (r *Retention) runOnce(ctx context.Context) (int, error) {
	r.stats.passes.Add(1)
	purge := orcheo.RunPurge{Before: r.cfg.Now().Add(-r.cfg.Retention), Statuses: r.cfg.Statuses, Limit: r.cfg.BatchSize}
	total := 0
	for {
		n, err := r.cfg.Runs.DeleteFinishedRuns(ctx, purge)
		total += n
		r.stats.deleted.Add(int64(n))
		if err != nil {
			return total, fmt.Errorf("delete finished runs: %w", err)
		}
		if n < r.cfg.BatchSize {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(r.cfg.BatchPause):
		}
	}
}
