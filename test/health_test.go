package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/internal/testenv"
)

// statusBody is a worker's /healthz or /readyz body, or a beat's /readyz.
type statusBody struct {
	Status string            `json:"status"`
	Failed []string          `json:"failed"`
	Checks map[string]string `json:"checks"`
	Leader bool              `json:"leader"`
}

// getStatus GETs a status port's path and decodes its body; code 0 means
// the port did not answer.
func getStatus(base, path string) (int, statusBody) {
	var body statusBody
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		return 0, body
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// waitStatus polls base+path until it answers code with exactly the
// failed checks failed, and returns when that happened.
func waitStatus(t *testing.T, base, path string, code int, failed []string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, body := getStatus(base, path)
		if got == code && slices.Equal(body.Failed, failed) {
			if code == http.StatusOK && body.Status != "ok" || code != http.StatusOK && body.Status == "ok" {
				t.Fatalf("GET %s: %d with status %q", path, got, body.Status)
			}
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %+v after %s, want %d failing %v", path, got, body, timeout, code, failed)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestWorkerHealth drives a real worker's status port through each check
// it reports: its private redis-server stopped (readyz at once, healthz
// after ORCHEO_HEALTH_GRACE), PostgreSQL cut off from its own backends
// (pg_terminate_backend by application_name, new connections refused),
// and draining on SIGTERM with a run in its slot. Before this, the port
// answered 200 through all of it.
func TestWorkerHealth(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s := startFaultStack(t, "e2e_worker_health")
	app := "orcheo-health-worker-" + randomSuffix()
	var dbURL *url.URL
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "ORCHEO_DATABASE_URL="); ok {
			var err error
			if dbURL, err = url.Parse(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := dbURL.Query()
	q.Set("application_name", app)
	dbURL.RawQuery = q.Encode()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + addr
	worker := s.startWorker(1, "ORCHEO_DATABASE_URL="+dbURL.String(), "ORCHEO_WORKER_METRICS_ADDR="+addr,
		"ORCHEO_HEALTH_GRACE="+grace.String())
	waitStatus(t, base, "/healthz", http.StatusOK, nil, 10*time.Second)
	waitStatus(t, base, "/readyz", http.StatusOK, nil, 10*time.Second)

	t.Run("RedisDown", func(t *testing.T) {
		s.redis.Kill()
		killed := time.Now()
		notReady := waitStatus(t, base, "/readyz", http.StatusServiceUnavailable, []string{"redis"}, 5*time.Second)
		if notReady.Sub(killed) < grace/2 {
			// Within the grace the worker is not ready, but healthy.
			waitStatus(t, base, "/healthz", http.StatusOK, nil, time.Second)
		}
		unhealthy := waitStatus(t, base, "/healthz", http.StatusServiceUnavailable, []string{"redis"}, 10*time.Second)
		s.redis.Start()
		// The grace counts from the last success, up to a probe interval
		// (grace/4) before the kill.
		if d := unhealthy.Sub(killed); d < grace/2 {
			t.Errorf("unhealthy %s after Redis stopped, within the %s grace", d, grace)
		}
		waitStatus(t, base, "/healthz", http.StatusOK, nil, 15*time.Second)
		waitStatus(t, base, "/readyz", http.StatusOK, nil, 15*time.Second)
	})

	t.Run("PostgresCut", func(t *testing.T) {
		admin := adminConn(t)
		ctx := context.Background()
		name := dbNameOf(t, s)
		allow := func(ok bool) {
			if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS %t`, name, ok)); err != nil {
				t.Fatal(err)
			}
		}
		allow(false)
		t.Cleanup(func() { allow(true) })
		var cut int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = $2`, app, name).Scan(&cut); err != nil {
			t.Fatal(err)
		}
		if cut == 0 {
			t.Fatalf("no backend of the worker (application_name %s) to cut", app)
		}
		cutAt := time.Now()
		waitStatus(t, base, "/readyz", http.StatusServiceUnavailable, []string{"database"}, 5*time.Second)
		unhealthy := waitStatus(t, base, "/healthz", http.StatusServiceUnavailable, []string{"database"}, 10*time.Second)
		allow(true)
		if d := unhealthy.Sub(cutAt); d < grace/2 {
			t.Errorf("unhealthy %s after the cut, within the %s grace", d, grace)
		}
		waitStatus(t, base, "/healthz", http.StatusOK, nil, 15*time.Second)
		waitStatus(t, base, "/readyz", http.StatusOK, nil, 15*time.Second)
	})

	t.Run("DrainingOnSIGTERM", func(t *testing.T) {
		s.createWorkflow("health-slow", `{"nodes":[{"id":"d","type":"delay","duration":"5s"}]}`)
		ids := s.startRuns("health-slow", 1)
		waitFor(t, 15*time.Second, "the run in the worker's slot", func() bool {
			run, err := s.client.FindRunByID(context.Background(), ids[0])
			return err == nil && run.Status == orcheo.RunRunning
		})
		if err := worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The port answers until the drain (ORCHEO_WORKER_DRAIN_TIMEOUT=2s) ends.
		waitStatus(t, base, "/healthz", http.StatusServiceUnavailable, []string{"draining"}, 2*time.Second)
		waitStatus(t, base, "/readyz", http.StatusServiceUnavailable, []string{"draining"}, time.Second)
	})
}

// TestBeatReady checks a beat's /readyz: 200 with the leadership in the
// body while the API and Redis answer, 503 naming the API once it stops.
func TestBeatReady(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "e2e_beat_ready")
	_, base := startBeat(t, append(append([]string{}, s.env...), "ORCHEO_URL="+s.url))
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := getStatus(base, "/readyz")
		if code == http.StatusOK && body.Leader && body.Checks["api"] == "ok" && body.Checks["redis"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beat /readyz: %d %+v, want 200 and the leader", code, body)
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.api.stop(t, 20*time.Second)
	code, body := getStatus(base, "/readyz")
	if code != http.StatusServiceUnavailable || body.Status != "unavailable" || !strings.HasPrefix(body.Checks["api"], "error") || body.Checks["redis"] != "ok" {
		t.Fatalf("beat /readyz with the API stopped: %d %+v", code, body)
	}
}

// TestWorkerMetricValues checks the values of the metrics a run moves:
// three webhook runs give a pickup latency and a run duration histogram
// of count 3 and a positive sum on the worker; two badly signed webhooks
// and one for an unknown workflow count as refusals of their reason on
// the API.
func TestWorkerMetricValues(t *testing.T) {
	t.Parallel()
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	s := startFaultStackEnv(t, "e2e_metric_values", "ORCHEO_SECRETS_KEY="+key)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s.startWorker(2, "ORCHEO_WORKER_METRICS_ADDR="+addr)
	ctx := context.Background()
	s.createWorkflow("metered-hook", `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)
	if _, err := s.client.SetWebhookConfig(ctx, "metered-hook", &orcheo.WebhookConfig{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	s.createWorkflow("signed-hook", `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)
	if _, err := s.client.SetWebhookConfig(ctx, "signed-hook", &orcheo.WebhookConfig{Enabled: true,
		Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, Secret: "metric-values-secret"}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		code, body, _ := webhookPost(t, s.url, "metered-hook", fmt.Sprintf(`{"i":%d}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("webhook %d: %d %s", i, code, body)
		}
		var run orcheo.Run
		if err := json.Unmarshal([]byte(body), &run); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	for _, id := range ids {
		if run := waitRun(t, s.client, id); run.Status != orcheo.RunSucceeded {
			t.Fatalf("run %s ended %s: %s", id, run.Status, run.Error)
		}
	}
	for i := range 2 {
		sig := "sha256=" + hmacHex("not-the-secret", "{}")
		if code, body, _ := webhookPost(t, s.url, "signed-hook", "{}", "X-Hub-Signature-256", sig, "X-GitHub-Delivery", fmt.Sprint("bad-", i)); code != http.StatusUnauthorized {
			t.Fatalf("badly signed webhook: %d %s", code, body)
		}
	}
	if code, _, _ := webhookPost(t, s.url, "no-such-hook", "{}"); code != http.StatusNotFound {
		t.Fatalf("webhook of an unknown workflow: %d", code)
	}

	api := scrapeMetrics(t, s.url+"/metrics", s.client.Token)
	for series, want := range map[string]float64{
		`orcheo_webhook_refused_total{reason="verify"}`:    2,
		`orcheo_webhook_refused_total{reason="not_found"}`: 1,
		`orcheo_webhook_refused_total{reason="replay"}`:    0,
		`orcheo_runs_created_total{trigger="webhook"}`:     3,
	} {
		if got, ok := promtext.Value(api, series); !ok || got != want {
			t.Errorf("api %s = %v (present %v), want %v", series, got, ok, want)
		}
	}

	// The worker observes a run's duration just after its commit: poll.
	const count = `orcheo_run_duration_seconds_count{status="succeeded",trigger="webhook"}`
	var worker string
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, worker, _ = promtext.Get("http://"+addr+"/metrics", "")
		if got, _ := promtext.Value(worker, count); got == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s not 3 after 15s:\n%s", count, worker)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`orcheo_run_pickup_latency_seconds_count`:                                3,
		`orcheo_run_duration_seconds_count{status="failed",trigger="webhook"}`:   0,
		`orcheo_run_duration_seconds_count{status="succeeded",trigger="manual"}`: 0,
		`orcheo_runs_finished_total{status="succeeded",trigger="webhook"}`:       3,
		`orcheo_run_attempt_duration_seconds_count{outcome="succeeded"}`:         3,
	} {
		if got, ok := promtext.Value(worker, series); !ok || got != want {
			t.Errorf("worker %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, sum := range []string{`orcheo_run_pickup_latency_seconds_sum`, `orcheo_run_duration_seconds_sum{status="succeeded",trigger="webhook"}`} {
		if got, ok := promtext.Value(worker, sum); !ok || got <= 0 || got > 60 {
			t.Errorf("worker %s = %v (present %v), want a positive number of seconds under a minute", sum, got, ok)
		}
	}
}
