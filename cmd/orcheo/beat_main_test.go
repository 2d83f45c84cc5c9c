package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestBeatMain runs the beat on a private redis-server: it leads, answers
// its health port, and Close stops it before resigning the lease, then
// gives back the port and the Redis client, once or twice, and after a Run
// that failed.
func TestBeatMain(t *testing.T) {
	t.Parallel()
	t.Run("RunThenClose", func(t *testing.T) {
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "", rs.URL())
		cfg.URL = "http://" + freeAddr(t) // no API: its dispatches fail and are retried
		cfg.Cron.HealthAddr = freeAddr(t)
		m := &beatMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		check := redis.NewClient(&redis.Options{Addr: rs.Addr()})
		defer check.Close()
		lease := cfg.RedisPrefix + ":leader:beat"
		eventually(t, "the beat to lead", func() (bool, string) {
			var st beat.Status
			getHealth(t, "http://"+cfg.Cron.HealthAddr+"/healthz", &st)
			return st.Active, fmt.Sprintf("healthz %+v", st)
		})
		if holder, err := check.Get(context.Background(), lease).Result(); err != nil || holder != m.elector.Config().Holder {
			t.Fatalf("%s = %q, %v; want this beat's holder", lease, holder, err)
		}
		assertClosedTwice(t, m)
		if n, err := check.Exists(context.Background(), lease).Result(); err != nil || n != 0 {
			t.Fatalf("%s after Close: exists %d, %v; want resigned", lease, n, err)
		}
		assertPortFree(t, cfg.Cron.HealthAddr)
		check.Close()
		assertRedisReleased(t, rs.Addr())
	})
	t.Run("CloseAfterBadRedisURL", func(t *testing.T) {
		t.Parallel()
		cfg := mainConfig(t, "", "memcached://127.0.0.1:11211")
		m := &beatMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("Run on a memcached:// Redis URL succeeded")
		}
		assertClosedTwice(t, m)
	})
	t.Run("CloseAfterBusyHealthPort", func(t *testing.T) {
		// The Redis client and the elector exist, unstarted, when the
		// health port is found taken.
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "", rs.URL())
		cfg.Cron.HealthAddr = listen(t)
		m := &beatMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("Run on a taken health port succeeded")
		}
		if m.elector == nil {
			t.Fatal("Run failed before building the elector: the test checks nothing")
		}
		assertClosedTwice(t, m)
		if err := m.redis.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("Redis client after Close: Ping = %v, want redis.ErrClosed", err)
		}
	})
}
