package tasks

import (
	machinery "github.com/RichardKnop/machinery/v2"
	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	nullbackend "github.com/RichardKnop/machinery/v2/backends/null"
	"github.com/RichardKnop/machinery/v2/config"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// machineryConfig translates cfg (already validated) into machinery's
// configuration. cnf.Redis must be non-nil: machinery's Redis result
// backend dereferences it. Signals are ours to handle (cmd/orcheo), never
// machinery's.
func machineryConfig(cfg *Config) *config.Config {
	return &config.Config{
		Broker:          cfg.RedisURL,  // only logged, through machinery's RedactURL (scheme and host)
		DefaultQueue:    queueName(""), // queues are named by name; package rdb builds their keys
		ResultBackend:   cfg.RedisURL,
		ResultsExpireIn: int(cfg.ResultsExpireIn.Seconds()),
		Redis:           &config.RedisConfig{},
		NoUnixSignals:   true,
	}
}

// newBackend builds the result backend on client, the process's Redis
// client (no pool of its own). Task states are informational only (run
// status lives in the database), so ours keeps only the terminal state, in
// one write per run (backend.go); "none" keeps nothing.
func newBackend(cfg *Config, client redis.UniversalClient) backendsiface.Backend {
	if cfg.ResultBackend == ResultBackendNone {
		return nullbackend.New()
	}
	return newResultBackend(client, cfg.Prefix+":result:", cfg.ResultsExpireIn)
}

// newServer builds a machinery server on a reliable broker of its own
// (broker.go) over r, the process's one Redis client. A broker consumes
// once, so every consumer gets one. No lock is configured: it serves only
// periodic tasks, which orcheo does not use (its beat dispatches cron runs
// through the API).
func newServer(cfg *Config, r *rdb, logger logrus.FieldLogger) (*machinery.Server, *reliableBroker, error) {
	cnf := machineryConfig(cfg)
	broker := newReliableBroker(cfg, cnf, r, logger)
	return machinery.NewServer(cnf, broker, newBackend(cfg, r.client), nil), broker, nil
}
