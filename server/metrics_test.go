package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/promtext"
	"github.com/orcheo/orcheo/metrics"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
)

// fakeQueueStats stands in for Redis, which these handler tests do not
// have; tasks/ and test/ read the real one.
type fakeQueueStats struct{ fail bool }

func (f fakeQueueStats) QueueDepth(ctx context.Context, queue string) (int64, int64, error) {
	if f.fail {
		return 0, 0, errors.New("redis: connection refused")
	}
	return 4, 1, nil
}

func (f fakeQueueStats) ConsumersOnline(ctx context.Context, now time.Time) (int64, error) {
	return 2, nil
}

// metricsEnv is a server whose Runs and /metrics are wired as cmd/orcheo
// wires them.
func metricsEnv(t *testing.T, queue fakeQueueStats) *env {
	t.Helper()
	return newEnv(t, envOptions{setup: func(s *server.Server, st *db.Store) {
		reg := metrics.NewRegistry()
		s.Runs = metrics.NewRuns(reg).Wrap(st.Runs)
		metrics.RegisterStats(reg, metrics.StatsConfig{
			Runs: st.Runs.(orcheo.RunStatsService), Queue: queue, Queues: []string{orcheo.DefaultQueue},
			Logger: logrus.New(),
		})
		s.Metrics = metrics.Handler(reg, logrus.New())
	}})
}

// scrape GETs /metrics with token and returns the status and body.
func scrape(t *testing.T, e *env, token string) (int, string) {
	t.Helper()
	code, body, err := promtext.Get(e.http.URL+"/metrics", token)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// wantValue fails the test unless the scraped series has value want.
func wantValue(t *testing.T, text, series string, want float64) {
	t.Helper()
	if got, ok := promtext.Value(text, series); !ok || got != want {
		t.Fatalf("%s = %v (present %v), want %v", series, got, ok, want)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()

	t.Run("CountsWebhookRuns", func(t *testing.T) {
		t.Parallel()
		e := metricsEnv(t, fakeQueueStats{})
		e.mustWorkflow(t, "metered")
		e.mustEnableWebhook(t, "metered")

		code, before := scrape(t, e, testToken)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, before)
		}
		wantValue(t, before, `orcheo_runs_created_total{trigger="webhook"}`, 0)
		wantValue(t, before, `orcheo_runs_pending`, 0)

		resp, body := webhook(t, e, "POST", "metered", "", http.Header{"Content-Type": {"application/json"}}, `{}`)
		run, _ := acceptedRun(t, e, resp, body)

		_, after := scrape(t, e, testToken)
		wantValue(t, after, `orcheo_runs_created_total{trigger="webhook"}`, 1)
		wantValue(t, after, `orcheo_runs_created_total{trigger="manual"}`, 0)
		wantValue(t, after, `orcheo_runs_pending`, 1)
		wantValue(t, after, `orcheo_runs_running`, 0)
		wantValue(t, after, `orcheo_scrape_source_up{source="database"}`, 1)
		wantValue(t, after, `orcheo_queue_messages{queue="default",state="ready"}`, 4)
		wantValue(t, after, `orcheo_queue_messages{queue="default",state="delayed"}`, 1)
		wantValue(t, after, `orcheo_worker_consumers_online`, 2)
		// No worker runs here, so the run stays pending: a second later the
		// gauge shows its age, which a gauge stuck at 0 would not.
		time.Sleep(1100 * time.Millisecond)
		_, later := scrape(t, e, testToken)
		if age, ok := promtext.Value(later, `orcheo_oldest_pending_run_age_seconds`); !ok || age < 1 || age > 60 {
			t.Fatalf("oldest pending age = %v (present %v), want the pending webhook run's age, over 1 s", age, ok)
		}

		// A cancel ends a pending run at once, so the API counts it.
		if _, err := e.client.CancelRun(context.Background(), run.ID); err != nil {
			t.Fatal(err)
		}
		_, cancelled := scrape(t, e, testToken)
		wantValue(t, cancelled, `orcheo_runs_finished_total{status="cancelled",trigger="webhook"}`, 1)
		wantValue(t, cancelled, `orcheo_runs_pending`, 0)
	})

	t.Run("NeedsToken", func(t *testing.T) {
		t.Parallel()
		e := metricsEnv(t, fakeQueueStats{})
		for _, token := range []string{"", "wrong"} {
			if code, body := scrape(t, e, token); code != http.StatusUnauthorized {
				t.Fatalf("token %q: status %d, want 401: %s", token, code, body)
			}
		}
	})

	t.Run("RedisDownLeavesOutQueues", func(t *testing.T) {
		t.Parallel()
		e := metricsEnv(t, fakeQueueStats{fail: true})
		code, text := scrape(t, e, testToken)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, text)
		}
		wantValue(t, text, `orcheo_scrape_source_up{source="redis"}`, 0)
		wantValue(t, text, `orcheo_scrape_source_up{source="database"}`, 1)
		if _, ok := promtext.Value(text, `orcheo_worker_consumers_online`); ok {
			t.Fatal("consumers online reported while Redis failed")
		}
	})

	t.Run("NotWired", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		if code, _ := scrape(t, e, testToken); code != http.StatusNotFound {
			t.Fatalf("status %d, want 404 without a Metrics handler", code)
		}
	})
}
