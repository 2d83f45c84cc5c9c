package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

// webhook sends one webhook request (never with the bearer token) and
// returns the answer.
func webhook(t testing.TB, e *env, method, ref, query string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	u := e.http.URL + "/api/workflows/" + ref + "/triggers/webhook"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if req.Header.Get("Transfer-Encoding") == "chunked" {
		// No Content-Length: the limit must hold while reading.
		req.Header.Del("Transfer-Encoding")
		req.ContentLength = -1
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

type storedWebhookInput struct {
	Method   string                 `json:"method"`
	Body     json.RawMessage        `json:"body"`
	Headers  map[string]string      `json:"headers"`
	Query    map[string]interface{} `json:"query"`
	SourceIP string                 `json:"source_ip"`
}

// acceptedRun checks a 202 answer and returns the stored run's input.
func acceptedRun(t testing.TB, e *env, resp *http.Response, body string) (*orcheo.Run, *storedWebhookInput) {
	t.Helper()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, body)
	}
	var run orcheo.Run
	if err := json.Unmarshal([]byte(body), &run); err != nil {
		t.Fatal(err)
	}
	stored, err := e.client.FindRunByID(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.TriggeredBy != orcheo.TriggerWebhook || stored.Status != orcheo.RunPending {
		t.Fatalf("run %+v", stored)
	}
	var in storedWebhookInput
	if err := json.Unmarshal(stored.Input, &in); err != nil {
		t.Fatalf("input %s: %v", stored.Input, err)
	}
	return stored, &in
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("JSONInput", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		wf := e.mustWorkflow(t, "hook")
		e.mustEnableWebhook(t, "hook")
		header := http.Header{
			"Content-Type":        {"application/json"},
			"X-Github-Event":      {"push"},
			"X-Hub-Signature-256": {"sha256=abc"},
			"Authorization":       {"Bearer leaked"},
			"Cookie":              {"session=leaked"},
			"X-Api-Key":           {"leaked"},
			"X-Gitlab-Token":      {"leaked"},
			"X-Multi":             {"a", "b"},
		}
		resp, body := webhook(t, e, "POST", "hook", "a=1&a=2&b=x&access_token=leaked", header, `{"ref":"main","n":[1,2]}`)
		run, in := acceptedRun(t, e, resp, body)
		if run.WorkflowID != wf.ID || run.VersionID != wf.LatestVersionID {
			t.Fatalf("run %+v", run)
		}
		if in.Method != "POST" || in.SourceIP != "127.0.0.1" {
			t.Fatalf("method %q source_ip %q", in.Method, in.SourceIP)
		}
		var b map[string]interface{}
		if err := json.Unmarshal(in.Body, &b); err != nil || b["ref"] != "main" {
			t.Fatalf("body %s: want the parsed JSON object", in.Body)
		}
		if in.Headers["x-github-event"] != "push" || in.Headers["x-hub-signature-256"] != "" ||
			in.Headers["content-type"] != "application/json" || in.Headers["x-multi"] != "a, b" {
			t.Fatalf("headers %v", in.Headers)
		}
		for _, secret := range []string{"authorization", "cookie", "x-api-key", "x-gitlab-token", "x-hub-signature-256"} {
			if _, ok := in.Headers[secret]; ok {
				t.Fatalf("secret header %s stored: %v", secret, in.Headers)
			}
		}
		if strings.Contains(string(run.Input), "leaked") {
			t.Fatalf("input keeps a secret: %s", run.Input)
		}
		if in.Query["b"] != "x" {
			t.Fatalf("query %v", in.Query)
		}
		if a, ok := in.Query["a"].([]interface{}); !ok || len(a) != 2 || a[0] != "1" || a[1] != "2" {
			t.Fatalf("repeated query value %v", in.Query["a"])
		}
		if ids := e.queue.enqueued(); len(ids) != 1 || ids[0] != run.ID {
			t.Fatalf("enqueued %v", ids)
		}
	})

	t.Run("RawAndEmptyBodies", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "raw")
		e.mustEnableWebhook(t, "raw", "GET", "post", "PUT")
		resp, body := webhook(t, e, "PUT", "raw", "", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "a=1&b={")
		_, in := acceptedRun(t, e, resp, body)
		if string(in.Body) != `"a=1\u0026b={"` && string(in.Body) != `"a=1&b={"` {
			t.Fatalf("body %s, want the raw string", in.Body)
		}
		// A JSON-looking body without a JSON content type stays a string.
		resp, body = webhook(t, e, "POST", "raw", "", nil, `{"x":1}`)
		_, in = acceptedRun(t, e, resp, body)
		var s string
		if err := json.Unmarshal(in.Body, &s); err != nil || s != `{"x":1}` {
			t.Fatalf("body %s, want a string", in.Body)
		}
		// +json types are JSON.
		resp, body = webhook(t, e, "POST", "raw", "", http.Header{"Content-Type": {"application/vnd.github+json; charset=utf-8"}}, `[1]`)
		if _, in = acceptedRun(t, e, resp, body); string(in.Body) != `[1]` {
			t.Fatalf("body %s", in.Body)
		}
		resp, body = webhook(t, e, "GET", "raw", "q=1", nil, "")
		_, in = acceptedRun(t, e, resp, body)
		if in.Method != "GET" || string(in.Body) != "null" || in.Query["q"] != "1" {
			t.Fatalf("GET input %+v body %s", in, in.Body)
		}
	})

	t.Run("NoBearerNeeded", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "open")
		e.mustEnableWebhook(t, "open")
		// The management token is neither needed nor stored.
		resp, body := webhook(t, e, "POST", "open", "", nil, "x")
		acceptedRun(t, e, resp, body)
		resp, body = webhook(t, e, "POST", "open", "", http.Header{"Authorization": {"Bearer " + testToken}}, "x")
		run, _ := acceptedRun(t, e, resp, body)
		if strings.Contains(string(run.Input), testToken) {
			t.Fatalf("input keeps the token: %s", run.Input)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "idem")
		e.mustEnableWebhook(t, "idem")
		h := http.Header{"Idempotency-Key": {"delivery-1"}}
		resp, body := webhook(t, e, "POST", "idem", "", h, "first")
		first, _ := acceptedRun(t, e, resp, body)
		resp, body = webhook(t, e, "POST", "idem", "", h, "second")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("repeat status %d: %s", resp.StatusCode, body)
		}
		var again orcheo.Run
		if err := json.Unmarshal([]byte(body), &again); err != nil || again.ID != first.ID {
			t.Fatalf("repeat %s", body)
		}
		e.unchanged(t, 1, 1)
		if len(e.queue.enqueued()) != 1 {
			t.Fatalf("enqueued %v", e.queue.enqueued())
		}
	})

	t.Run("EnqueueFails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{failQueue: true})
		e.mustWorkflow(t, "down")
		e.mustEnableWebhook(t, "down")
		resp, body := webhook(t, e, "POST", "down", "", nil, "x")
		run, _ := acceptedRun(t, e, resp, body)
		ids, err := e.store.Runs.ClaimUnenqueuedRuns(ctx, 10)
		if err != nil || len(ids) != 1 || ids[0].ID != run.ID {
			t.Fatalf("unenqueued %+v %v", ids, err)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{maxBody: 1024})
		e.mustWorkflow(t, "off")
		e.mustWorkflow(t, "on")
		e.mustEnableWebhook(t, "on", "POST", "PUT")
		e.mustWorkflow(t, "gone")
		e.mustEnableWebhook(t, "gone")
		if _, err := e.client.ArchiveWorkflow(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		jsonCT := http.Header{"Content-Type": {"application/json"}}
		for _, tc := range []struct {
			name, method, ref string
			header            http.Header
			body              string
			status            int
			code              string
		}{
			// Unknown, disabled and archived are indistinguishable
			// (TestWebhookNoExistenceOracle).
			{"UnknownWorkflow", "POST", "nope", nil, "x", 404, orcheo.ENOTFOUND},
			{"Disabled", "POST", "off", nil, "x", 404, orcheo.ENOTFOUND},
			{"MethodNotConfigured", "DELETE", "on", nil, "", 405, orcheo.EMETHOD},
			{"UnsupportedMethod", "OPTIONS", "on", nil, "", 405, orcheo.EMETHOD},
			{"TooLarge", "POST", "on", nil, longString(1025), 413, orcheo.ETOOLARGE},
			{"TooLargeChunked", "POST", "on", http.Header{"Transfer-Encoding": {"chunked"}}, longString(4000), 413, orcheo.ETOOLARGE},
			{"MalformedJSON", "POST", "on", jsonCT, `{"a":`, 400, orcheo.EINVALID},
			{"Archived", "POST", "gone", nil, "x", 404, orcheo.ENOTFOUND},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := webhook(t, e, tc.method, tc.ref, "", tc.header, tc.body)
				wantError(t, resp, body, tc.status, tc.code)
				if allow := resp.Header.Get("Allow"); (allow != "") != (tc.status == 405) || (allow != "" && allow != "POST, PUT") {
					t.Fatalf("Allow = %q on a %d", allow, tc.status)
				}
				e.unchanged(t, 3, 0)
			})
		}
		if len(e.queue.enqueued()) != 0 {
			t.Fatalf("enqueued %v", e.queue.enqueued())
		}
	})

	t.Run("DefaultMethodIsPost", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "p")
		e.mustEnableWebhook(t, "p")
		resp, body := webhook(t, e, "GET", "p", "", nil, "")
		wantError(t, resp, body, 405, orcheo.EMETHOD)
		if resp.Header.Get("Allow") != "POST" {
			t.Fatalf("Allow = %q, want POST", resp.Header.Get("Allow"))
		}
		resp, body = webhook(t, e, "POST", "p", "", nil, "")
		acceptedRun(t, e, resp, body)
	})
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "cfg")

	t.Run("DefaultDisabled", func(t *testing.T) {
		cfg, err := e.client.FindWebhookConfig(ctx, "cfg")
		if err != nil || cfg.Enabled {
			t.Fatalf("default config %+v %v", cfg, err)
		}
	})
	t.Run("SetAndFind", func(t *testing.T) {
		cfg := &orcheo.WebhookConfig{Enabled: true, Methods: []string{"get", "Post"}}
		stored, err := e.client.SetWebhookConfig(ctx, "cfg", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(stored.Methods, ",") != "GET,POST" {
			t.Fatalf("normalised methods %v", stored.Methods)
		}
		got, err := e.client.FindWebhookConfig(ctx, "cfg")
		if err != nil || !got.Enabled || strings.Join(got.Methods, ",") != "GET,POST" {
			t.Fatalf("stored %+v %v", got, err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		before, _ := e.client.FindWebhookConfig(ctx, "cfg")
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code                     string
		}{
			{"UnknownField", "PUT", "cfg", `{"enabled":true,"secret":"x"}`, 400, orcheo.EINVALID},
			{"BadMethod", "PUT", "cfg", `{"enabled":true,"methods":["TRACE"]}`, 400, orcheo.EINVALID},
			{"Malformed", "PUT", "cfg", `{"enabled":`, 400, orcheo.EINVALID},
			{"WrongType", "PUT", "cfg", `{"enabled":"yes"}`, 400, orcheo.EINVALID},
			{"UnknownWorkflow", "PUT", "nope", `{"enabled":true}`, 404, orcheo.ENOTFOUND},
			{"UnknownWorkflowGet", "GET", "nope", ``, 404, orcheo.ENOTFOUND},
			{"WrongMethod", "POST", "cfg", `{}`, 405, orcheo.EMETHOD},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := do(t, e, tc.method, "/api/workflows/"+tc.path+"/triggers/webhook/config", testToken, "application/json", tc.body)
				wantError(t, resp, body, tc.status, tc.code)
			})
		}
		after, _ := e.client.FindWebhookConfig(ctx, "cfg")
		if after.Enabled != before.Enabled || strings.Join(after.Methods, ",") != strings.Join(before.Methods, ",") {
			t.Fatalf("config changed by refused requests: %+v → %+v", before, after)
		}
	})
}

// nopQueue accepts every run and does nothing.
type nopQueue struct{}

func (nopQueue) EnqueueRun(context.Context, *orcheo.Run) error { return nil }
func (nopQueue) EnqueueRuns(_ context.Context, runs []*orcheo.Run) []error {
	return make([]error, len(runs))
}

// BenchmarkWebhook measures the webhook handler end to end (routing,
// middleware, workflow and config lookup, run insert) without the network,
// with a no-op queue.
func BenchmarkWebhook(b *testing.B) {
	e := newEnv(b, envOptions{})
	useQueue(b, e.srv, nopQueue{})
	e.srv.Logger.(interface{ SetOutput(io.Writer) }).SetOutput(io.Discard)
	e.mustWorkflow(b, "bench")
	e.mustEnableWebhook(b, "bench")
	h := e.srv.Handler()
	body := `{"action":"opened","number":42,"repository":{"full_name":"orcheo/orcheo"}}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", "/api/workflows/bench/triggers/webhook?source=bench", strings.NewReader(body))
			req.RemoteAddr = "192.0.2.1:1234"
			req.Header.Set("Content-Type", "application/json")
			rec := newDiscardRecorder()
			h.ServeHTTP(rec, req)
			if rec.status != http.StatusAccepted {
				b.Fatalf("status %d", rec.status)
			}
		}
	})
}

// discardRecorder is a ResponseWriter that keeps only the status.
type discardRecorder struct {
	header http.Header
	status int
}

func newDiscardRecorder() *discardRecorder { return &discardRecorder{header: http.Header{}} }

func (r *discardRecorder) Header() http.Header         { return r.header }
func (r *discardRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *discardRecorder) WriteHeader(status int)      { r.status = status }
