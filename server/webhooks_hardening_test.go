package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// wantWebhookAnswer checks that a webhook's 2xx answer carries exactly
// id, status, workflow and created_at, and returns the id.
func wantWebhookAnswer(t testing.TB, resp *http.Response, body string, status int, handle string) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "created_at,id,status,workflow" {
		t.Fatalf("answer has fields %v, want exactly id, status, workflow, created_at: %s", names, body)
	}
	var a struct {
		ID        string           `json:"id"`
		Status    orcheo.RunStatus `json:"status"`
		Workflow  string           `json:"workflow"`
		CreatedAt time.Time        `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	if !orcheo.IsID(a.ID) || !a.Status.Valid() || a.Workflow != handle || a.CreatedAt.IsZero() {
		t.Fatalf("answer %s", body)
	}
	return a.ID
}

// TestWebhookAnswer: a webhook answers only what its caller needs, for a
// new delivery and a repeated one alike; the full run stays behind the
// token (issue 8, item 1).
func TestWebhookAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "answer")
	e.mustEnableWebhook(t, "answer")

	h := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"delivery-7"}, "X-Event": {"push"}}
	resp, body := webhook(t, e, "POST", "answer", "q=1", h, `{"card":"4111-1111"}`)
	id := wantWebhookAnswer(t, resp, body, http.StatusAccepted, "answer")
	if strings.Contains(body, "4111") || strings.Contains(body, "push") {
		t.Fatalf("answer leaks the input: %s", body)
	}
	resp, body = webhook(t, e, "POST", "answer", "", h, `{"other":1}`)
	if again := wantWebhookAnswer(t, resp, body, http.StatusOK, "answer"); again != id {
		t.Fatalf("repeat answered run %s, want %s", again, id)
	}
	if strings.Contains(body, "4111") {
		t.Fatalf("repeated answer leaks the input: %s", body)
	}

	// A run that failed still answers without its error or output.
	run, err := e.client.FindRunByID(ctx, id)
	if err != nil || run.Status != orcheo.RunPending {
		t.Fatalf("stored run %+v %v", run, err)
	}
	if _, err := e.store.Runs.CancelRun(ctx, id); err != nil {
		t.Fatal(err)
	}
	resp, body = webhook(t, e, "POST", "answer", "", h, `{}`)
	wantWebhookAnswer(t, resp, body, http.StatusOK, "answer")
	if strings.Contains(body, "error") || strings.Contains(body, "input") {
		t.Fatalf("repeated answer after cancel: %s", body)
	}

	// The full run is still there for the token holder.
	if run, err = e.client.FindRunByID(ctx, id); err != nil || !strings.Contains(string(run.Input), "4111") {
		t.Fatalf("full run %+v %v", run, err)
	}
}

// TestWebhookNoExistenceOracle: without the token, an unknown workflow, a
// disabled trigger, an archived workflow and a method the trigger does not
// accept are indistinguishable: same status, same headers, same body
// (issue 8, item 11). The management API keeps the precise answers.
func TestWebhookNoExistenceOracle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "off")
	e.mustWorkflow(t, "on")
	e.mustEnableWebhook(t, "on", "PUT")
	gone := e.mustWorkflow(t, "gone")
	e.mustEnableWebhook(t, "gone")
	if _, err := e.client.ArchiveWorkflow(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		status int
		header http.Header
		body   string
	}
	get := func(method, ref string) answer {
		resp, body := webhook(t, e, method, ref, "", nil, "x")
		h := resp.Header.Clone()
		h.Del("Date")
		h.Del("Content-Length")
		return answer{resp.StatusCode, h, body}
	}
	want := get("POST", "nope")
	if want.status != http.StatusNotFound || !strings.Contains(want.body, `"code":"not_found"`) {
		t.Fatalf("unknown workflow: %d %s", want.status, want.body)
	}
	for _, tc := range []struct{ name, method, ref string }{
		{"UnknownByID", "POST", "00000000-0000-4000-8000-000000000000"},
		{"UnknownGET", "GET", "nope"},
		{"Disabled", "POST", "off"},
		{"ArchivedByID", "POST", gone.ID},
		{"Archived", "POST", "gone"},
		{"MethodNotConfigured", "POST", "on"},
		{"MethodNotConfiguredDELETE", "DELETE", "on"},
		{"UnsupportedMethod", "OPTIONS", "on"},
		{"NotAHandle", "POST", "Not%20A%20Handle"},
		{"NUL", "POST", "%00"},
		{"InvalidUTF8", "POST", "%FF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := get(tc.method, tc.ref)
			if got.status != want.status || got.body != want.body {
				t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.ref, got.status, got.body, want.status, want.body)
			}
			if len(got.header) != len(want.header) {
				t.Fatalf("headers %v, want %v", got.header, want.header)
			}
			for k := range want.header {
				if got.header.Get(k) != want.header.Get(k) {
					t.Fatalf("header %s = %q, want %q", k, got.header.Get(k), want.header.Get(k))
				}
			}
		})
	}
	e.unchanged(t, 3, 0)

	// The token holder still learns the precise state.
	if cfg, err := e.client.FindWebhookConfig(ctx, "off"); err != nil || cfg.Enabled {
		t.Fatalf("config of off: %+v %v", cfg, err)
	}
	_, err := e.client.FindWebhookConfig(ctx, "nope")
	wantCode(t, err, orcheo.ENOTFOUND)
	if wf, err := e.client.FindWorkflowByRef(ctx, "gone"); err != nil || !wf.Archived() {
		t.Fatalf("archived workflow %+v %v", wf, err)
	}
}
