package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/mock"
	"github.com/orcheo/orcheo/server"
)

// fuzzKept is the name the fuzzed trigger keeps although it looks like a
// credential.
const fuzzKept = "x-keep-token"

// fuzzServer is a server on mock services, fast enough for the fuzzer:
// "hook" is enabled for every method and keeps fuzzKept, "off" is
// disabled, "gone" is archived; every other ref is unknown. The fuzzRuns
// keeps the input of every run created.
func fuzzServer(tb testing.TB) (*server.Server, *fuzzRuns) {
	tb.Helper()
	now := time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	workflows := map[string]*orcheo.Workflow{}
	for i, handle := range []string{"hook", "off", "gone"} {
		wf := &orcheo.Workflow{ID: "0190a000-0000-7000-8000-00000000000" + string(rune('1'+i)), Handle: handle,
			Queue: orcheo.DefaultQueue, LatestVersion: 1, LatestVersionID: "0190a000-0000-7000-8000-0000000000f1"}
		if handle == "gone" {
			wf.ArchivedAt = &now
		}
		workflows[handle], workflows[wf.ID] = wf, wf
	}
	runs := &fuzzRuns{keys: map[string]*orcheo.Run{}}
	s := server.NewServer()
	s.Workflows = &mock.WorkflowService{FindWorkflowByRefFn: func(_ context.Context, ref string) (*orcheo.Workflow, error) {
		if wf, ok := workflows[ref]; ok {
			return wf, nil
		}
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", ref)
	}}
	s.Triggers = &mock.TriggerService{FindWebhookConfigFn: func(_ context.Context, id string) (*orcheo.WebhookConfig, error) {
		if id == workflows["off"].ID {
			return &orcheo.WebhookConfig{}, nil
		}
		return &orcheo.WebhookConfig{Enabled: true, Methods: orcheo.WebhookMethods, Keep: []string{fuzzKept}}, nil
	}}
	s.Runs = &mock.RunService{CreateRunFn: runs.create, MarkRunUnenqueuedFn: func(context.Context, string) error { return nil }}
	s.Submitter = startSubmitter(tb, s.Runs, nopQueue{})
	s.Token = testToken
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	s.Logger = logger
	return s, runs
}

// fuzzRuns is the mock store's runs: it keeps inputs and honours
// idempotency keys.
type fuzzRuns struct {
	mu     sync.Mutex
	keys   map[string]*orcheo.Run
	inputs []json.RawMessage
}

// reset forgets every run, between inputs.
func (f *fuzzRuns) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys, f.inputs = map[string]*orcheo.Run{}, nil
}

func (f *fuzzRuns) create(_ context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// As every store does (db/internal/rules.NewRun): the run, its input
	// included, is checked once, by the store, not before it.
	if err := run.Validate(); err != nil {
		return nil, false, err
	}
	if run.IdempotencyKey != "" {
		if old, ok := f.keys[run.IdempotencyKey]; ok {
			return old, false, nil
		}
	}
	stored := *run
	stored.ID = "0190a000-0000-7000-8000-0000000000aa"
	stored.Status = orcheo.RunPending
	stored.CreatedAt = time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	stored.MaxAttempts = 1
	f.inputs = append(f.inputs, append(json.RawMessage(nil), run.Input...))
	if run.IdempotencyKey != "" {
		f.keys[run.IdempotencyKey] = &stored
	}
	return &stored, true, nil
}

// fuzzCredential is the documented credential-name rule (docs/api.md,
// "Credentials in webhook input"), written again here so the handler's
// rule is checked against the documentation rather than against itself.
func fuzzCredential(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	switch n {
	case "authorization", "proxy-authorization", "cookie", "set-cookie", "code", "sig", "pwd", "pass", "otp":
		return true
	}
	for _, w := range []string{"auth", "token", "secret", "key", "password", "passwd", "passphrase", "credential",
		"signature", "session", "cookie", "jwt", "bearer", "csrf", "xsrf", "hmac"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// tokenChar reports whether c may appear in a method or header name.
func tokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

// validHeaderValue is what net/http's server lets through in a value.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzWebhook drives the webhook route through the whole handler (routing,
// middleware, parsing) with a fuzzed method, ref, one header, query,
// content type and body. It checks that no request gets a 5xx or panics,
// that a 2xx carries exactly id, status, workflow and created_at, that
// every refusal to find a trigger looks the same, and that no
// credential-like header or query parameter reaches a run's input.
//
//	go test -run '^$' -fuzz '^FuzzWebhook$' -fuzztime 20s ./server/
func FuzzWebhook(f *testing.F) {
	f.Add("POST", "hook", "X-Github-Event", "push", "a=1&a=2", "application/json", []byte(`{"ref":"main"}`))
	f.Add("GET", "hook", "X-Auth", "leaked", "key=1&auth=2&jwt=3&code=4", "", []byte(nil))
	f.Add("POST", "off", "", "", "", "text/plain", []byte("x"))
	f.Add("PUT", "%00", "Idempotency-Key", "k", "", "application/json", []byte(`{"a":"\u0000"}`))

	// One server for every input: building the router each time would
	// cost most of an exec. The fuzz function is never called concurrently
	// within a process.
	s, runs := fuzzServer(f)
	notFound := serveFuzz(s, "POST", "nope", "", "", "", "", nil).Body.String()

	f.Fuzz(func(t *testing.T, method, ref, name, value, rawQuery, contentType string, body []byte) {
		if !validToken(method) || (name != "" && !validToken(name)) || !validHeaderValue(value) || !validHeaderValue(contentType) {
			return
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect":
			// Framing headers the HTTP server handles before any handler.
			return
		}
		target := "/api/workflows/" + ref + "/triggers/webhook"
		if rawQuery != "" {
			target += "?" + rawQuery
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n#") {
			// net/http refuses such a request line with its own 400.
			return
		}
		runs.reset()
		rec := serveFuzz(s, method, "", name, value, contentType, target, body)

		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, rec.Code, rec.Body)
		}
		isWebhook := strings.Count(u.EscapedPath(), "/") == 5 && strings.HasSuffix(u.EscapedPath(), "/triggers/webhook")
		if rec.Code >= 200 && rec.Code < 300 {
			if !isWebhook {
				if strings.EqualFold(name, "Authorization") && strings.Contains(value, testToken) {
					return // the fuzzer found the token: not a stranger's request
				}
				t.Fatalf("%s %q without a token answered %d", method, target, rec.Code)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			var names []string
			for k := range fields {
				names = append(names, k)
			}
			sort.Strings(names)
			if strings.Join(names, ",") != "created_at,id,status,workflow" || string(fields["workflow"]) != `"hook"` {
				t.Fatalf("answer %s, want exactly id, status, workflow (hook), created_at", rec.Body)
			}
		} else {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error answer %d %q is not orcheo's", rec.Code, rec.Body)
			}
			if isWebhook && rec.Code == http.StatusNotFound && rec.Body.String() != notFound {
				t.Fatalf("a 404 of the webhook route differs from an unknown workflow's: %s", rec.Body)
			}
			if rec.Header().Get("Allow") != "" && isWebhook && rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("Allow %q on a %d of the webhook route", rec.Header().Get("Allow"), rec.Code)
			}
		}
		for _, raw := range runs.inputs {
			var in struct {
				Headers map[string]string          `json:"headers"`
				Query   map[string]json.RawMessage `json:"query"`
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatalf("stored input %q: %v", raw, err)
			}
			for k := range in.Headers {
				if fuzzCredential(k) && k != fuzzKept {
					t.Fatalf("header %q stored: %s", k, raw)
				}
			}
			for k := range in.Query {
				if fuzzCredential(k) && strings.ReplaceAll(strings.ToLower(k), "_", "-") != fuzzKept {
					t.Fatalf("query parameter %q stored: %s", k, raw)
				}
			}
			if name != "" && fuzzCredential(name) && http.CanonicalHeaderKey(name) != http.CanonicalHeaderKey(fuzzKept) &&
				value != "" && in.Headers[strings.ToLower(name)] != "" {
				t.Fatalf("credential header %s stored", name)
			}
		}
	})
}

// serveFuzz sends one unauthenticated request straight to s's handler:
// to target if set, else to ref's webhook.
func serveFuzz(s *server.Server, method, ref, name, value, contentType, target string, body []byte) *httptest.ResponseRecorder {
	if target == "" {
		target = "/api/workflows/" + ref + "/triggers/webhook"
	}
	u, _ := url.ParseRequestURI(target)
	req := &http.Request{
		Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "orcheo.test", RemoteAddr: "192.0.2.1:1234",
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	if name != "" {
		req.Header.Add(name, value)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req = req.WithContext(context.Background())
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}
