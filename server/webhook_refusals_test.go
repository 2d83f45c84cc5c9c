package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
)

// TestWebhookRefusalReasons: each way the route refuses a webhook is
// counted once, under its own reason, for orcheo_webhook_refused_total —
// the reasons the metrics test of test/ does not reach.
func TestWebhookRefusalReasons(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counted := map[string]int{}
	e := newEnv(t, envOptions{maxBody: 4096, setup: func(s *server.Server, _ *db.Store) {
		s.OnWebhookRefused = func(reason string) {
			mu.Lock()
			counted[reason]++
			mu.Unlock()
		}
	}})
	e.mustWorkflow(t, "off")
	e.mustWorkflow(t, "on")
	e.mustEnableWebhook(t, "on", "PUT")
	e.mustWorkflow(t, "gone")
	e.mustEnableWebhook(t, "gone")
	if _, err := e.client.ArchiveWorkflow(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	chunked := http.Header{"Transfer-Encoding": {"chunked"}, "Content-Type": {"application/json"}}
	for _, tc := range []struct {
		reason, method, ref string
		header              http.Header
		body                string
		status              int
	}{
		{"not_found", "POST", "nope", nil, "{}", http.StatusNotFound},
		{"disabled", "POST", "off", nil, "{}", http.StatusNotFound},
		{"archived", "POST", "gone", nil, "{}", http.StatusNotFound},
		{"method", "POST", "on", nil, "{}", http.StatusMethodNotAllowed},
		{"too_large", "PUT", "on", chunked, `{"pad":"` + strings.Repeat("x", 8192) + `"}`, http.StatusRequestEntityTooLarge},
		{"bad_request", "PUT", "on", http.Header{"Content-Type": {"application/json"}}, `{"a":`, http.StatusBadRequest},
	} {
		mu.Lock()
		before := counted[tc.reason]
		mu.Unlock()
		resp, body := webhook(t, e, tc.method, tc.ref, "", tc.header, tc.body)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.reason, resp.StatusCode, body, tc.status)
		}
		mu.Lock()
		got := counted[tc.reason] - before
		mu.Unlock()
		if got != 1 {
			t.Fatalf("%s counted %d times, want once (all: %v)", tc.reason, got, counted)
		}
	}
}
