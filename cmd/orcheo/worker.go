package main

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/tasks"
	"github.com/sirupsen/logrus"
)

// workerCommand executes runs from the queues, Celery-style:
// orcheo worker -c 8 -Q default,reports -n w1@%h --loglevel info.
type workerCommand struct {
	*env
	cfg Config
}

func (c *workerCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("worker")
	// Celery's short and long forms, each pair on one variable.
	fs.IntVar(&c.cfg.Concurrency, "concurrency", c.cfg.Concurrency, "runs executed at once (ORCHEO_WORKER_CONCURRENCY)")
	fs.IntVar(&c.cfg.Concurrency, "c", c.cfg.Concurrency, "short for --concurrency")
	queues := fs.String("queues", "", "comma-separated queues to consume (ORCHEO_QUEUES)")
	fs.StringVar(queues, "Q", "", "short for --queues")
	fs.StringVar(&c.cfg.WorkerName, "name", c.cfg.WorkerName, "the worker's name, %h is the host (ORCHEO_WORKER_NAME; default <host>-<pid>)")
	fs.StringVar(&c.cfg.WorkerName, "n", c.cfg.WorkerName, "short for --name")
	fs.StringVar(&c.cfg.LogLevel, "loglevel", c.cfg.LogLevel, "debug, info, warn or error (ORCHEO_LOG_LEVEL)")
	fs.StringVar(&c.cfg.LogLevel, "l", c.cfg.LogLevel, "short for --loglevel")
	fs.StringVar(&c.cfg.WorkerMetricsAddr, "metrics-addr", c.cfg.WorkerMetricsAddr, "serve /healthz and /metrics on this address (ORCHEO_WORKER_METRICS_ADDR)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *queues != "" {
		c.cfg.Queues = splitList(*queues)
	}
	if c.cfg.Concurrency < 1 {
		return orcheo.Errorf(orcheo.EINVALID, "--concurrency must be at least 1")
	}
	if c.cfg.WorkerName != "" {
		if err := orcheo.CheckWorkerName(tasks.ExpandWorkerName(c.cfg.WorkerName)); err != nil {
			return err
		}
	}
	if c.cfg.DatabaseURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "ORCHEO_DATABASE_URL is not set (orcheo dev runs without it)")
	}
	log, err := newLogger(c.cfg, c.stderr)
	if err != nil {
		return err
	}
	m := &workerMain{cfg: c.cfg, log: log}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return stoppedWaiting(ctx, log.WithField("component", "worker"), err)
	}
	// An operator's control shutdown drains the worker as SIGTERM does,
	// and the process then exits 0 the same way.
	stopCtx, stop := untilShutdownRequested(ctx, m.worker)
	defer stop()
	return closeWhenDone(stopCtx, ctx, m, log.WithField("drain_timeout", m.worker.DrainTimeout.String()),
		"worker stopping: finishing runs in flight; a second signal exits at once")
}

// untilShutdownRequested returns ctx, also done once an operator asked w
// to shut down (orcheo control shutdown), and the function that releases
// it.
func untilShutdownRequested(ctx context.Context, w *tasks.Worker) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-w.ShutdownRequested():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Backoff of a worker waiting at start for its database or Redis.
const (
	startRetryMin = 500 * time.Millisecond
	startRetryMax = 5 * time.Second
)

// untilUp calls fn until it succeeds or fails with something other than an
// outage (isOutage), waiting between tries from startRetryMin, doubling up
// to startRetryMax; each failed try is logged at WARN with the error and
// the wait. It returns ctx's error once ctx is done, so a signal ends the
// wait at once.
func untilUp(ctx context.Context, log logrus.FieldLogger, what string, fn func(context.Context) error) error {
	wait := startRetryMin
	for try := 1; ; try++ {
		err := fn(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil || !isOutage(err) {
			return err
		}
		log.WithError(err).WithFields(logrus.Fields{"try": try, "retry_in": wait.String()}).Warn("waiting for " + what)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, startRetryMax)
	}
}

// isOutage reports whether err says that a service could not be reached
// (refused, reset, timed out, not resolved, starting up or full), which
// waiting can cure, rather than a mistake in the configuration (a bad URL,
// a refused password), which it cannot.
func isOutage(err error) bool {
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	// PostgreSQL's 57P03 cannot_connect_now (starting up or shutting
	// down) and 53300 too_many_connections; pgconn.PgError has SQLState.
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch pg.SQLState() {
		case "57P03", "53300":
			return true
		}
	}
	return false
}

// stoppedWaiting is what the worker command returns when Run failed: nil
// when a signal ended it (the wait for the database or Redis), else err.
func stoppedWaiting(ctx context.Context, log logrus.FieldLogger, err error) error {
	if ctx.Err() != nil {
		log.Info("worker stopped before it started")
		return nil
	}
	return err
}
