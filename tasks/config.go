// Package tasks hands runs to workers through machinery v2 on Redis: the
// Queue publishes execute_run tasks and the Worker consumes them, claiming,
// executing and completing runs in batches (claimer.go, completer.go).
//
// Delivery is at-least-once through orcheo's own machinery broker
// (broker.go: processing lists, ack after the commit), and the database,
// not Redis, is the source of truth: a duplicate delivery is skipped by the
// claim, runs of dead workers come back when their lease expires, and lost
// messages are recovered from the runs table by the services of
// tasks/maintenance (the Requeuer in the API, the Rescuer on the leader
// worker, the Reaper in every worker). Redis keys and scripts live in
// tasks/rdb.
package tasks

import (
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/tasks/maintenance"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
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
	PrefixDefault = "orcheo"
	// ConcurrencyDefault: 20 slots on a 2-core host took live 1.6× and drain
	// 1.3× the runs of 10 for about 1 MiB (docs/performance.md).
	ConcurrencyDefault     = 20
	ResultsExpireInDefault = time.Hour
	// LeaseDurationDefault, HeartbeatIntervalDefault and
	// RescueIntervalDefault bound how long a run of a dead worker waits:
	// its lease ends at most LeaseDuration after the last heartbeat, and
	// the rescuer looks every RescueInterval, so it is pending again within
	// 40 s, at the front of its queue, and running soon after (the 60 s
	// promise).
	LeaseDurationDefault     = 30 * time.Second
	HeartbeatIntervalDefault = 10 * time.Second
	RescueIntervalDefault    = maintenance.RescuerIntervalDefault
	// ConsumerTTLDefault is how long a consumer that stopped beating keeps
	// its unacked messages before the reaper returns them to the queue.
	ConsumerTTLDefault = 30 * time.Second
	// ReenqueueAfterDefault is how long a pending run may go without a
	// message in Redis before the rescuer publishes it again.
	ReenqueueAfterDefault = maintenance.RescuerReenqueueAfterDefault
)

// Config configures the Queue and the Worker. Zero fields take the defaults
// above when Validate is called.
type Config struct {
	RedisURL        string        // what rdb.Open takes: redis://, rediss://, unix:// or redis+sentinel://
	Prefix          string        // key namespace, default "orcheo"; queues are "<prefix>:queue:<name>"
	Queues          []string      // queues a worker consumes, default ["default"]
	Concurrency     int           // runs executed at once per worker process, default ConcurrencyDefault
	ResultBackend   string        // "redis" (default) or "none"
	ResultsExpireIn time.Duration // how long machinery keeps task states, default 1h
	LeaseDuration   time.Duration // lease_until = claim or heartbeat time + this, default 30s
	// HeartbeatInterval is how often a worker renews the leases of its runs
	// and its consumers' Redis heartbeats; default 10s. Must be shorter
	// than LeaseDuration and ConsumerTTL.
	HeartbeatInterval time.Duration
	// ConsumerTTL is how long a consumer may go without a heartbeat before
	// the reaper hands its messages to other workers; default 30s.
	ConsumerTTL time.Duration
	// RescueInterval is how often the rescuer (on the leader worker) looks
	// for expired leases and lost messages; default 10s.
	RescueInterval time.Duration
	// ReenqueueAfter is how long a pending run may go without a message
	// before the rescuer publishes it again; default 30s.
	ReenqueueAfter time.Duration
}

// Validate fills in defaults and returns EINVALID for a Redis URL that
// rdb.Open refuses, or a bad prefix, queue name, concurrency, result
// backend or duration.
func (c *Config) Validate() error {
	if c.RedisURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "redis url is required")
	}
	if err := trdb.CheckURL(c.RedisURL); err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "%v", err)
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
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"heartbeat interval", &c.HeartbeatInterval, min(HeartbeatIntervalDefault, c.LeaseDuration/3)},
		{"consumer ttl", &c.ConsumerTTL, ConsumerTTLDefault},
		{"rescue interval", &c.RescueInterval, RescueIntervalDefault},
		{"re-enqueue delay", &c.ReenqueueAfter, ReenqueueAfterDefault},
	} {
		if *d.v < 0 {
			return orcheo.Errorf(orcheo.EINVALID, "%s must not be negative", d.name)
		} else if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.HeartbeatInterval >= c.LeaseDuration || c.HeartbeatInterval >= c.ConsumerTTL {
		return orcheo.Errorf(orcheo.EINVALID, "heartbeat interval (%s) must be shorter than the lease duration (%s) and the consumer ttl (%s)",
			c.HeartbeatInterval, c.LeaseDuration, c.ConsumerTTL)
	}
	return nil
}
