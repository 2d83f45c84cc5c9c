package main

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestAPIMain runs the API on the real PostgreSQL and a private
// redis-server: it serves, and Close gives back its port and every
// connection, once or twice, and after a Run that failed half way.
func TestAPIMain(t *testing.T) {
	t.Parallel()
	t.Run("RunThenClose", func(t *testing.T) {
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "cmd_api_main", rs.URL())
		a := &apiMain{cfg: cfg, log: quietLogger(t)}
		if err := a.Run(context.Background()); err != nil {
			a.Close()
			t.Fatal(err)
		}
		var health map[string]any
		getHealth(t, a.server.URL()+"/healthz", &health)
		var ready map[string]any
		getHealth(t, a.server.URL()+"/readyz", &ready) // the database and Redis answer
		addr := a.server.URL()[len("http://"):]
		assertClosedTwice(t, a)
		assertPortFree(t, addr)
		assertRedisReleased(t, rs.Addr())
		assertPostgresReleased(t, cfg.DatabaseURL)
		if err := a.redis.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("Redis client after Close: Ping = %v, want redis.ErrClosed", err)
		}
	})
	t.Run("CloseAfterBadDatabaseURL", func(t *testing.T) {
		t.Parallel()
		cfg := mainConfig(t, "", "redis://"+freeAddr(t)+"/0")
		cfg.DatabaseURL = "mysql://orcheo@127.0.0.1/orcheo"
		a := &apiMain{cfg: cfg, log: quietLogger(t)}
		if err := a.Run(context.Background()); err == nil {
			t.Fatal("Run on a mysql:// URL succeeded")
		}
		assertClosedTwice(t, a)
	})
	t.Run("CloseAfterBadRedisURL", func(t *testing.T) {
		// The store is open when Redis's URL is refused: Close closes it.
		t.Parallel()
		cfg := mainConfig(t, "cmd_api_main_bad_redis", "memcached://127.0.0.1:11211")
		a := &apiMain{cfg: cfg, log: quietLogger(t)}
		if err := a.Run(context.Background()); err == nil {
			t.Fatal("Run on a memcached:// Redis URL succeeded")
		}
		if a.store == nil {
			t.Fatal("Run failed before opening the store: the test checks nothing")
		}
		assertClosedTwice(t, a)
		assertPostgresReleased(t, cfg.DatabaseURL)
	})
	t.Run("CloseAfterBusyPort", func(t *testing.T) {
		// Everything but the server is open when its port is taken.
		t.Parallel()
		rs := testenv.StartRedis(t)
		cfg := mainConfig(t, "cmd_api_main_busy", rs.URL())
		busy := &apiMain{cfg: cfg, log: quietLogger(t)}
		if err := busy.Run(context.Background()); err != nil {
			busy.Close()
			t.Fatal(err)
		}
		defer busy.Close()
		cfg.HTTPAddr = busy.server.URL()[len("http://"):]
		a := &apiMain{cfg: cfg, log: quietLogger(t)}
		if err := a.Run(context.Background()); err == nil {
			t.Fatal("a second API on the same port started")
		}
		assertClosedTwice(t, a)
		if err := a.redis.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("Redis client after Close: Ping = %v, want redis.ErrClosed", err)
		}
		if err := a.store.Ping(context.Background()); err == nil {
			t.Fatal("store after Close: Ping succeeded")
		}
	})
}
