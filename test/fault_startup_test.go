package test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// quickWork ends at once.
const quickWork = `
nodes:
  - id: done
    type: set
    values:
      ok: 'true'
`

// startWaitingWorker starts a worker and waits until it has logged
// "waiting for <what>" twice: it is up, retrying, not exiting.
func (s *faultStack) startWaitingWorker(what string, env ...string) *process {
	s.t.Helper()
	env = append(append(append([]string{}, s.env...), env...), "ORCHEO_LOG_LEVEL=info")
	p := startProcess(s.t, env, "worker", "--concurrency", "2")
	waitFor(s.t, 20*time.Second, "the worker to wait for "+what+" (two tries)", func() bool {
		return strings.Count(p.out.String(), "waiting for "+what) >= 2 || p.exited()
	})
	if p.exited() {
		s.t.Fatalf("worker exited instead of waiting for %s:\n%s", what, p.out.String())
	}
	return p
}

// waitConsumingAndRun waits until p consumes, then checks that a run
// succeeds.
func (s *faultStack) waitConsumingAndRun(p *process) {
	s.t.Helper()
	waitFor(s.t, 20*time.Second, "the worker to consume", func() bool {
		return strings.Contains(p.out.String(), "worker consuming") || p.exited()
	})
	if p.exited() {
		s.t.Fatalf("worker exited:\n%s", p.out.String())
	}
	s.createWorkflow("quick", quickWork)
	s.startRuns("quick", 1)
	if c := s.waitTerminal(1, 30*time.Second); c[orcheo.RunSucceeded] != 1 {
		s.t.Fatalf("counts %v, want 1 succeeded", c)
	}
}

// TestFaultWorkerWaitsForRedis: a worker started while Redis is down waits,
// logging each try, and begins work once Redis is up (issue #10: it exited
// with "start worker: ping redis: … connection refused").
func TestFaultWorkerWaitsForRedis(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "fault_wait_redis")
	s.redis.Kill()
	p := s.startWaitingWorker("redis")
	s.redis.Start()
	s.waitConsumingAndRun(p)
}

// TestFaultWorkerWaitsForDatabase: the same with PostgreSQL. The worker's
// database URL points at a port where nothing listens at first; then a
// forwarder to the real server opens there.
func TestFaultWorkerWaitsForDatabase(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "fault_wait_db")
	var dbURL string
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "ORCHEO_DATABASE_URL="); ok {
			dbURL = v
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	port := testenv.FreePort(t)
	u.Host = fmt.Sprintf("127.0.0.1:%d", port)
	p := s.startWaitingWorker("the database", "ORCHEO_DATABASE_URL="+u.String())
	forward(t, u.Host, target)
	s.waitConsumingAndRun(p)
}

// forward accepts connections on addr and copies each to and from target
// until the test ends.
func forward(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
}

// TestFaultWorkerSIGTERMWhileWaiting: a worker waiting at start for Redis
// or its database exits at once, and cleanly, on SIGTERM.
func TestFaultWorkerSIGTERMWhileWaiting(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "fault_wait_term")
	nothing := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	for _, tc := range []struct{ name, what, env string }{
		{"Redis", "redis", "REDIS_URL=redis://" + nothing + "/0"},
		{"Database", "the database", "ORCHEO_DATABASE_URL=postgres://orcheo@" + nothing + "/orcheo?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := s.startWaitingWorker(tc.what, tc.env)
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			sent := time.Now()
			select {
			case <-p.done:
			case <-time.After(3 * time.Second):
				t.Fatalf("worker still running 3 s after SIGTERM:\n%s", p.out.String())
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("worker exited %d, want 0:\n%s", code, p.out.String())
			}
			t.Logf("exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
		})
	}
}
