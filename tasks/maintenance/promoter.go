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

// Promoter defaults.
const (
	// PromoterIntervalDefault is the time between passes: a delayed
	// message is ready at most this long after its ETA.
	PromoterIntervalDefault = 500 * time.Millisecond
	// PromoterBatchSizeDefault is the most messages one script call
	// moves; a pass repeats calls until one comes back short.
	PromoterBatchSizeDefault = 500
)

// PromoterConfig configures a Promoter.
type PromoterConfig struct {
	// RDB is the Redis layer (required).
	RDB *rdb.RDB
	// Queues are the queues whose delayed messages are promoted (at least
	// one): the worker's own.
	Queues []string
	// Interval between passes; default PromoterIntervalDefault.
	Interval time.Duration
	// BatchSize bounds the messages one script call moves; default
	// PromoterBatchSizeDefault.
	BatchSize int
	// Logger; default logrus's standard logger.
	Logger logrus.FieldLogger
	// Now is the clock compared with the ETAs; default time.Now.
	Now func() time.Time
}

// Promoter moves messages published with an ETA (a run's not_before, a
// suspended run's resume, a task retried later) from their queue's
// delayed set to the end of the queue once the ETA came. Like the Reaper,
// every worker runs one for its own queues, so a queue's delayed messages
// are promoted while any of its consumers is alive; several promoters at
// once are harmless, as each script call moves a message once.
type Promoter struct {
	startstop.BaseStartStop
	cfg    PromoterConfig
	logger logrus.FieldLogger
	moved  atomic.Int64
}

var _ startstop.Service = (*Promoter)(nil)

// NewPromoter fills zero fields of cfg with defaults. It panics if RDB is
// nil, Queues is empty or a field is negative: programmer errors.
func NewPromoter(cfg PromoterConfig) *Promoter {
	orDefault(&cfg.Interval, PromoterIntervalDefault)
	orDefault(&cfg.BatchSize, PromoterBatchSizeDefault)
	orDefault[logrus.FieldLogger](&cfg.Logger, logrus.StandardLogger())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RDB == nil || len(cfg.Queues) == 0 {
		panic("maintenance: PromoterConfig needs RDB and Queues")
	}
	if cfg.Interval < 0 || cfg.BatchSize < 0 {
		panic("maintenance: PromoterConfig Interval and BatchSize must not be negative")
	}
	cfg.Queues = append([]string(nil), cfg.Queues...)
	return &Promoter{cfg: cfg, logger: cfg.Logger.WithField("component", "promoter")}
}

// Promoted is how many messages the promoter moved. Safe for concurrent
// use.
func (p *Promoter) Promoted() int64 { return p.moved.Load() }

// Start launches the promoter's goroutine: a pass now, then one every
// Interval until Stop or ctx is done. Errors are logged at debug (an
// outage is reported by the consumers), not returned. Starting twice does
// nothing.
func (p *Promoter) Start(ctx context.Context) {
	ctx, shouldStart, stopped := p.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		every(ctx, p.cfg.Interval, true, func(ctx context.Context) {
			if err := p.runOnce(ctx); err != nil && !errors.Is(err, context.Canceled) {
				p.logger.WithError(err).Debug("promote delayed messages")
			}
		})
	}()
}

// runOnce promotes every queue's due messages, in batches of BatchSize.
func (p *Promoter) runOnce(ctx context.Context) error {
	var errs []error
	for _, q := range p.cfg.Queues {
		for {
			n, err := p.cfg.RDB.Promote(ctx, q, p.cfg.Now(), p.cfg.BatchSize)
			if err != nil {
				errs = append(errs, fmt.Errorf("promote queue %s: %w", q, err))
				break
			}
			p.moved.Add(int64(n))
			if n < p.cfg.BatchSize {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}
