package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/mock"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	t.Run("Healthz", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		// No token: health endpoints are for load balancers and systemd.
		if err := client.New(e.http.URL, "").Health(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ReadyOK", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.srv.ReadyChecks = map[string]orcheo.Pinger{
			"database": orcheo.PingFunc(func(context.Context) error { return nil }),
			"redis":    orcheo.PingFunc(func(context.Context) error { return nil }),
		}
		checks, err := client.New(e.http.URL, "").Ready(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if checks["database"] != "ok" || checks["redis"] != "ok" || len(checks) != 2 {
			t.Fatalf("checks = %v", checks)
		}
	})
	t.Run("ReadyUnavailable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.srv.ReadyChecks = map[string]orcheo.Pinger{
			"database": orcheo.PingFunc(func(context.Context) error { return nil }),
			"redis":    orcheo.PingFunc(func(context.Context) error { return errors.New("dial tcp: connection refused") }),
		}
		resp, err := http.Get(e.http.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || body.Status != "unavailable" ||
			body.Checks["database"] != "ok" || body.Checks["redis"] != "error: unavailable (details in the API log)" {
			t.Fatalf("readyz = %d %+v", resp.StatusCode, body)
		}
		checks, err := client.New(e.http.URL, "").Ready(context.Background())
		wantCode(t, err, orcheo.EUNAVAILABLE)
		if checks["redis"] == "ok" || !strings.Contains(orcheo.ErrorMessage(err), "redis") {
			t.Fatalf("checks = %v, err = %v", checks, err)
		}
	})
}

// do sends one raw request to the env's server.
func do(t testing.TB, e *env, method, path, token, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// wantError checks an error answer's status, JSON shape and code.
func wantError(t testing.TB, resp *http.Response, body string, status int, code string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("body %s: want error code %q (%v)", body, code, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	t.Run("UnknownRoute", func(t *testing.T) {
		resp, body := do(t, e, "GET", "/nope", "", "", "")
		wantError(t, resp, body, 404, orcheo.ENOTFOUND)
		resp, body = do(t, e, "GET", "/api/nope", testToken, "", "")
		wantError(t, resp, body, 404, orcheo.ENOTFOUND)
	})
	t.Run("WrongMethod", func(t *testing.T) {
		resp, body := do(t, e, "DELETE", "/api/workflows", testToken, "", "")
		wantError(t, resp, body, 405, orcheo.EMETHOD)
		if allow := resp.Header.Get("Allow"); allow != "GET, POST" {
			t.Fatalf("Allow = %q", allow)
		}
		resp, body = do(t, e, "POST", "/healthz", "", "", "")
		wantError(t, resp, body, 405, orcheo.EMETHOD)
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.mustWorkflow(t, "auth")
	wfs, runs := e.counts(t)
	for _, tc := range []struct{ name, header string }{
		{"Missing", ""},
		{"Wrong", "Bearer nope"},
		{"Prefix", "Bearer " + testToken[:4]},
		{"NotBearer", "Basic " + testToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/workflows", "/api/workflows/auth/runs", "/api/runs", "/api/workflows/auth/triggers/webhook/config", "/api/nope"} {
				req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(`{"handle":"x","definition":`+okDefinition+`}`))
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				wantError(t, resp, string(b), 401, orcheo.EUNAUTHORIZED)
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: WWW-Authenticate = %q", path, resp.Header.Get("WWW-Authenticate"))
				}
			}
			e.unchanged(t, wfs, runs)
		})
	}
	t.Run("EncodedWebhookPath", func(t *testing.T) {
		// Decoded, this is the (unauthenticated) webhook route; as routed,
		// it is GET /api/workflows/{ref}, which needs the token.
		resp, body := do(t, e, "GET", "/api/workflows/auth%2Ftriggers%2Fwebhook", "", "", "")
		wantError(t, resp, body, 401, orcheo.EUNAUTHORIZED)
	})
	t.Run("ClientWrongToken", func(t *testing.T) {
		_, _, err := client.New(e.http.URL, "wrong").FindWorkflows(context.Background(), false)
		wantCode(t, err, orcheo.EUNAUTHORIZED)
	})
	t.Run("LowerCaseScheme", func(t *testing.T) {
		resp, body := do(t, e, "GET", "/api/workflows", "", "", "")
		wantError(t, resp, body, 401, orcheo.EUNAUTHORIZED)
		req, _ := http.NewRequest("GET", e.http.URL+"/api/workflows", nil)
		req.Header.Set("Authorization", "bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		open := newEnv(t, envOptions{noToken: true})
		if _, _, err := client.New(open.http.URL, "").FindWorkflows(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	})
}

// TestErrorMapping checks every application code's status, and that the
// client turns it back into the same code, with mocks: the store is not
// what this is about.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	for code, status := range map[string]int{
		orcheo.EINVALID: 400, orcheo.EUNAUTHORIZED: 401, orcheo.ENOTFOUND: 404, orcheo.EMETHOD: 405,
		orcheo.ECONFLICT: 409, orcheo.EPRECONDITION: 412, orcheo.ETOOLARGE: 413, orcheo.EUNAVAILABLE: 503, orcheo.EINTERNAL: 500,
	} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			if got := server.ErrorStatusCode(code); got != status {
				t.Fatalf("ErrorStatusCode(%s) = %d, want %d", code, got, status)
			}
			if got := client.FromErrorStatusCode(status); got != code {
				t.Fatalf("FromErrorStatusCode(%d) = %s, want %s", status, got, code)
			}
			s := mockServer()
			s.Workflows.(*mock.WorkflowService).FindWorkflowByRefFn = func(ctx context.Context, ref string) (*orcheo.Workflow, error) {
				return nil, orcheo.Errorf(code, "the %s message", code)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			_, err := client.New(ts.URL, "").FindWorkflowByRef(context.Background(), "x")
			wantCode(t, err, code)
			want := "the " + code + " message"
			if code == orcheo.EINTERNAL {
				want = "Internal error"
			}
			if msg := orcheo.ErrorMessage(err); msg != want {
				t.Fatalf("message %q, want %q", msg, want)
			}
		})
	}
	t.Run("InternalHidesDetails", func(t *testing.T) {
		t.Parallel()
		s := mockServer()
		s.Workflows.(*mock.WorkflowService).FindWorkflowByRefFn = func(ctx context.Context, ref string) (*orcheo.Workflow, error) {
			return nil, errors.New("pq: password authentication failed for user secret")
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/workflows/x", nil))
		if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") || !strings.Contains(rec.Body.String(), `"Internal error"`) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		t.Parallel()
		s := mockServer()
		s.Workflows.(*mock.WorkflowService).FindWorkflowByRefFn = func(ctx context.Context, ref string) (*orcheo.Workflow, error) {
			panic("boom")
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/workflows/x", nil))
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("NonJSONErrorBody", func(t *testing.T) {
		t.Parallel()
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		}))
		defer ts.Close()
		_, err := client.New(ts.URL, "").FindRunByID(context.Background(), orcheo.NewID())
		wantCode(t, err, orcheo.EUNAVAILABLE)
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		err := client.New(url, "").Health(context.Background())
		if err == nil || !strings.Contains(err.Error(), url) {
			t.Fatalf("error %v does not name %s", err, url)
		}
	})
}

// mockServer is a server whose services are empty mocks.
func mockServer() *server.Server {
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers = &mock.WorkflowService{}, &mock.RunService{}, &mock.TriggerService{}
	s.Submitter, s.Engine = &mock.RunSubmitter{}, &mock.Engine{}
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	s.Logger = logger
	return s
}

func TestOpen(t *testing.T) {
	t.Parallel()
	s := mockServer()
	s.Addr = "127.0.0.1:0"
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Port() == 0 || s.URL() != "http://127.0.0.1:"+strconv.Itoa(s.Port()) {
		t.Fatalf("port %d url %s", s.Port(), s.URL())
	}
	if err := client.New(s.URL(), "").Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Open listens first: a busy port fails at once.
	busy := mockServer()
	busy.Addr = "127.0.0.1:" + strconv.Itoa(s.Port())
	if err := busy.Open(); err == nil {
		busy.Close()
		t.Fatal("Open on a busy port succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.New(s.URL(), "").Health(context.Background()); err == nil {
		t.Fatal("server still answers after Close")
	}
	if err := server.NewServer().Close(); err != nil {
		t.Fatalf("Close of a server never opened: %v", err)
	}
	if err := server.NewServer().Open(); err == nil {
		t.Fatal("Open without services succeeded")
	}
}
