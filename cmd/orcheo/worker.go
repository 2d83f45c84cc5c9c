package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// workerCommand executes runs from the queues, Celery-style:
// orcheo worker --concurrency 8 --queues default,reports.
type workerCommand struct {
	*env
	cfg Config
}

func (c *workerCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("worker")
	fs.IntVar(&c.cfg.Concurrency, "concurrency", c.cfg.Concurrency, "runs executed at once (ORCHEO_WORKER_CONCURRENCY)")
	queues := fs.String("queues", "", "comma-separated queues to consume (ORCHEO_QUEUES)")
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
	if c.cfg.DatabaseURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "ORCHEO_DATABASE_URL is not set (orcheo dev runs without it)")
	}
	log, err := newLogger(c.cfg, c.stderr)
	if err != nil {
		return err
	}
	defer servePprof(c.cfg.PprofAddr, log.WithField("component", "pprof"))()
	// A worker started before its database or Redis (a host booting, a
	// deployment rolling) waits for them instead of exiting.
	startLog := log.WithField("component", "worker")
	var store *db.Store
	err = untilUp(ctx, startLog, "the database", func(ctx context.Context) (err error) {
		store, err = db.Open(ctx, c.cfg.DatabaseURL)
		return err
	})
	if err != nil {
		return stoppedWaiting(ctx, startLog, err)
	}
	defer store.Close()
	// One Redis client for the process, closed after its last user (the
	// worker stops before the deferred calls run).
	client, err := rdb.Open(c.cfg.RedisURL)
	if err != nil {
		return err
	}
	defer client.Close()
	// The queue carries the child runs that workflow nodes start.
	queue, err := tasks.NewQueue(c.cfg.tasksConfig(), client, log.WithField("component", "queue"))
	if err != nil {
		return err
	}
	defer queue.Close()
	if err := untilUp(ctx, startLog, "redis", queue.Ping); err != nil {
		return stoppedWaiting(ctx, startLog, err)
	}
	m := newProcessMetrics()
	// The process's one run submitter: child runs and the rescuer's
	// publishes. Stopped after the worker (deferred before it returns),
	// before the queue it publishes on.
	sub := submit.New(submit.Config{Runs: m.runs.Wrap(store.Runs), Queue: queue, Logger: log})
	sub.Start(ctx)
	defer sub.Stop()
	w, err := startWorker(ctx, c.cfg, store, client, sub, m, log)
	if err != nil {
		return err
	}
	if c.cfg.WorkerMetricsAddr != "" {
		health := func() any { return map[string]string{"status": "ok", "worker_id": w.ID} }
		srv, err := serveStatus(c.cfg.WorkerMetricsAddr, m, health, log.WithField("component", "worker"))
		if err != nil {
			w.Stop()
			return err
		}
		// Closed last, so the port answers while the worker drains.
		defer srv.Close()
	}
	<-ctx.Done()
	log.WithField("drain_timeout", w.DrainTimeout.String()).Info("worker stopping: finishing runs in flight; a second signal exits at once")
	// A second SIGTERM or SIGINT exits without waiting: the runs in flight
	// keep their leases until they expire, and the rescuer and the reaper
	// give them to other workers.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	stopped := make(chan struct{})
	go func() {
		w.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case sig := <-again:
		log.WithField("signal", sig.String()).Warn("second signal: exiting now; unfinished runs are recovered when their leases expire")
		os.Exit(1)
	}
	return nil
}

// startWorker builds and starts a worker on store and client (the
// process's one Redis client), counted in m; sub (the process's one run
// submitter, whose store counts the runs it creates) stores and publishes
// the child runs its workflow nodes start and the rescuer's runs.
func startWorker(ctx context.Context, cfg Config, store *db.Store, client redis.UniversalClient, sub orcheo.RunSubmitter, m processMetrics, log *logrus.Logger) (*tasks.Worker, error) {
	w := tasks.NewWorker(cfg.tasksConfig())
	w.Runs, w.Workflows, w.Redis, w.Submitter = store.Runs, store.Workflows, client, sub
	m.observeWorker(w)
	starter := &tasks.RunStarter{Workflows: store.Workflows, Runs: store.Runs, Submitter: sub,
		MaxDepth: cfg.MaxChildDepth, MaxChildren: cfg.MaxChildRuns, MaxTree: cfg.MaxRunTree}
	w.Engine = engine.New(cfg.engineOptions(log.WithField("component", "engine"), starter))
	w.Logger = log.WithField("component", "worker")
	w.DrainTimeout = cfg.DrainTimeout
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"worker_id": w.ID, "queues": cfg.Queues, "concurrency": cfg.Concurrency}).Info("worker started")
	return w, nil
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

// stoppedWaiting is what the worker command returns when untilUp did: nil
// when a signal ended the wait (nothing had started), else err.
func stoppedWaiting(ctx context.Context, log logrus.FieldLogger, err error) error {
	if ctx.Err() != nil {
		log.Info("worker stopped before it started")
		return nil
	}
	return err
}
