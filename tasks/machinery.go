package tasks

import (
	"net/url"
	"strings"

	machinery "github.com/RichardKnop/machinery/v2"
	backendsiface "github.com/RichardKnop/machinery/v2/backends/iface"
	nullbackend "github.com/RichardKnop/machinery/v2/backends/null"
	"github.com/RichardKnop/machinery/v2/config"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// machineryConfig translates cfg (already validated) into machinery's
// configuration. cnf.Redis must be non-nil: machinery's Redis result
// backend dereferences it. Signals are ours to handle (cmd/orcheo), never
// machinery's.
func machineryConfig(cfg *Config) *config.Config {
	// The broker and the result backend are ours, on the process's client:
	// machinery only logs these URLs, so it gets them without secrets.
	logged := loggableURL(cfg.RedisURL)
	return &config.Config{
		Broker:          logged,
		DefaultQueue:    queueName(""), // queues are named by name; package rdb builds their keys
		ResultBackend:   logged,
		ResultsExpireIn: int(cfg.ResultsExpireIn.Seconds()),
		Redis:           &config.RedisConfig{},
		NoUnixSignals:   true,
	}
}

// loggableURL is rawURL (validated: rdb.CheckURL accepted it) reduced to
// its scheme and hosts. machinery logs its URLs through RedactURL, which
// prints the whole URL, password included, when url.Parse fails on it (a
// redis+sentinel:// URL of several IPv6 hosts does), so it must never see
// the password. A sentinel URL's hosts are found as package rdb reads
// them, without url.Parse.
func loggableURL(rawURL string) string {
	if trdb.IsSentinelURL(rawURL) {
		s := rawURL[len(trdb.SentinelScheme)+len("://"):]
		if i := strings.IndexAny(s, "/?"); i >= 0 {
			s = s[:i]
		}
		if i := strings.LastIndex(s, "@"); i >= 0 {
			s = s[i+1:]
		}
		return trdb.SentinelScheme + "://" + s
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "redis" // not a validated URL: say nothing of it
	}
	return u.Scheme + "://" + u.Host
}

// newBackend builds the result backend on r, the process's Redis client
// (no pool of its own), under the key prefix package rdb lists. Task
// states are informational only (run status lives in the database), so
// ours keeps only the terminal state, in one write per run (backend.go);
// "none" keeps nothing.
func newBackend(cfg *Config, r *rdb) backendsiface.Backend {
	if cfg.ResultBackend == ResultBackendNone {
		return nullbackend.New()
	}
	return newResultBackend(r.client, r.ResultKeyPrefix(), cfg.ResultsExpireIn)
}

// newServer builds a machinery server on a reliable broker of its own
// (broker.go) over r, the process's one Redis client. A broker consumes
// once, so every consumer gets one. No lock is configured: it serves only
// periodic tasks, which orcheo does not use (its beat dispatches cron runs
// through the API).
func newServer(cfg *Config, r *rdb, logger logrus.FieldLogger) (*machinery.Server, *reliableBroker, error) {
	cnf := machineryConfig(cfg)
	broker := newReliableBroker(cfg, cnf, r, logger)
	return machinery.NewServer(cnf, broker, newBackend(cfg, r), nil), broker, nil
}
