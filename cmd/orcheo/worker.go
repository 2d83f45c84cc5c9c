package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/tasks"
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
	store, err := db.Open(ctx, c.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	// The queue carries the child runs that workflow nodes start.
	queue, err := tasks.NewQueue(c.cfg.tasksConfig(), log.WithField("component", "queue"))
	if err != nil {
		return err
	}
	defer queue.Close()
	m := newProcessMetrics()
	w, err := startWorker(ctx, c.cfg, store, queue, m, log)
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

// startWorker builds and starts a worker on store, counted in m; queue
// enqueues the child runs its workflow nodes start.
func startWorker(ctx context.Context, cfg Config, store *db.Store, queue orcheo.RunQueue, m processMetrics, log *logrus.Logger) (*tasks.Worker, error) {
	w := tasks.NewWorker(cfg.tasksConfig())
	w.Runs, w.Workflows = store.Runs, store.Workflows
	m.observeWorker(w)
	// Child runs that workflow nodes start are counted where they are
	// created: here.
	starter := &tasks.RunStarter{Workflows: store.Workflows, Runs: m.runs.Wrap(store.Runs), Queue: queue, Logger: log.WithField("component", "engine"),
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
