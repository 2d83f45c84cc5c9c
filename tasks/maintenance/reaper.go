package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// Reaper defaults.
const (
	// ReaperIntervalDefault is the time between passes, the consumers'
	// default heartbeat interval: a consumer that stopped beating is
	// reaped within its TTL plus one interval of its last heartbeat.
	ReaperIntervalDefault = 10 * time.Second
	// ReaperBatchSizeDefault is the most dead consumers one script call
	// reaps; a pass repeats calls until one comes back short.
	ReaperBatchSizeDefault = 100
	// reaperFirstPassTimeout bounds the pass Start makes before it
	// returns, should Redis hang.
	reaperFirstPassTimeout = 5 * time.Second
)

// ReaperConfig configures a Reaper.
type ReaperConfig struct {
	// RDB is the Redis layer (required).
	RDB *rdb.RDB
	// Queues are the queues whose dead consumers are reaped (at least
	// one): the worker's own.
	Queues []string
	// Interval between passes; default ReaperIntervalDefault. The worker
	// passes its heartbeat interval.
	Interval time.Duration
	// BatchSize bounds the consumers one script call reaps; default
	// ReaperBatchSizeDefault.
	BatchSize int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
	// Now is the clock compared with the consumers' deadlines; default
	// time.Now.
	Now func() time.Time
}

// ReaperStats counts what a Reaper did since it was built.
type ReaperStats struct {
	Passes    int64 // passes made
	Consumers int64 // dead consumers reaped
	Messages  int64 // their messages put back at the front of their queues
}

// Reaper hands the processing lists of dead consumers back to the front of
// their queues: a consumer registers in its queue's consumers with a
// deadline of its last heartbeat plus ORCHEO_CONSUMER_TTL, and once the
// deadline has passed (the process was killed, hung or paused that long)
// the messages it took and never acked were in line before anything queued
// since, so they go to the front, oldest first, and the consumer is
// forgotten. A consumer that was only paused finds itself forgotten at
// its next take (rdb.ErrReaped) or heartbeat and registers again before it
// takes anything (tasks/broker.go); its tasks still running settle
// harmlessly, their acks finding nothing to remove.
//
// Every worker runs a Reaper for its own queues, rather than one leader
// for all: the reaper must run while any consumer of a queue is alive,
// and a leader elected among all workers may not consume that queue, nor
// know it. Reaping is one script per queue (rdb.Reap) that forgets each
// dead consumer as it moves its list, so the reapers of several workers
// never move a list twice.
//
// What stays in the consumer: its own heartbeat and re-registration, and
// the orphan sweep, which compares its processing list with the messages
// it is running (in its memory, so no other process can do it). The
// delayed-message promoter is the Promoter: a queue-level job like this
// one, but on its own, shorter interval.
type Reaper struct {
	startstop.BaseStartStop
	cfg    ReaperConfig
	logger logrus.FieldLogger
	stats  struct{ passes, consumers, messages atomic.Int64 }
}

var _ startstop.Service = (*Reaper)(nil)

// NewReaper fills zero fields of cfg with defaults. It panics if RDB is
// nil, Queues is empty or a field is negative: programmer errors.
func NewReaper(cfg ReaperConfig) *Reaper {
	orDefault(&cfg.Interval, ReaperIntervalDefault)
	orDefault(&cfg.BatchSize, ReaperBatchSizeDefault)
	orDefault[logrus.FieldLogger](&cfg.Logger, logrus.StandardLogger())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.mustValidate()
	cfg.Queues = append([]string(nil), cfg.Queues...)
	return &Reaper{cfg: cfg, logger: cfg.Logger.WithField("component", "reaper")}
}

func (c *ReaperConfig) mustValidate() {
	if c.RDB == nil || len(c.Queues) == 0 {
		panic("maintenance: ReaperConfig needs RDB and Queues")
	}
	if c.Interval < 0 || c.BatchSize < 0 {
		panic("maintenance: ReaperConfig Interval and BatchSize must not be negative")
	}
}

// Stats returns the counters. Safe for concurrent use.
func (r *Reaper) Stats() ReaperStats {
	return ReaperStats{Passes: r.stats.passes.Load(), Consumers: r.stats.consumers.Load(), Messages: r.stats.messages.Load()}
}

// Start makes a first pass before it returns (for at most a few seconds),
// so consumers started after it take a dead consumer's messages before
// anything queued since, in their order; then it launches the reaper's
// goroutine, a pass every Interval until Stop or ctx is done. Errors are
// logged, not returned. Starting a started reaper does nothing.
func (r *Reaper) Start(ctx context.Context) {
	ctx, shouldStart, stopped := r.StartInit(ctx)
	if !shouldStart {
		return
	}
	first, cancel := context.WithTimeout(ctx, reaperFirstPassTimeout)
	r.logPass(r.runOnce(first))
	cancel()
	go func() {
		defer stopped()
		every(ctx, r.cfg.Interval, false, func(ctx context.Context) { r.logPass(r.runOnce(ctx)) })
	}()
}

func (r *Reaper) logPass(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		r.logger.WithError(err).Warn("reap pass")
	}
}

// runOnce reaps every queue's dead consumers, in batches of BatchSize. An
// error on one queue does not stop the others.
func (r *Reaper) runOnce(ctx context.Context) error {
	r.stats.passes.Add(1)
	var errs []error
	for _, q := range r.cfg.Queues {
		for {
			consumers, messages, err := r.cfg.RDB.Reap(ctx, q, r.cfg.Now(), r.cfg.BatchSize)
			if err != nil {
				errs = append(errs, fmt.Errorf("reap queue %s: %w", q, err))
				break
			}
			if consumers > 0 {
				r.stats.consumers.Add(int64(consumers))
				r.stats.messages.Add(int64(messages))
				r.logger.WithFields(logrus.Fields{"queue": q, "consumers": consumers, "messages": messages}).
					Warn("reaped dead consumers: their messages are back at the front of their queue")
			}
			if consumers < r.cfg.BatchSize {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}
