package tasks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/metrics"
)

// TestWorker_Metrics runs one run that succeeds and one that fails on a
// real redis-server and checks what the worker's metrics and the queue's
// Redis reads report.
func TestWorker_Metrics(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL())
	reg := metrics.NewRegistry()
	f.worker.Observer = metrics.NewRuns(reg)
	handler := metrics.Handler(reg, testLogger())
	scrape := func() string {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	ctx := context.Background()

	// Before the worker starts: one ready message, one delayed, no consumer.
	ok := f.createRun(t, okDefinition, `{"n":1}`)
	failed := f.createRun(t, failDefinition, `{"n":1}`)
	if err := f.queue.EnqueueRun(ctx, ok); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := f.queue.EnqueueRun(ctx, &orcheo.Run{ID: failed.ID, Queue: failed.Queue, NotBefore: &later}); err != nil {
		t.Fatal(err)
	}
	if ready, delayed, err := f.queue.QueueDepth(ctx, ""); err != nil || ready != 1 || delayed != 1 {
		t.Fatalf("depth = %d ready, %d delayed (%v); want 1, 1", ready, delayed, err)
	}
	if n, err := f.queue.ConsumersOnline(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("consumers online before start = %d (%v), want 0", n, err)
	}

	f.start(t)
	if n, err := f.queue.ConsumersOnline(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("consumers online = %d (%v), want 1", n, err)
	}
	if err := f.queue.EnqueueRun(ctx, failed); err != nil {
		t.Fatal(err)
	}
	f.waitTerminal(t, ok.ID)
	f.waitTerminal(t, failed.ID)

	// The observer is told just after the store, so poll the scrape.
	want := map[string]float64{
		`orcheo_runs_finished_total{status="succeeded",trigger="manual"}`: 1,
		`orcheo_runs_finished_total{status="failed",trigger="manual"}`:    1,
		`orcheo_run_attempt_duration_seconds_count{outcome="succeeded"}`:  1,
		`orcheo_run_attempt_duration_seconds_count{outcome="failed"}`:     1,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		text := scrape()
		missing := ""
		for series, v := range want {
			if got, ok := promtext.Value(text, series); !ok || got != v {
				missing = series
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not as wanted after 30s:\n%s", missing, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
