package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// errCancelRequested is the cancel cause of a run an operator cancelled;
// execute turns a run stopped by it into a cancelled completion.
var errCancelRequested = errors.New("cancelled by operator")

// CancelNotifier publishes cancel notices to every worker on the Redis
// pub/sub channel "<prefix>:cancel". It implements orcheo.CancelNotifier
// and is safe for concurrent use. A notice no worker hears is not lost
// work: the database flag it announces is checked by every worker at each
// heartbeat.
type CancelNotifier struct {
	rdb *rdb
}

var _ orcheo.CancelNotifier = (*CancelNotifier)(nil)

// NewCancelNotifier validates cfg and returns a notifier on client, the
// process's one Redis client (its owner closes it); a nil client makes
// the notifier open one of its own to cfg.RedisURL, closed by Close. It
// does not connect until the first notice.
func NewCancelNotifier(cfg Config, client redis.UniversalClient) (*CancelNotifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		r, err := newRDB(&cfg)
		if err != nil {
			return nil, err
		}
		return &CancelNotifier{rdb: r}, nil
	}
	return &CancelNotifier{rdb: newRDBOn(client, &cfg)}, nil
}

// NotifyCancel publishes runID on the cancel channel.
func (n *CancelNotifier) NotifyCancel(ctx context.Context, runID string) error {
	if err := n.rdb.client.Publish(ctx, n.rdb.CancelChannel(), runID).Err(); err != nil {
		return fmt.Errorf("publish cancel of run %s: %w", runID, err)
	}
	return nil
}

// Close releases the notifier's client if it opened it.
func (n *CancelNotifier) Close() error { return n.rdb.close() }

// cancelRun cancels the execution of run id with errCancelRequested if
// this worker is executing it, and reports whether it was. The engine
// stops at the next node (or at once, in a node that honours its
// context); execute then completes the run as cancelled. The heartbeat
// may call it too when it learns of a cancel from the database.
func (w *Worker) cancelRun(id string) bool {
	w.leases.mu.Lock()
	cancel, ok := w.leases.runs[id]
	w.leases.mu.Unlock()
	if ok {
		cancel(errCancelRequested)
	}
	return ok
}

// cancelListener delivers cancels to the runs a worker executes: at once
// through the Redis pub/sub channel, and every HeartbeatInterval from the
// database's cancel_requested flag (the source of truth), which covers
// notices published while this worker was not subscribed or Redis was
// down. It runs from Worker.Start to Worker.Stop.
type cancelListener struct {
	startstop.BaseStartStop
	w   *Worker
	log logrus.FieldLogger

	// checked, if set by a test, receives the ids each database check
	// cancelled.
	checked chan []string
}

// Start subscribes, on the worker's one Redis client (pub/sub takes a
// connection of its own from it), and launches the listener goroutine.
// go-redis resubscribes by itself after a connection loss, pausing
// between tries.
func (l *cancelListener) Start(ctx context.Context) {
	ctx, shouldStart, stopped := l.StartInit(ctx)
	if !shouldStart {
		return
	}
	heedNotices(ctx, l.w.rdb.client, l.w.rdb.CancelChannel(), l.w.cfg.HeartbeatInterval,
		func(runID string) {
			if l.w.cancelRun(runID) {
				l.log.WithField("run_id", runID).Info("run cancelled by operator")
			}
		}, l.checkOnce, stopped)
}

// checkOnce cancels the runs this worker executes whose cancel_requested
// flag is set. A database error is logged and retried at the next tick.
func (l *cancelListener) checkOnce(ctx context.Context) {
	ids := l.w.leases.ids()
	if len(ids) == 0 {
		return
	}
	flagged, err := l.w.Runs.FindCancelRequested(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			l.log.WithError(err).Warn("check cancel requests; retrying at the next heartbeat")
		}
		return
	}
	var cancelled []string
	for _, id := range flagged {
		if l.w.cancelRun(id) {
			cancelled = append(cancelled, id)
			l.log.WithField("run_id", id).Info("run cancelled by operator (found in the database)")
		}
	}
	if l.checked != nil {
		l.checked <- cancelled
	}
}

// cancelledCompletion returns the completion of a run stopped by an
// operator's cancel, or nil if ctx was not cancelled that way.
func cancelledCompletion(ctx context.Context, exec *orcheo.Execution) *orcheo.RunCompletion {
	if !errors.Is(context.Cause(ctx), errCancelRequested) {
		return nil
	}
	c := &orcheo.RunCompletion{Status: orcheo.RunCancelled, Error: errCancelRequested.Error()}
	if exec != nil {
		c.Output, c.Steps = exec.Output, exec.Steps
	}
	return c
}
