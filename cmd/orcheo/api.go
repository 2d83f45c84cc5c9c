package main

import (
	"context"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/metrics"
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/orcheo/orcheo/webhook"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// apiCommand serves the HTTP API. It stores runs, enqueues them, and runs
// the requeuer that enqueues runs whose first enqueue failed.
type apiCommand struct {
	*env
	cfg Config
}

func (c *apiCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("api")
	fs.StringVar(&c.cfg.HTTPAddr, "addr", c.cfg.HTTPAddr, "listen address (ORCHEO_HTTP_ADDR)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if c.cfg.DatabaseURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "ORCHEO_DATABASE_URL is not set (orcheo dev runs without it)")
	}
	if !c.cfg.hasAPITokens() {
		return orcheo.Errorf(orcheo.EINVALID, "no API token: set ORCHEO_API_TOKEN, ORCHEO_API_TOKENS or ORCHEO_API_TOKENS_FILE; the API refuses to serve management endpoints without a token")
	}
	log, err := newLogger(c.cfg, c.stderr)
	if err != nil {
		return err
	}
	defer servePprof(c.cfg.PprofAddr, log.WithField("component", "pprof"))()
	a := &apiMain{cfg: c.cfg, log: log}
	if err := a.Open(ctx); err != nil {
		a.Close()
		return err
	}
	// A daemon: SIGHUP re-reads the token file, or is ignored without one.
	watchTokenReload(ctx, a.cfg, a.server.Tokens, log.WithField("component", "tokens"))
	log.WithFields(logrus.Fields{"url": a.server.URL(), "database": a.store.Backend}).Info("api listening")
	<-ctx.Done()
	log.Info("api shutting down")
	return a.Close()
}

// apiMain is the API process: store, queue, HTTP server and requeuer.
type apiMain struct {
	cfg   Config
	log   *logrus.Logger
	store *db.Store
	redis redis.UniversalClient // the process's one Redis client
	queue *tasks.Queue
	// submitter is the process's one run submitter: the server, the
	// cron dispatcher, the requeuer (and in dev the worker) share it.
	submitter *submit.Submitter
	cancels   *tasks.CancelNotifier
	server    *server.Server
	requeuer  *tasks.Requeuer
	metrics   processMetrics
	// runs is the store's RunService counting the runs it creates, for
	// the server and the cron dispatcher.
	runs orcheo.RunService
}

// Open opens the store (migrating it), connects the queue and starts
// serving. On error the caller still calls Close.
func (a *apiMain) Open(ctx context.Context) error {
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
	// One Redis client for the process: the queue, the cancel notices
	// and the webhook guard share it.
	if a.redis, err = rdb.Open(a.cfg.RedisURL); err != nil {
		return err
	}
	if a.queue, err = tasks.NewQueue(a.tasksConfig(), a.redis, a.log.WithField("component", "queue")); err != nil {
		return err
	}
	if a.cancels, err = tasks.NewCancelNotifier(a.tasksConfig(), a.redis); err != nil {
		return err
	}
	if err := a.openMetrics(); err != nil {
		return err
	}
	a.submitter = submit.New(submit.Config{Runs: a.runs, Queue: a.queue, Logger: a.log})
	a.submitter.Start(ctx)
	tokens, err := openAPITokens(a.cfg, a.log.WithField("component", "tokens"))
	if err != nil {
		return err
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
	s.Logger = a.log.WithField("component", "http")
	s.ReadyChecks = map[string]orcheo.Pinger{"database": a.store, "redis": a.queue}
	s.Cron, s.CronScheduler, s.CronDispatcher = a.store.Cron, a.cfg.Cron.scheduler(), a.dispatcher()
	// Webhook rate limits and replays live in Redis, on the queue's client.
	s.WebhookGuard = a.queue.WebhookGuard()
	// The webhook route caches workflows and configs; every API process
	// hears of a change made through any of them on this feed.
	s.Changes = tasks.NewChangeFeed(a.redis, a.cfg.RedisPrefix, a.log)
	s.Verifier = webhook.Verifier{}
	s.OnWebhookRefused = metrics.NewWebhooks(a.metrics.reg).Refused
	if box != nil {
		s.Secrets = box // a nil *Box would be a non-nil SecretBox
	}
	a.server = s
	if err := s.Open(); err != nil {
		return err
	}
	a.requeuer = tasks.NewRequeuer(tasks.RequeuerConfig{
		Runs: a.store.Runs, Submitter: a.submitter, Interval: a.cfg.RequeueEvery,
		Logger: a.log.WithField("component", "requeuer"),
	})
	a.requeuer.Start(ctx)
	return nil
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
// enqueueing it, then stops the rest.
func (a *apiMain) Close() error {
	var first error
	if a.server != nil {
		first = a.server.Close()
	}
	if a.requeuer != nil {
		a.requeuer.Stop()
	}
	if a.submitter != nil { // after its users; writes and publishes what they submitted
		a.submitter.Stop()
	}
	if a.queue != nil {
		if err := a.queue.Close(); err != nil && first == nil {
			first = err
		}
	}
	if a.cancels != nil {
		if err := a.cancels.Close(); err != nil && first == nil {
			first = err
		}
	}
	if a.redis != nil { // after its users
		if err := a.redis.Close(); err != nil && first == nil {
			first = err
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (a *apiMain) tasksConfig() tasks.Config {
	return a.cfg.tasksConfig()
}

// tasksConfig is the part of Config the queue and worker read.
func (c Config) tasksConfig() tasks.Config {
	return tasks.Config{
		RedisURL:        c.RedisURL,
		Prefix:          c.RedisPrefix,
		Queues:          c.Queues,
		Concurrency:     c.Concurrency,
		ResultBackend:   c.ResultBackend,
		ResultsExpireIn: time.Hour,
		LeaseDuration:   c.LeaseDuration,

		HeartbeatInterval: c.HeartbeatInterval,
		ConsumerTTL:       c.ConsumerTTL,
		RescueInterval:    c.RescueInterval,
		ReenqueueAfter:    c.ReenqueueAfter,
	}
}
