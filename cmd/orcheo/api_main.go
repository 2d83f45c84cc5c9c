package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/metrics"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/secrets"
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/maintenance"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/orcheo/orcheo/webhook"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// apiMain is the API process: store, queue, HTTP server and requeuer. Run
// opens and starts them and returns once the server listens; Close stops
// them in reverse. orcheo dev runs one and lends its store, Redis client,
// submitter and metrics to its worker and beat.
type apiMain struct {
	cfg Config
	log *logrus.Logger
	// consumers is how many callers of the Redis client hold a pooled
	// connection while they wait (BLMOVE): in orcheo dev, its worker's
	// consumers, one per queue; 0 for the API alone.
	consumers int

	closePprof func()
	store      *db.Store
	redis      redis.UniversalClient // the process's one Redis client
	queue      *tasks.Queue
	// submitter is the process's one run submitter: the server, the
	// cron dispatcher, the requeuer (and in dev the worker) share it.
	submitter *submit.Submitter
	cancels   *tasks.CancelNotifier
	server    *server.Server
	requeuer  *maintenance.Requeuer
	metrics   processMetrics
	// runs is the store's RunService counting the runs it creates, for
	// the server and the cron dispatcher.
	runs orcheo.RunService

	closeOnce sync.Once
	closeErr  error
}

// Run opens the store (migrating it), connects the queue and starts
// serving. On error the caller still calls Close.
func (a *apiMain) Run(ctx context.Context) error {
	a.closePprof = servePprof(a.cfg.PprofAddr, a.log.WithField("component", "pprof"))
	var err error
	if a.store, err = db.Open(ctx, a.cfg.DatabaseURL); err != nil {
		return err
	}
	// Webhook secrets: refuse to start on a missing or wrong key, and
	// say which webhooks are open to anyone (secrets.go).
	box, err := a.cfg.secretBox()
	if err != nil {
		return err
	}
	if err := checkWebhookTriggers(ctx, a.store.Triggers, box, a.log.WithField("component", "api")); err != nil {
		return err
	}
	// One Redis client for the process: the queue, the cancel notices,
	// the change feed and the webhook guard share it.
	if a.redis, err = rdb.OpenBlocking(a.cfg.RedisURL, a.consumers); err != nil {
		return err
	}
	if a.queue, err = tasks.NewQueue(a.cfg.tasksConfig(), a.redis, a.log.WithField("component", "queue")); err != nil {
		return err
	}
	if a.cancels, err = tasks.NewCancelNotifier(a.cfg.tasksConfig(), a.redis); err != nil {
		return err
	}
	if err := a.openMetrics(); err != nil {
		return err
	}
	a.submitter = submit.New(submit.Config{Runs: a.runs, Queue: a.queue, Logger: a.log})
	a.submitter.Start(ctx)
	if a.server, err = a.newServer(box); err != nil {
		return err
	}
	if err := a.server.Open(); err != nil {
		return err
	}
	a.requeuer = a.newRequeuer()
	a.requeuer.Start(ctx)
	a.log.WithFields(logrus.Fields{"url": a.server.URL(), "database": a.store.Backend}).Info("api listening")
	return nil
}

// newServer builds the HTTP server on what Run opened; box seals webhook
// secrets (nil: none are configured).
func (a *apiMain) newServer(box *secrets.Box) (*server.Server, error) {
	tokens, err := openAPITokens(a.cfg, a.log.WithField("component", "tokens"))
	if err != nil {
		return nil, err
	}
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers = a.store.Workflows, a.runs, a.store.Triggers
	s.Metrics = metrics.Handler(a.metrics.reg, a.log.WithField("component", "metrics"))
	s.Submitter, s.Cancels = a.submitter, a.cancels
	s.Engine = engine.New(engine.Options{Logger: a.log.WithField("component", "engine")})
	s.Tokens = tokens
	s.Addr = a.cfg.HTTPAddr
	s.MaxBodyBytes = a.cfg.MaxBodyBytes
	s.ReadHeaderTimeout, s.ReadTimeout = a.cfg.HTTPReadHeaderTimeout, a.cfg.HTTPReadTimeout
	s.WriteTimeout, s.IdleTimeout = a.cfg.HTTPWriteTimeout, a.cfg.HTTPIdleTimeout
	s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP = a.cfg.HTTPMaxUnauthenticated, a.cfg.HTTPMaxUnauthenticatedPerIP
	s.TrustedProxies = a.cfg.HTTPTrustedProxies
	s.Logger = a.log.WithField("component", "http")
	s.ReadyChecks = map[string]orcheo.Pinger{"database": a.store, "redis": a.queue}
	s.Cron, s.CronScheduler, s.CronDispatcher = a.store.Cron, a.cfg.Cron.scheduler(), a.dispatcher()
	// Webhook rate limits and replays live in Redis, on the queue's client.
	s.WebhookGuard = a.queue.WebhookGuard()
	// The webhook route caches workflows and configs; every API process
	// hears of a change made through any of them on this feed.
	s.Changes = tasks.NewChangeFeed(a.redis, a.cfg.RedisPrefix, a.log)
	s.Verifier = webhook.Verifier{}
	// The operators' routes read the workers' records on the same client.
	inspector, err := tasks.NewInspector(a.cfg.tasksConfig(), a.redis, a.log.WithField("component", "inspect"))
	if err != nil {
		return nil, err
	}
	s.Workers, s.WorkerQueues = inspector, a.cfg.Queues
	s.OnWebhookRefused = metrics.NewWebhooks(a.metrics.reg).Refused
	if box != nil {
		s.Secrets = box // a nil *Box would be a non-nil SecretBox
	}
	// The web UI at /ui/, on the same services and tokens; its system
	// page reads the queues, the store's counts and the beat's lease.
	sys := uiSystem{queues: a.queue, queueNames: a.cfg.Queues,
		beatLeader: func(ctx context.Context) (string, error) {
			return rdb.NewLeaders(a.redis, a.cfg.RedisPrefix).Leader(ctx, "beat")
		}}
	sys.stats, _ = a.store.Runs.(orcheo.RunStatsService)
	sys.counts, _ = a.store.Runs.(orcheo.RunCounts)
	s.UI = newUI(s, sys)
	return s, nil
}

// newRequeuer builds the requeuer, which enqueues runs whose first
// enqueue failed, through the process's submitter.
func (a *apiMain) newRequeuer() *maintenance.Requeuer {
	return maintenance.NewRequeuer(maintenance.RequeuerConfig{
		Runs: a.store.Runs, Submitter: a.submitter, Interval: a.cfg.RequeueEvery,
		Logger: a.log.WithField("component", "requeuer"),
	})
}

// dispatcher is the API side of cron: it fires due slots on the store.
func (a *apiMain) dispatcher() *schedule.Dispatcher {
	return &schedule.Dispatcher{
		Cron: a.store.Cron, Workflows: a.store.Workflows, Submitter: a.submitter,
		Seconds: a.cfg.Cron.Seconds, Grace: a.cfg.Cron.Grace,
		Logger: a.log.WithField("component", "cron"),
	}
}

// openMetrics builds the API's metrics: run creation counted on the way
// into the store, and run counts, queue depths and consumers read at each
// scrape.
func (a *apiMain) openMetrics() error {
	stats, ok := a.store.Runs.(orcheo.RunStatsService)
	if !ok {
		return fmt.Errorf("metrics: the %s store does not report run stats", a.store.Backend)
	}
	a.metrics = newProcessMetrics()
	a.runs = a.metrics.runs.Wrap(a.store.Runs)
	metrics.RegisterStats(a.metrics.reg, metrics.StatsConfig{
		Runs: stats, Queue: a.queue, Queues: a.cfg.Queues, Logger: a.log,
	})
	return nil
}

// Close stops serving first, so no request is cut between storing a run and
// enqueueing it, then stops the rest. It closes only what Run opened, and
// only once: a second call returns the first's error.
func (a *apiMain) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *apiMain) close() error {
	var errs closeErrors
	if a.server != nil {
		errs.add(a.server.Close())
	}
	if a.requeuer != nil {
		a.requeuer.Stop()
	}
	if a.submitter != nil { // after its users; writes and publishes what they submitted
		a.submitter.Stop()
	}
	if a.queue != nil {
		errs.add(a.queue.Close())
	}
	if a.cancels != nil {
		errs.add(a.cancels.Close())
	}
	if a.redis != nil { // after its users
		errs.add(a.redis.Close())
	}
	if a.store != nil {
		errs.add(a.store.Close())
	}
	if a.closePprof != nil {
		a.closePprof()
	}
	return errs.first
}
