package tasks

import (
	machinery "github.com/RichardKnop/machinery/v2"
	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	nullbackend "github.com/RichardKnop/machinery/v2/backends/null"
	redisbackend "github.com/RichardKnop/machinery/v2/backends/redis"
	brokersiface "github.com/RichardKnop/machinery/v2/brokers/iface"
	redisbroker "github.com/RichardKnop/machinery/v2/brokers/redis"
	"github.com/RichardKnop/machinery/v2/config"
)

// machineryConfig translates cfg (already validated) into machinery's
// configuration. cnf.Redis must be non-nil: the GR constructors dereference
// it. Signals are ours to handle (cmd/orcheo), never machinery's.
func machineryConfig(cfg *Config) *config.Config {
	return &config.Config{
		Broker:          cfg.RedisURL, // only logged, through machinery's RedactURL (scheme and host)
		DefaultQueue:    cfg.queueKey(""),
		ResultBackend:   cfg.RedisURL,
		ResultsExpireIn: int(cfg.ResultsExpireIn.Seconds()),
		Redis: &config.RedisConfig{
			NormalTasksPollPeriod:  1000, // BLPOP timeout, ms: bounds how long Stop waits for the fetcher
			DelayedTasksPollPeriod: 500,
			DelayedTasksKey:        cfg.delayedKey(),
		},
		NoUnixSignals: true,
	}
}

// newBroker builds the broker. It is the one place that picks the broker
// implementation: the at-most-once Redis broker of machinery today, a
// reliable broker implementing brokersiface.Broker later.
//
// machinery's BrokerGR can stop consuming only once (StopConsuming closes
// its stop channel and its Redis client), so every consumer and every Queue
// gets a broker of its own.
func newBroker(cfg *Config, cnf *config.Config) (brokersiface.Broker, error) {
	addr, db, err := redisAddr(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	return redisbroker.NewGR(cnf, []string{addr}, db), nil
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

// newServer builds a machinery server with its own broker and backend. No
// lock is configured: it serves only periodic tasks, which orcheo does not
// use (its beat dispatches cron runs through the API).
func newServer(cfg *Config) (*machinery.Server, brokersiface.Broker, error) {
	cnf := machineryConfig(cfg)
	broker, err := newBroker(cfg, cnf)
	if err != nil {
		return nil, nil, err
	}
	backend, err := newBackend(cfg, cnf)
	if err != nil {
		return nil, nil, err
	}
	return machinery.NewServer(cnf, broker, backend, nil), broker, nil
}
