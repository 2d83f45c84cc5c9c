package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// workerMain is the worker process: store, Redis client, queue, submitter,
// the tasks.Worker and its health and metrics port. Run returns once the
// worker consumes; Close drains it (DrainTimeout) and stops the rest.
type workerMain struct {
	cfg Config
	log *logrus.Logger
	// api, if set, is the apiMain whose store, Redis client, submitter
	// and metrics this worker shares (orcheo dev): Run opens none of
	// them, nor the health port or pprof, and Close leaves them to it.
	api *apiMain

	closePprof func()
	store      *db.Store
	redis      redis.UniversalClient // the process's one Redis client
	// queue carries the child runs that workflow nodes start and the
	// rescuer's publishes, through the submitter.
	queue *tasks.Queue
	// submitter is the process's one run submitter: child runs and the
	// rescuer's publishes. Stopped after the worker, before the queue.
	submitter *submit.Submitter
	metrics   processMetrics
	worker    *tasks.Worker
	status    *http.Server // /healthz and /metrics, at WorkerMetricsAddr

	closeOnce sync.Once
	closeErr  error
}

// Run opens what the worker needs and starts it. A worker started before
// its database or Redis (a host booting, a deployment rolling) waits for
// them instead of failing; a signal ends the wait and Run returns ctx's
// error. On error the caller still calls Close.
func (m *workerMain) Run(ctx context.Context) error {
	if m.api != nil {
		m.store, m.redis, m.submitter, m.metrics = m.api.store, m.api.redis, m.api.submitter, m.api.metrics
	} else if err := m.open(ctx); err != nil {
		return err
	}
	var err error
	if m.worker, err = startWorker(ctx, m.cfg, m.store, m.redis, m.submitter, m.metrics, m.log); err != nil {
		return err
	}
	if m.api == nil && m.cfg.WorkerMetricsAddr != "" {
		if m.status, err = serveStatus(m.cfg.WorkerMetricsAddr, m.metrics, workerChecks(m.worker), m.log.WithField("component", "worker")); err != nil {
			return err
		}
	}
	return nil
}

// open opens the worker's own store, Redis client, queue and submitter,
// waiting for the database and Redis to answer (untilUp).
func (m *workerMain) open(ctx context.Context) error {
	m.closePprof = servePprof(m.cfg.PprofAddr, m.log.WithField("component", "pprof"))
	startLog := m.log.WithField("component", "worker")
	err := untilUp(ctx, startLog, "the database", func(ctx context.Context) (err error) {
		m.store, err = db.Open(ctx, m.cfg.DatabaseURL)
		return err
	})
	if err != nil {
		return err
	}
	// Each queue's consumer holds a pooled connection in BLMOVE while its
	// queue is empty: the pool has room for them beside everything else.
	if m.redis, err = rdb.OpenBlocking(m.cfg.RedisURL, max(len(m.cfg.Queues), 1)); err != nil {
		return err
	}
	if m.queue, err = tasks.NewQueue(m.cfg.tasksConfig(), m.redis, m.log.WithField("component", "queue")); err != nil {
		return err
	}
	if err := untilUp(ctx, startLog, "redis", m.queue.Ping); err != nil {
		return err
	}
	m.metrics = newProcessMetrics()
	m.submitter = submit.New(submit.Config{Runs: m.metrics.runs.Wrap(m.store.Runs), Queue: m.queue, Logger: m.log})
	m.submitter.Start(ctx)
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
	if cfg.WorkerName != "" { // else tasks.DefaultWorkerName(): <host>-<pid>
		w.Name = tasks.ExpandWorkerName(cfg.WorkerName)
	}
	// The retention of finished runs runs on the rescuer's leader only.
	if r := newRetention(cfg, store, m, log); r != nil {
		w.LeaderServices = append(w.LeaderServices, r)
	}
	w.DB, w.HealthGrace = store, cfg.HealthGrace // /healthz and /readyz (health.go)
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"worker_id": w.ID, "queues": cfg.Queues, "concurrency": cfg.Concurrency}).Info("worker started")
	return w, nil
}

// Close stops the worker, which finishes its runs in flight for up to
// DrainTimeout; then the health port, which answered while it drained;
// then the submitter after its users, the queue, the Redis client and the
// store. Only what Run opened, and only once.
func (m *workerMain) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *workerMain) close() error {
	var errs closeErrors
	if m.worker != nil {
		m.worker.Stop()
	}
	if m.status != nil {
		errs.add(m.status.Close())
	}
	if m.api != nil {
		return errs.first // the rest is the API's
	}
	if m.submitter != nil {
		m.submitter.Stop()
	}
	if m.queue != nil {
		errs.add(m.queue.Close())
	}
	if m.redis != nil { // after its users
		errs.add(m.redis.Close())
	}
	if m.store != nil {
		errs.add(m.store.Close())
	}
	if m.closePprof != nil {
		m.closePprof()
	}
	return errs.first
}
