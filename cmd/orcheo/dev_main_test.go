package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDevMain runs orcheo dev on its embedded defaults (SQLite in a data
// directory, an in-process Redis): the API answers with the examples
// installed, and Close stops the three Mains and the in-process Redis and
// gives back the port, once or twice, and after a Run that failed.
func TestDevMain(t *testing.T) {
	t.Parallel()
	t.Run("RunThenClose", func(t *testing.T) {
		t.Parallel()
		cfg := mainConfig(t, "", "")
		cfg.DataDir = t.TempDir()
		m := &devMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err != nil {
			m.Close()
			t.Fatal(err)
		}
		if m.dbPath != filepath.Join(cfg.DataDir, "orcheo.db") {
			t.Fatalf("database %q, want orcheo.db in the data directory", m.dbPath)
		}
		var health map[string]any
		getHealth(t, m.api.server.URL()+"/healthz", &health)
		var ready map[string]any
		getHealth(t, m.api.server.URL()+"/readyz", &ready) // SQLite and the in-process Redis answer
		if _, err := m.api.store.Workflows.FindWorkflowByRef(context.Background(), "hello"); err != nil {
			t.Fatalf("example hello: %v", err)
		}
		if m.worker.store != m.api.store || m.worker.redis != m.api.redis || m.worker.submitter != m.api.submitter {
			t.Fatal("dev's worker does not share its API's store, Redis client and submitter")
		}
		// Its consumers block on the shared client: the pool has room.
		if c, ok := m.api.redis.(*redis.Client); !ok || c.Options().PoolSize != 10*runtime.GOMAXPROCS(0)+len(cfg.Queues) {
			t.Fatalf("the shared Redis client (%T) has no pooled connection per consumer", m.api.redis)
		}
		addr, redisAddr := m.api.server.URL()[len("http://"):], m.redis.Addr()
		assertClosedTwice(t, m)
		assertPortFree(t, addr)
		if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err == nil {
			c.Close()
			t.Fatalf("the in-process Redis at %s still listens after Close", redisAddr)
		}
		if err := m.api.store.Ping(context.Background()); err == nil {
			t.Fatal("store after Close: Ping succeeded")
		}
	})
	t.Run("CloseAfterBadDataDir", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := mainConfig(t, "", "")
		cfg.DataDir = filepath.Join(file, "data") // under a file: cannot be made
		m := &devMain{cfg: cfg, log: quietLogger(t)}
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("Run with a data directory under a file succeeded")
		}
		assertClosedTwice(t, m)
	})
	t.Run("CloseAfterBusyPort", func(t *testing.T) {
		// The in-process Redis and the store are open when the API's
		// port is found taken: Close closes them.
		t.Parallel()
		cfg := mainConfig(t, "", "")
		cfg.DataDir = t.TempDir()
		cfg.HTTPAddr = listen(t)
		m := &devMain{cfg: cfg, log: quietLogger(t)}
		err := m.Run(context.Background())
		if err == nil {
			t.Fatal("Run on a taken port succeeded")
		}
		if m.api == nil || m.api.store == nil {
			t.Fatalf("Run failed before opening the store (%v): the test checks nothing", err)
		}
		redisAddr := m.redis.Addr()
		assertClosedTwice(t, m)
		if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err == nil {
			c.Close()
			t.Fatalf("the in-process Redis at %s still listens after Close", redisAddr)
		}
		if err := m.api.store.Ping(context.Background()); err == nil {
			t.Fatal("store after Close: Ping succeeded")
		}
	})
}
