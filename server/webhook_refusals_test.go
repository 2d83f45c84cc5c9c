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

	// A declared Content-Length over the limit is refused before the
	// route, by limitBody, and still counted; on any other route it is no
	// webhook refusal.
	mu.Lock()
	before := counted["too_large"]
	mu.Unlock()
	big := `{"pad":"` + strings.Repeat("x", 8192) + `"}`
	resp, body := webhook(t, e, "PUT", "on", "", http.Header{"Content-Type": {"application/json"}}, big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared too large: %d %s, want 413", resp.StatusCode, body)
	}
	mu.Lock()
	got := counted["too_large"] - before
	mu.Unlock()
	if got != 1 {
		t.Fatalf("a declared Content-Length over the limit counted %d times as too_large, want once (all: %v)", got, counted)
	}
	for _, path := range []string{"/api/workflows", "/api/workflows/on/triggers/webhook/config"} {
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(big))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s declared too large: %d, want 413", path, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := counted["too_large"] - before; got != 1 {
		t.Fatalf("too_large counted %d times in all, want once: routes other than the webhook's counted (all: %v)", got, counted)
	}
}
