package tasks

import (
	machinery "github.com/RichardKnop/machinery/v2"
	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	nullbackend "github.com/RichardKnop/machinery/v2/backends/null"
	redisbackend "github.com/RichardKnop/machinery/v2/backends/redis"
	"github.com/RichardKnop/machinery/v2/config"
	"github.com/sirupsen/logrus"
)

// machineryConfig translates cfg (already validated) into machinery's
// configuration. cnf.Redis must be non-nil: machinery's Redis result
// backend dereferences it. Signals are ours to handle (cmd/orcheo), never
// machinery's.
func machineryConfig(cfg *Config) *config.Config {
	return &config.Config{
		Broker:          cfg.RedisURL, // only logged, through machinery's RedactURL (scheme and host)
		DefaultQueue:    cfg.queueKey(""),
		ResultBackend:   cfg.RedisURL,
		ResultsExpireIn: int(cfg.ResultsExpireIn.Seconds()),
		Redis:           &config.RedisConfig{},
		NoUnixSignals:   true,
	}
}

// newBackend builds the result backend. Task states are informational
// only; run status lives in the database. machinery's BackendGR has no
// Close, so its connection pool lives as long as the process.
func newBackend(cfg *Config, cnf *config.Config) (backendsiface.Backend, error) {
	if cfg.ResultBackend == ResultBackendNone {
		return nullbackend.New(), nil
	}
	addr, db, err := redisAddr(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	return redisbackend.NewGR(cnf, []string{addr}, db), nil
}

// newServer builds a machinery server on a reliable broker of its own
// (broker.go). A broker consumes once, so every consumer and every Queue
// gets one. No lock is configured: it serves only periodic tasks, which
// orcheo does not use (its beat dispatches cron runs through the API).
func newServer(cfg *Config, logger logrus.FieldLogger) (*machinery.Server, *reliableBroker, error) {
	cnf := machineryConfig(cfg)
	broker, err := newReliableBroker(cfg, cnf, logger)
	if err != nil {
		return nil, nil, err
	}
	backend, err := newBackend(cfg, cnf)
	if err != nil {
		_ = broker.rdb.close()
		return nil, nil, err
	}
	return machinery.NewServer(cnf, broker, backend, nil), broker, nil
}
