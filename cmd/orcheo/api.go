package main

import (
	"context"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/tasks"
)

// apiCommand serves the HTTP API (apiMain): it stores runs, enqueues them,
// and runs the requeuer that enqueues runs whose first enqueue failed.
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
	a := &apiMain{cfg: c.cfg, log: log}
	if err := a.Run(ctx); err != nil {
		a.Close()
		return err
	}
	// A daemon: SIGHUP re-reads the token file, or is ignored without one.
	watchTokenReload(ctx, a.cfg, a.server.Tokens, log.WithField("component", "tokens"))
	return waitAndClose(ctx, a, log, "api shutting down")
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
