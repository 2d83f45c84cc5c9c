package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo/internal/testenv"
)

// What the daemon Main tests share: a config on a database and a Redis of
// the test's own, and checks that a Close let go of what Run took.

// mainConfig is DefaultConfig on PostgreSQL database name (empty: none)
// and redisURL, listening on free loopback ports and quick to drain.
func mainConfig(t *testing.T, dbName, redisURL string) Config {
	t.Helper()
	cfg := DefaultConfig()
	if dbName != "" {
		cfg.DatabaseURL = testenv.PostgresURL(t, dbName)
	}
	cfg.RedisURL = redisURL
	cfg.RedisPrefix = "orcheo_test_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.APIToken = "main-test-token"
	cfg.Token = cfg.APIToken
	cfg.DrainTimeout = 2 * time.Second
	return cfg
}

// quietLogger keeps the daemon's log and shows it only if the test fails.
func quietLogger(t *testing.T) *logrus.Logger {
	var buf lockedBuffer
	log := logrus.New()
	log.SetOutput(&buf)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", buf.String())
		}
	})
	return log
}

// lockedBuffer is a bytes.Buffer safe for the daemon's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr is a loopback host:port nothing listened on a moment ago.
func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

// getHealth GETs url (a /healthz) and decodes its JSON body into v,
// failing unless it answers 200.
func getHealth(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// assertPortFree fails unless addr can be listened on again.
func assertPortFree(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s still taken after Close: %v", addr, err)
	}
	ln.Close()
}

// eventually polls cond every 20 ms until it holds, failing after 10 s
// with what it last saw.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 10s", what, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertRedisReleased fails unless the private Redis at addr has no
// client left but the one asking.
func assertRedisReleased(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	eventually(t, "Redis clients after Close", func() (bool, string) {
		list, err := c.ClientList(context.Background()).Result()
		if err != nil {
			return false, err.Error()
		}
		n := strings.Count(strings.TrimSpace(list), "\n") + 1
		return n == 1, fmt.Sprintf("%d clients (this one included)", n)
	})
}

// assertPostgresReleased fails unless no backend is connected to the
// database of dbURL.
func assertPostgresReleased(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("ORCHEO_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	eventually(t, "PostgreSQL connections to "+name+" after Close", func() (bool, string) {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d connections", n)
	})
}

// assertClosedTwice checks that a second Close is safe and returns what
// the first did.
func assertClosedTwice(t *testing.T, m daemon) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// listen takes a loopback port until the test ends and returns its
// address, for a daemon to find busy.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
