package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/internal/testenv"
)

// scrapeMetrics GETs url with token (if any) and returns the body; it fails
// the test unless the answer is 200.
func scrapeMetrics(t *testing.T, url, token string) string {
	t.Helper()
	code, body, err := promtext.Get(url, token)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: status %d, error %v: %s", url, code, err, body)
	}
	return body
}

// TestMetrics runs one manual run and scrapes the API and the worker once
// it ended: the API counts the creation, the worker the finish.
func TestMetrics(t *testing.T) {
	workerAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s := startStack(t, "e2e_metrics", "ORCHEO_WORKER_METRICS_ADDR="+workerAddr)
	ctx := context.Background()
	if _, err := s.client.CreateWorkflow(ctx, "metered", "metered", "", []byte(`{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)); err != nil {
		t.Fatal(err)
	}
	started, err := s.client.StartRun(ctx, "metered", []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if run := waitRun(t, s.client, started.ID); run.Status != orcheo.RunSucceeded {
		t.Fatalf("run ended %s: %s", run.Status, run.Error)
	}

	api := scrapeMetrics(t, s.url+"/metrics", s.token)
	for series, want := range map[string]float64{
		`orcheo_runs_created_total{trigger="manual"}`:          1,
		`orcheo_runs_pending`:                                  0,
		`orcheo_scrape_source_up{source="database"}`:           1,
		`orcheo_scrape_source_up{source="redis"}`:              1,
		`orcheo_queue_messages{queue="default",state="ready"}`: 0,
		`orcheo_worker_consumers_online`:                       1,
	} {
		if got, ok := promtext.Value(api, series); !ok || got != want {
			t.Errorf("api %s = %v (present %v), want %v", series, got, ok, want)
		}
	}

	// The worker counts the finish just after storing it, and it may still
	// be opening its port after the API is healthy: poll.
	const finished = `orcheo_runs_finished_total{status="succeeded",trigger="manual"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, worker, _ := promtext.Get("http://"+workerAddr+"/metrics", "")
		if got, _ := promtext.Value(worker, finished); got == 1 {
			if n, ok := promtext.Value(worker, `orcheo_run_attempt_duration_seconds_count{outcome="succeeded"}`); !ok || n != 1 {
				t.Fatalf("attempt duration count = %v (present %v), want 1", n, ok)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s not 1 after 30s:\n%s", finished, worker)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
