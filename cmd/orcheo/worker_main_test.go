package main

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestWorkerMain runs the worker on the real PostgreSQL and a private
// redis-server: it answers its health port, and Close gives back the port
// and every connection, once or twice, and after a Run that failed.
func TestWorkerMain(t *testing.T) {
	t.Parallel()
	t.Run("RunThenClose", func(t *testing.T) {
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "cmd_worker_main", rs.URL())
		cfg.WorkerMetricsAddr = freeAddr(t)
		m := &workerMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		var health struct {
			Status   string `json:"status"`
			WorkerID string `json:"worker_id"`
		}
		getHealth(t, "http://"+cfg.WorkerMetricsAddr+"/healthz", &health)
		if health.Status != "ok" || health.WorkerID != m.worker.ID {
			t.Fatalf("healthz = %v, want ok and worker_id %s", health, m.worker.ID)
		}
		assertClosedTwice(t, m)
		assertPortFree(t, cfg.WorkerMetricsAddr)
		assertRedisReleased(t, rs.Addr())
		assertPostgresReleased(t, cfg.DatabaseURL)
	})
	t.Run("CloseAfterBadDatabaseURL", func(t *testing.T) {
		// A bad URL is a mistake, not an outage: Run fails at once.
		t.Parallel()
		cfg := mainConfig(t, "", "redis://"+freeAddr(t)+"/0")
		cfg.DatabaseURL = "mysql://orcheo@127.0.0.1/orcheo"
		m := &workerMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err == nil || isOutage(err) {
			t.Fatalf("Run on a mysql:// URL = %v, want a configuration error", err)
		}
		assertClosedTwice(t, m)
	})
	t.Run("CloseAfterSignalWhileWaitingForRedis", func(t *testing.T) {
		// The store is open and the worker waits for Redis when the
		// signal comes: Run returns ctx's error and Close closes the store.
		t.Parallel()
		cfg := mainConfig(t, "cmd_worker_main_wait", "redis://"+freeAddr(t)+"/0")
		log := quietLogger(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log.AddHook(onMessage{"waiting for redis", cancel}) // the signal
		m := &workerMain{cfg: cfg, log: log}
		if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		if m.store == nil || m.worker != nil {
			t.Fatal("Run did not stop while waiting for Redis: the test checks nothing")
		}
		assertClosedTwice(t, m)
		assertPostgresReleased(t, cfg.DatabaseURL)
		if err := m.redis.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("Redis client after Close: Ping = %v, want redis.ErrClosed", err)
		}
	})
	t.Run("CloseAfterBusyHealthPort", func(t *testing.T) {
		// The worker consumes when its health port is found taken: Close
		// stops it and gives back the rest.
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "cmd_worker_main_busy", rs.URL())
		ln := listen(t)
		cfg.WorkerMetricsAddr = ln
		m := &workerMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("Run on a taken health port succeeded")
		}
		if m.worker == nil {
			t.Fatal("Run failed before starting the worker: the test checks nothing")
		}
		assertClosedTwice(t, m)
		assertRedisReleased(t, rs.Addr())
		assertPostgresReleased(t, cfg.DatabaseURL)
	})
}

// onMessage is a log hook that calls fn when msg is logged.
type onMessage struct {
	msg string
	fn  func()
}

func (h onMessage) Levels() []logrus.Level { return logrus.AllLevels }

func (h onMessage) Fire(e *logrus.Entry) error {
	if e.Message == h.msg {
		h.fn()
	}
	return nil
}
