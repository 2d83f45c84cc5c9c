// Package tasks hands runs to workers through machinery v2 on Redis: the
// Queue publishes execute_run tasks, the Worker consumes them and executes
// runs, and the Requeuer re-publishes runs whose enqueue failed.
//
// machinery's Redis broker is at-most-once (BLPOP without ack), so the
// database, not Redis, is the source of truth: a duplicate delivery is
// skipped by RunService.ClaimRun, and a lost message is recovered from the
// runs table (the Requeuer here, the lease rescuer later).
package tasks

import (
	"net/url"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
)

// TaskExecuteRun is the machinery task name; its one argument is the run id.
const TaskExecuteRun = "execute_run"

// Result backends.
const (
	ResultBackendRedis = "redis" // machinery's Redis result backend
	ResultBackendNone  = "none"  // machinery's null backend: no task states stored
)

// Defaults filled in by Config.Validate.
const (
	PrefixDefault          = "orcheo"
	ConcurrencyDefault     = 10
	ResultsExpireInDefault = time.Hour
	LeaseDurationDefault   = 5 * time.Minute
)

// Config configures the Queue and the Worker. Zero fields take the defaults
// above when Validate is called.
type Config struct {
	RedisURL        string        // redis://[:password@]host:port/db
	Prefix          string        // key namespace, default "orcheo"; queues are "<prefix>:queue:<name>"
	Queues          []string      // queues a worker consumes, default ["default"]
	Concurrency     int           // runs executed at once per worker process, default 10
	ResultBackend   string        // "redis" (default) or "none"
	ResultsExpireIn time.Duration // how long machinery keeps task states, default 1h
	LeaseDuration   time.Duration // lease_until = claim time + this, default 5m
}

// Validate fills in defaults and returns EINVALID for a bad Redis URL,
// prefix, queue name, concurrency, result backend or duration.
func (c *Config) Validate() error {
	if c.RedisURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "redis url is required")
	}
	if _, _, err := redisAddr(c.RedisURL); err != nil {
		return err
	}
	if c.Prefix == "" {
		c.Prefix = PrefixDefault
	}
	if strings.ContainsAny(c.Prefix, " \t\r\n{}") {
		return orcheo.Errorf(orcheo.EINVALID, "redis key prefix %q must not contain spaces or braces", c.Prefix)
	}
	if len(c.Queues) == 0 {
		c.Queues = []string{orcheo.DefaultQueue}
	}
	seen := make(map[string]bool, len(c.Queues))
	queues := make([]string, 0, len(c.Queues))
	for _, q := range c.Queues {
		q = strings.TrimSpace(q)
		// The root package owns the queue-name rule; it is reached through
		// Workflow.Validate because it is not exported on its own.
		if err := (&orcheo.Workflow{Handle: "q", Queue: q}).Validate(); err != nil || q == "" {
			return orcheo.Errorf(orcheo.EINVALID, "queue %q must be 1-63 characters of a-z, 0-9, '-' or '_'", q)
		}
		if !seen[q] {
			seen[q] = true
			queues = append(queues, q)
		}
	}
	c.Queues = queues
	if c.Concurrency < 0 {
		return orcheo.Errorf(orcheo.EINVALID, "concurrency must be positive, got %d", c.Concurrency)
	} else if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	switch c.ResultBackend {
	case "":
		c.ResultBackend = ResultBackendRedis
	case ResultBackendRedis, ResultBackendNone:
	default:
		return orcheo.Errorf(orcheo.EINVALID, "result backend %q must be %q or %q", c.ResultBackend, ResultBackendRedis, ResultBackendNone)
	}
	if c.ResultsExpireIn < 0 {
		return orcheo.Errorf(orcheo.EINVALID, "results expiry must not be negative")
	} else if c.ResultsExpireIn == 0 {
		c.ResultsExpireIn = ResultsExpireInDefault
	}
	if c.LeaseDuration < 0 {
		return orcheo.Errorf(orcheo.EINVALID, "lease duration must not be negative")
	} else if c.LeaseDuration == 0 {
		c.LeaseDuration = LeaseDurationDefault
	}
	return nil
}

// queueKey is the Redis list of a queue's messages.
func (c *Config) queueKey(queue string) string {
	if queue == "" {
		queue = orcheo.DefaultQueue
	}
	return c.Prefix + ":queue:" + queue
}

// delayedKey is the sorted set of messages published with an ETA (retries).
func (c *Config) delayedKey() string { return c.Prefix + ":delayed" }

// taskKey is the key machinery's result backend stores a task's state
// under: the signature UUID, which we put in our namespace.
func (c *Config) taskKey(id string) string { return c.Prefix + ":task:" + id }

// redisAddr parses a redis:// URL into what machinery's NewGR constructors
// take: "[password@]host:port" and the database index. machinery cannot
// pass a username, TLS or a unix socket, so those are EINVALID.
func redisAddr(rawURL string) (addr string, db int, err error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return "", 0, orcheo.Errorf(orcheo.EINVALID, "redis url: %v", redactErr(err, rawURL))
	}
	if opt.TLSConfig != nil {
		return "", 0, orcheo.Errorf(orcheo.EINVALID, "redis url: rediss:// (TLS) is not supported by the machinery broker")
	}
	if opt.Network != "" && opt.Network != "tcp" {
		return "", 0, orcheo.Errorf(orcheo.EINVALID, "redis url: only tcp addresses are supported")
	}
	if opt.Username != "" && opt.Username != "default" {
		return "", 0, orcheo.Errorf(orcheo.EINVALID, "redis url: a username (ACL) is not supported by the machinery broker")
	}
	addr = opt.Addr
	if opt.Password != "" {
		addr = opt.Password + "@" + addr
	}
	return addr, opt.DB, nil
}

// redactErr removes a password that a parse error may quote.
func redactErr(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
