package metrics

import (
	"context"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// ScrapeTimeoutDefault bounds the database query and the Redis round trips
// of one scrape, so a dead dependency costs a scrape a gap, not a hang.
const ScrapeTimeoutDefault = 2 * time.Second

// QueueStats reads queue depths and live consumers from Redis
// (implemented by tasks.Queue).
type QueueStats interface {
	QueueDepth(ctx context.Context, queue string) (ready, delayed int64, err error)
	ConsumersOnline(ctx context.Context, now time.Time) (int64, error)
}

// StatsConfig configures the scrape-time collector of the API.
type StatsConfig struct {
	Runs   orcheo.RunStatsService // the store (required)
	Queue  QueueStats             // Redis (required)
	Queues []string               // queues whose depth is reported
	// Timeout bounds one scrape's reads; default ScrapeTimeoutDefault.
	Timeout time.Duration
	Logger  logrus.FieldLogger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// statsCollector reads the database and Redis at every scrape, so the
// gauges are never older than the scrape.
type statsCollector struct {
	cfg StatsConfig

	up, pending, running, oldest, messages, consumers *prometheus.Desc
}

// RegisterStats registers the collector of run counts, queue depths and
// consumers online on reg. Only the API registers it: one series per
// deployment, not one per worker.
func RegisterStats(reg prometheus.Registerer, cfg StatsConfig) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = ScrapeTimeoutDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.StandardLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	reg.MustRegister(&statsCollector{
		cfg:       cfg,
		up:        desc("scrape_source_up", "1 if this scrape could read the source (database, redis), else 0.", "source"),
		pending:   desc("runs_pending", "Runs pending, due or waiting for a retry or delay."),
		running:   desc("runs_running", "Runs running."),
		oldest:    desc("oldest_pending_run_age_seconds", "Age of the oldest due pending run, from its not_before or creation; 0 when none is due."),
		messages:  desc("queue_messages", "Messages in a queue in Redis: ready to deliver, or delayed until their ETA.", "queue", "state"),
		consumers: desc("worker_consumers_online", "Worker consumers (one per worker process and queue) whose heartbeat is live."),
	})
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.pending, c.running, c.oldest, c.messages, c.consumers} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	now := c.cfg.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := func(source string, err error) {
		if err != nil {
			c.cfg.Logger.WithError(err).WithFields(logrus.Fields{"component": "metrics", "source": source}).Warn("metrics scrape")
			gauge(c.up, 0, source)
			return
		}
		gauge(c.up, 1, source)
	}

	st, err := c.cfg.Runs.RunStats(ctx, now)
	if err == nil {
		gauge(c.pending, float64(st.Pending))
		gauge(c.running, float64(st.Running))
		age := 0.0
		if st.OldestDue != nil {
			age = max(now.Sub(*st.OldestDue).Seconds(), 0)
		}
		gauge(c.oldest, age)
	}
	up("database", err)

	err = c.collectRedis(ctx, now, gauge)
	up("redis", err)
}

// collectRedis sends nothing unless every read succeeded, so a partial
// outage never shows as an empty queue.
func (c *statsCollector) collectRedis(ctx context.Context, now time.Time, gauge func(*prometheus.Desc, float64, ...string)) error {
	type depth struct{ ready, delayed int64 }
	depths := make([]depth, len(c.cfg.Queues))
	for i, q := range c.cfg.Queues {
		ready, delayed, err := c.cfg.Queue.QueueDepth(ctx, q)
		if err != nil {
			return err
		}
		depths[i] = depth{ready, delayed}
	}
	online, err := c.cfg.Queue.ConsumersOnline(ctx, now)
	if err != nil {
		return err
	}
	for i, q := range c.cfg.Queues {
		gauge(c.messages, float64(depths[i].ready), q, "ready")
		gauge(c.messages, float64(depths[i].delayed), q, "delayed")
	}
	gauge(c.consumers, float64(online))
	return nil
}
