// Package testenv gives tests the real services they run against: a fresh
// PostgreSQL database per test package, the shared Redis, and private
// redis-server processes for tests that kill them.
//
// Tests that need PostgreSQL or the shared Redis read ORCHEO_TEST_DATABASE_URL
// and ORCHEO_TEST_REDIS_URL. When a variable is unset the test is skipped,
// except under CI (CI=true), where it fails: CI must never skip them.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// missing skips or, under CI, fails the test for an absent service.
func missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not set; CI must run the real-service tests", what)
	}
	tb.Skipf("%s is not set; skipping a real-service test (make test sets it)", what)
}

var dbNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// PostgresURL returns the URL of an empty database named
// orcheo_test_<name>_<pid>, created (dropped first if it exists) on the
// server that ORCHEO_TEST_DATABASE_URL points at, and dropped when the test
// ends. Each test package passes its own name, so packages run in parallel
// without sharing tables; the process id keeps two runs of the same package
// (two checkouts, two developers) from dropping each other's database.
func PostgresURL(tb testing.TB, name string) string {
	tb.Helper()
	admin := os.Getenv("ORCHEO_TEST_DATABASE_URL")
	if admin == "" {
		missing(tb, "ORCHEO_TEST_DATABASE_URL")
	}
	if !dbNameRE.MatchString(name) {
		tb.Fatalf("testenv: database name %q must match %s", name, dbNameRE)
	}
	dbName := fmt.Sprintf("orcheo_test_%s_%d", name, os.Getpid())
	if len(dbName) > 63 {
		tb.Fatalf("testenv: database name %q is longer than PostgreSQL's 63 characters", dbName)
	}
	// Identifiers cannot be bound parameters; name is checked against
	// dbNameRE above.
	if err := adminExec(admin, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
		tb.Fatalf("testenv: drop %s: %v", dbName, err)
	}
	if err := adminExec(admin, "CREATE DATABASE "+dbName); err != nil {
		tb.Fatalf("testenv: create %s: %v", dbName, err)
	}
	tb.Cleanup(func() {
		// Processes the test started are stopped by cleanups registered
		// later, which run first; FORCE ends any connection left.
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
			tb.Logf("testenv: drop %s: %v", dbName, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("testenv: parse ORCHEO_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + dbName
	return u.String()
}

// adminExec runs one statement on the admin connection.
func adminExec(admin, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to ORCHEO_TEST_DATABASE_URL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// RedisURL returns ORCHEO_TEST_REDIS_URL, the shared Redis. Tests that use
// it must put their keys under their own prefix.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("ORCHEO_TEST_REDIS_URL")
	if u == "" {
		missing(tb, "ORCHEO_TEST_REDIS_URL")
	}
	return u
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisServer is a private redis-server process, without persistence, that
// a test may kill and restart.
type RedisServer struct {
	Port int
	tb   testing.TB
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server on a free port and stops it when the test
// ends. It fails the test if redis-server is not installed.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	r := &RedisServer{Port: FreePort(tb), tb: tb}
	r.Start()
	tb.Cleanup(r.Kill)
	return r
}

// Addr is host:port of the server.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/0" }

// Start (re)starts the server on its port, empty, and waits until it answers.
func (r *RedisServer) Start() {
	r.tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.tb.Fatalf("testenv: redis-server is not installed (make deps installs it): %v", err)
	}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("testenv: start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
		if err == nil {
			fmt.Fprint(conn, "PING\r\n")
			buf := make([]byte, 7)
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := conn.Read(buf)
			conn.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("testenv: redis-server on %s did not answer", r.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL; its data is gone.
func (r *RedisServer) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
