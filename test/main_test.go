// Package test holds the end-to-end tests: they build the real orcheo
// binary, start it as processes (api, worker, dev) against the real
// PostgreSQL and Redis, and drive them over HTTP and through the CLI.
package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the orcheo binary built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orcheo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "orcheo")
	build := exec.Command("go", "build", "-o", binary, "../cmd/orcheo")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build orcheo:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output; safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a running orcheo process.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProcess starts orcheo with args and environment env (added to a
// minimal base). At cleanup it sends SIGTERM, waits, and logs the output of
// a failed test.
func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: strings.Join(args, " "), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start orcheo %s: %v", p.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t, 20*time.Second)
		if t.Failed() {
			t.Logf("output of orcheo %s:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits up to grace before SIGKILL.
func (p *process) stop(t *testing.T, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		t.Errorf("orcheo %s did not stop within %s of SIGTERM", p.name, grace)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cli runs one orcheo CLI command to completion and returns its output and
// exit code.
func cli(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(baseEnv(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("orcheo %s: %v", strings.Join(args, " "), err)
		}
		code = exitErr.ExitCode()
	}
	return string(out), code
}

// baseEnv is the environment every process gets: enough to run, nothing of
// the developer's orcheo settings. The fault and cancel tests keep a run
// mid-node with a 60 s delay, which must stay in its worker slot, so delays
// do not suspend here; tasks/suspend_test.go covers suspension.
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "ORCHEO_LOG_FORMAT=text",
		"ORCHEO_DELAY_SUSPEND_AFTER=10m"}
	return env
}

// waitHealthy polls url/healthz until it answers 200 or p exits.
func waitHealthy(t *testing.T, p *process, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("orcheo %s exited before it was healthy:\n%s", p.name, p.out.String())
		}
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("orcheo %s did not become healthy at %s:\n%s", p.name, url, p.out.String())
}

// randomSuffix makes names unique across tests and runs.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
