package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/testenv"
)

// inFlightWorkflow holds its worker slot for 6 s (delays shorter than
// ORCHEO_DELAY_SUSPEND_AFTER, 10m here, do not suspend).
const inFlightWorkflow = `
nodes:
  - id: wait
    type: delay
    duration: 6s
  - id: done
    type: set
    values:
      ok: 'true'
`

// parkedWorkflow suspends at once: a one-hour delay is longer than
// ORCHEO_DELAY_SUSPEND_AFTER, which this test sets to 1m.
const parkedWorkflow = `
nodes:
  - id: wait
    type: delay
    duration: 1h
`

// retriedWorkflow fails transiently (%s answers 503), and its second
// attempt is due 10 to 20 minutes later (equal jitter).
const retriedWorkflow = `
retry:
  max_attempts: 3
  backoff: 20m
  max_backoff: 20m
nodes:
  - id: check
    type: http
    url: '%s'
`

// workerRegistryEnv is the environment of an api and workers of their own
// (database e2e_NAME, a Redis prefix of their own) whose registry, leases
// and consumers notice changes within a second, for the inspect and control
// tests; extra comes last, so it wins. It returns the API's URL and token.
func workerRegistryEnv(t *testing.T, name string, extra ...string) (env []string, url, token string) {
	t.Helper()
	port := testenv.FreePort(t)
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	token = "e2e-" + randomSuffix()
	env = []string{
		"ORCHEO_DATABASE_URL=" + testenv.PostgresURL(t, "e2e_"+name),
		"REDIS_URL=" + testenv.RedisURL(t),
		"ORCHEO_REDIS_PREFIX=orcheo-e2e-" + name + "-" + randomSuffix(),
		"ORCHEO_API_TOKEN=" + token,
		fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port),
		"ORCHEO_URL=" + url,
		"ORCHEO_TOKEN=" + token,
		"ORCHEO_HEARTBEAT_INTERVAL=200ms",
		"ORCHEO_LEASE_DURATION=10s",
		"ORCHEO_CONSUMER_TTL=3s",
	}
	return append(env, extra...), url, token
}

// TestInspectAndControl starts an api and two real worker processes with a
// known state (alpha holds a run in flight on queue "slow"; beta, on
// "default", has failed an attempt now delayed for a retry, and suspended
// a run) and checks the exact rows of orcheo workers, inspect active,
// reserved, scheduled and stats (--json); then control shutdown alpha
// drains it: its run completes, it leaves the registry and exits 0, and
// beta keeps executing.
func TestInspectAndControl(t *testing.T) {
	env, url, token := workerRegistryEnv(t, "inspect",
		"ORCHEO_DELAY_SUSPEND_AFTER=1m",  // after baseEnv's 10m, so it wins
		"ORCHEO_HTTP_ALLOW_PRIVATE=true", // the 503 below is on loopback
	)
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "try later", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, env, "api")
	waitHealthy(t, api, url)
	// Short and long forms of the worker's flags.
	alpha := startProcess(t, env, "worker", "-c", "2", "-Q", "slow", "-n", "alpha@%h", "--loglevel", "debug")
	beta := startProcess(t, env, "worker", "--concurrency", "3", "--queues", "default", "--name", "beta")
	c := client.New(url, token)
	ctx := context.Background()
	host, _ := os.Hostname()
	alphaName := "alpha@" + host

	runCLI := func(args ...string) string {
		t.Helper()
		out, code := cli(t, env, args...)
		if code != 0 {
			t.Fatalf("orcheo %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	create := func(handle, def, queue string) *orcheo.Workflow {
		t.Helper()
		runCLI("workflows", "create", "-f", writeFile(t, handle+".yaml", def), "--handle", handle, "--queue", queue)
		wf, err := c.FindWorkflowByRef(ctx, handle)
		if err != nil {
			t.Fatal(err)
		}
		return wf
	}
	slowWF := create("slow", inFlightWorkflow, "slow")
	parkedWF := create("parked", parkedWorkflow, "default")
	retriedWF := create("retried", fmt.Sprintf(retriedWorkflow, unavailable.URL), "default")

	start := func(wf *orcheo.Workflow) *orcheo.Run {
		t.Helper()
		run, err := c.StartRun(ctx, wf.ID, json.RawMessage(`{}`), "")
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	parked, retried := start(parkedWF), start(retriedWF)
	waitFor(t, 30*time.Second, "the suspension and the retry", func() bool {
		p, err1 := c.FindRunByID(ctx, parked.ID)
		r, err2 := c.FindRunByID(ctx, retried.ID)
		return err1 == nil && err2 == nil && p.Status == orcheo.RunPending && p.NotBefore != nil && p.ReleasedAttempts == 1 &&
			r.Status == orcheo.RunPending && r.NotBefore != nil && r.Attempt == 1 && r.Error != ""
	})
	parked, _ = c.FindRunByID(ctx, parked.ID)
	retried, _ = c.FindRunByID(ctx, retried.ID)
	slow := start(slowWF)

	// Both workers online, alpha holding the slow run, beta's stats counted.
	var workers []*orcheo.WorkerInfo
	waitFor(t, 30*time.Second, "both workers with their state", func() bool {
		out, code := cli(t, env, "workers", "--json")
		workers = nil
		if code != 0 || json.Unmarshal([]byte(out), &workers) != nil || len(workers) != 2 {
			return false
		}
		return len(workers[0].Active) == 1 && workers[1].Stats.Processed == 1
	})
	a, b := workers[0], workers[1]
	checkWorker(t, a, alphaName, alpha.cmd.Process.Pid, host, []string{"slow"}, 2)
	checkWorker(t, b, "beta", beta.cmd.Process.Pid, host, []string{"default"}, 3)
	if got := a.Active[0]; got.RunID != slow.ID || got.WorkflowID != slowWF.ID || got.Queue != "slow" || got.Attempt != 1 {
		t.Fatalf("alpha's active run = %+v, want %s of %s on slow, attempt 1", got, slow.ID, slowWF.ID)
	}
	if len(b.Active) != 0 || len(a.Reserved) != 0 || len(b.Reserved) != 0 {
		t.Fatalf("beta active %+v, reserved %+v / %+v: want none", b.Active, a.Reserved, b.Reserved)
	}
	// inspect ping is orcheo workers.
	var pinged []*orcheo.WorkerInfo
	mustJSON(t, runCLI("inspect", "ping", "--json"), &pinged)
	if len(pinged) != 2 || pinged[0].Name != alphaName || pinged[1].Name != "beta" {
		t.Fatalf("inspect ping = %+v", pinged)
	}

	var active []map[string]any
	mustJSON(t, runCLI("inspect", "active", "--json"), &active)
	if len(active) != 1 {
		t.Fatalf("inspect active = %v, want one row", active)
	}
	since, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(active[0]["since"]))
	delete(active[0], "since")
	wantActive := map[string]any{"worker": alphaName, "run_id": slow.ID, "workflow_id": slowWF.ID, "queue": "slow", "attempt": 1.0}
	if !reflect.DeepEqual(active[0], wantActive) || time.Since(since) > time.Minute || since.Before(slow.CreatedAt.Add(-time.Second)) {
		t.Fatalf("inspect active row = %v since %v, want %v", active[0], since, wantActive)
	}
	if out := strings.TrimSpace(runCLI("inspect", "reserved", "--json")); out != "[]" {
		t.Fatalf("inspect reserved = %s, want []", out)
	}

	var scheduled []*orcheo.ScheduledRun
	mustJSON(t, runCLI("inspect", "scheduled", "--json"), &scheduled)
	want := []*orcheo.ScheduledRun{
		{RunID: retried.ID, WorkflowID: retriedWF.ID, Queue: "default", Kind: orcheo.ScheduledRetry, Attempt: 1, DueAt: retried.NotBefore.UTC()},
		{RunID: parked.ID, WorkflowID: parkedWF.ID, Queue: "default", Kind: orcheo.ScheduledSuspended, Attempt: 1, DueAt: parked.NotBefore.UTC()},
	}
	if len(scheduled) != 2 {
		t.Fatalf("inspect scheduled = %s, want 2 rows", jsonText(scheduled))
	}
	for i := range want {
		got := *scheduled[i]
		if !got.DueAt.Equal(want[i].DueAt) {
			t.Fatalf("scheduled row %d due %v, want %v", i, got.DueAt, want[i].DueAt)
		}
		got.DueAt = want[i].DueAt
		if !reflect.DeepEqual(&got, want[i]) {
			t.Fatalf("scheduled row %d = %s, want %s", i, jsonText(got), jsonText(want[i]))
		}
	}

	var stats []map[string]any
	mustJSON(t, runCLI("inspect", "stats", "--json"), &stats)
	if len(stats) != 2 {
		t.Fatalf("inspect stats = %v", stats)
	}
	for i, w := range []map[string]any{
		{"worker": alphaName, "processed": 0.0, "failed": 0.0, "retried": 0.0, "pool": 2.0},
		{"worker": "beta", "processed": 1.0, "failed": 1.0, "retried": 1.0, "pool": 3.0},
	} {
		if up, ok := stats[i]["uptime_seconds"].(float64); !ok || up < 0 || up > 120 {
			t.Fatalf("stats row %d uptime = %v", i, stats[i]["uptime_seconds"])
		}
		delete(stats[i], "uptime_seconds")
		delete(stats[i], "started_at")
		if !reflect.DeepEqual(stats[i], w) {
			t.Fatalf("stats row %d = %v, want %v", i, stats[i], w)
		}
	}
	// The tables name the same things.
	if out := runCLI("workers"); !strings.Contains(out, alphaName) || !strings.Contains(out, "beta") || !strings.Contains(out, "LAST HEARTBEAT") {
		t.Fatalf("orcheo workers table:\n%s", out)
	}
	if out := runCLI("inspect", "active"); !strings.Contains(out, slow.ID) {
		t.Fatalf("orcheo inspect active table:\n%s", out)
	}

	// A worker not online: nothing is told.
	if out, code := cli(t, env, "control", "shutdown", "nobody"); code != 1 || !strings.Contains(out, `no worker named "nobody" is online`) {
		t.Fatalf("control shutdown nobody: exit %d: %s", code, out)
	}
	// Drain alpha as SIGTERM would: its run finishes, then it exits 0.
	if out := runCLI("control", "shutdown", alphaName); strings.TrimSpace(out) != "shutdown requested: "+alphaName {
		t.Fatalf("control shutdown: %q", out)
	}
	select {
	case <-alpha.done:
	case <-time.After(30 * time.Second):
		t.Fatal("alpha did not exit within 30 s of control shutdown")
	}
	if code := alpha.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("alpha exited %d after control shutdown, want 0", code)
	}
	if run := waitRun(t, c, slow.ID); run.Status != orcheo.RunSucceeded || run.Attempt != 1 {
		t.Fatalf("alpha's run after the drain: %s at attempt %d, want succeeded at 1 (finished, not handed back)", run.Status, run.Attempt)
	}
	if !strings.Contains(alpha.out.String(), "shutdown requested by an operator") {
		t.Fatalf("alpha's log does not say why it stopped:\n%s", alpha.out.String())
	}
	ws, err := c.Workers(ctx)
	if err != nil || len(ws) != 1 || ws[0].Name != "beta" || ws[0].State != orcheo.WorkerOnline {
		t.Fatalf("after the drain: workers %s, err %v; want beta alone, online", jsonText(ws), err)
	}
	// beta keeps going.
	greet := create("greet", greetWorkflow, "default")
	run, err := c.StartRun(ctx, greet.ID, json.RawMessage(`{"body":{"name":"ops"}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if run = waitRun(t, c, run.ID); run.Status != orcheo.RunSucceeded || run.WorkerID != ws[0].ID {
		t.Fatalf("a run after the drain: %s by %q, want succeeded by beta (%s)", run.Status, run.WorkerID, ws[0].ID)
	}
	if beta.exited() {
		t.Fatal("beta exited")
	}
}

// checkWorker checks a worker's record from orcheo workers --json.
func checkWorker(t *testing.T, w *orcheo.WorkerInfo, name string, pid int, host string, queues []string, concurrency int) {
	t.Helper()
	if w.Name != name || w.PID != pid || w.Host != host || !reflect.DeepEqual(w.Queues, queues) ||
		w.Concurrency != concurrency || w.Stats.Pool != concurrency || w.State != orcheo.WorkerOnline || w.ID == "" {
		t.Fatalf("worker = %s, want %s pid %d on %s, queues %v, concurrency %d, online", jsonText(w), name, pid, host, queues, concurrency)
	}
	if age := time.Since(w.LastHeartbeat); age < -time.Second || age > 3*time.Second {
		t.Fatalf("%s's last heartbeat is %v old", name, age)
	}
	if w.StartedAt.After(w.LastHeartbeat) || time.Since(w.StartedAt) > 2*time.Minute {
		t.Fatalf("%s started %v, last heartbeat %v", name, w.StartedAt, w.LastHeartbeat)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
