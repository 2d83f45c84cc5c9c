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
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
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
		{"UnknownDELETE", "DELETE", "nope"},
		{"DisabledPUT", "PUT", "off"},
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

	// A trigger that is enabled answers a method it does not take with 405
	// and Allow (issue 9's order): the signature check that follows
	// tells an enabled trigger apart anyway.
	for _, m := range []string{"POST", "DELETE", "OPTIONS"} {
		got := get(m, "on")
		if got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "PUT" {
			t.Errorf("%s on: %d, Allow %q; want 405 with Allow: PUT", m, got.status, got.header.Get("Allow"))
		}
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

// TestWebhookCredentials: headers and query parameters whose names look
// like credentials are never stored in the run input (issue 8, item 9).
func TestWebhookCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "creds")
	e.mustEnableWebhook(t, "creds")

	dropped := []string{
		// The probe.
		"Authentication", "X-Auth", "X-Auth-Key", "X-Access-Key", "X-Credential",
		// The pattern's words.
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Apikey", "X-Gitlab-Token",
		"X-Webhook-Secret", "X-Password", "X-Passwd", "X-Session-Id", "X-Hub-Signature-256", "Stripe-Signature",
		"X-Slack-Signature", "X-Jwt-Assertion", "X-Csrf-Token", "X-Xsrf", "X-Hmac-Sha256", "X-Amz-Security-Token",
		"X-Client-Credentials", "X-Bearer", "X_Private_Key",
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Request-Id": {"r1"}}
	for _, name := range dropped {
		h[http.CanonicalHeaderKey(name)] = []string{"leaked-" + name}
	}
	query := "key=leaked&auth=leaked&jwt=leaked&code=leaked&sig=leaked&pwd=leaked&pass=leaked&otp=leaked" +
		"&access_token=leaked&client_secret=leaked&api_key=leaked&session=leaked&signature=leaked&X-Amz-Credential=leaked" +
		"&page=2&kind=push&encoding=utf-8&passenger=kept"
	resp, body := webhook(t, e, "POST", "creds", query, h, `{"a":1}`)
	run, in := acceptedRun(t, e, resp, body)
	if strings.Contains(string(run.Input), "leaked") {
		t.Fatalf("input keeps a credential: %s", run.Input)
	}
	for _, name := range []string{"x-github-event", "x-request-id", "content-type"} {
		if in.Headers[name] == "" {
			t.Fatalf("header %s dropped: %v", name, in.Headers)
		}
	}
	for _, name := range []string{"page", "kind", "encoding", "passenger"} {
		if in.Query[name] == nil {
			t.Fatalf("query parameter %s dropped: %v", name, in.Query)
		}
	}
}

// TestWebhookKeep: a trigger may keep named credential-looking headers and
// query parameters in the run input, never Authorization, Proxy-
// Authorization, Cookie or Set-Cookie.
func TestWebhookKeep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "keep")
	cfg := &orcheo.WebhookConfig{Enabled: true, Keep: []string{"X-Hub-Signature-256", "CODE", "api_key"}}
	stored, err := e.client.SetWebhookConfig(ctx, "keep", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stored.Keep, ",") != "x-hub-signature-256,code,api_key" {
		t.Fatalf("stored keep %v", stored.Keep)
	}
	h := http.Header{"X-Hub-Signature-256": {"sha256=abc"}, "X-Api-Key": {"leaked"}, "X-Gitlab-Token": {"leaked"}, "Cookie": {"leaked"}}
	resp, body := webhook(t, e, "POST", "keep", "code=c1&api-key=k2&token=leaked", h, "x")
	run, in := acceptedRun(t, e, resp, body)
	// Names match whole: api_key keeps ?api-key=, not X-Api-Key.
	if in.Headers["x-hub-signature-256"] != "sha256=abc" ||
		in.Query["code"] != "c1" || in.Query["api-key"] != "k2" || strings.Contains(string(run.Input), "leaked") {
		t.Fatalf("input %s", run.Input)
	}

	for _, name := range []string{"Authorization", "proxy-authorization", "COOKIE", "set_cookie", " ", ""} {
		_, err := e.client.SetWebhookConfig(ctx, "keep", &orcheo.WebhookConfig{Enabled: true, Keep: []string{name}})
		wantCode(t, err, orcheo.EINVALID)
	}
	// Even a config that skipped validation cannot keep them.
	e = newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		s.Triggers = unvalidatedTriggers{s.Triggers, &orcheo.WebhookConfig{Enabled: true, Keep: []string{"authorization", "cookie", "Proxy_Authorization"}}}
	}})
	e.mustWorkflow(t, "keep")
	h = http.Header{"Authorization": {"Bearer leaked"}, "Cookie": {"leaked"}, "Proxy-Authorization": {"leaked"}}
	resp, body = webhook(t, e, "POST", "keep", "", h, "x")
	if run, _ = acceptedRun(t, e, resp, body); strings.Contains(string(run.Input), "leaked") {
		t.Fatalf("input %s", run.Input)
	}
}

// unvalidatedTriggers answers every FindWebhookConfig with cfg, as a store
// holding a config written before validation existed would.
type unvalidatedTriggers struct {
	orcheo.TriggerService
	cfg *orcheo.WebhookConfig
}

func (u unvalidatedTriggers) FindWebhookConfig(context.Context, string) (*orcheo.WebhookConfig, error) {
	return u.cfg, nil
}
