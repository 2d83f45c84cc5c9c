package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// Who may call a route, as docs/api.md (Authentication) documents it.
var (
	public     []server.Scope // anyone, with or without a token
	admin      = []server.Scope{server.ScopeAdmin}
	read       = []server.Scope{server.ScopeAdmin, server.ScopeRead}
	cronList   = []server.Scope{server.ScopeAdmin, server.ScopeRead, server.ScopeDispatch}
	dispatch   = []server.Scope{server.ScopeAdmin, server.ScopeDispatch}
	metricsTok = []server.Scope{server.ScopeAdmin, server.ScopeMetrics}
)

// routeScopes is what docs/api.md (Authentication) documents for every
// route and method of the router: the scopes that may call it, or public.
// "*" is a route that accepts any method. TestRouteScopes fails for a route
// missing here, so a new route cannot skip the decision.
var routeScopes = map[string][]server.Scope{
	"GET /healthz": public,
	"GET /readyz":  public,
	"GET /metrics": metricsTok,

	"POST /api/workflows":                admin,
	"GET /api/workflows":                 read,
	"GET /api/workflows/{ref}":           read,
	"GET /api/workflows/{ref}/versions":  read,
	"POST /api/workflows/{ref}/versions": admin,
	"POST /api/workflows/{ref}/archive":  admin,

	"POST /api/workflows/{ref}/runs": admin,
	"GET /api/runs":                  read,
	"GET /api/runs/{id}":             read,
	"POST /api/runs/{id}/cancel":     admin,
	"POST /api/runs/{id}/retry":      admin,
	"POST /api/runs/retry":           admin,
	"POST /api/runs/cancel":          admin,
	"POST /api/runs/purge":           admin,

	"* /api/workflows/{ref}/triggers/webhook":                  public,
	"GET /api/workflows/{ref}/triggers/webhook/config":         read,
	"PUT /api/workflows/{ref}/triggers/webhook/config":         admin,
	"POST /api/workflows/{ref}/triggers/webhook/rotate-secret": admin,

	"GET /api/workflows/{ref}/triggers/cron/config":    read,
	"PUT /api/workflows/{ref}/triggers/cron/config":    admin,
	"DELETE /api/workflows/{ref}/triggers/cron/config": admin,
	"GET /api/triggers/cron":                           cronList,
	"POST /api/triggers/cron/dispatch":                 dispatch,

	"GET /api/workers":           read,
	"GET /api/inspect/scheduled": read,
	"POST /api/control/shutdown": admin,
}

// scopedTokens are the tokens of scopedEnv, one per scope, plus the legacy
// Server.Token, which is admin under the name "default".
var scopedTokens = []struct {
	name  string
	scope server.Scope
	value string
}{
	{"ops", server.ScopeAdmin, "admin-0123456789abcdef"},
	{"dashboard", server.ScopeRead, "read-0123456789abcdef"},
	{"beat", server.ScopeDispatch, "dispatch-0123456789abcdef"},
	{"prometheus", server.ScopeMetrics, "metrics-0123456789abcdef"},
	{server.DefaultTokenName, server.ScopeAdmin, testToken},
}

// tokenValue returns the value of the scoped token named name.
func tokenValue(name string) string {
	for _, tok := range scopedTokens {
		if tok.name == name {
			return tok.value
		}
	}
	panic("no token " + name)
}

// scopedEnv is newEnv with every token of scopedTokens and a /metrics
// handler, logging into the returned hook.
func scopedEnv(t *testing.T, setup func(*server.Server)) (*env, *logtest.Hook) {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		var list []server.APIToken
		for _, tok := range scopedTokens[:4] {
			list = append(list, server.APIToken{Name: tok.name, Scope: tok.scope, Value: tok.value})
		}
		tokens, err := server.NewTokens(list)
		if err != nil {
			t.Fatal(err)
		}
		s.Tokens = tokens
		s.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("# metrics\n")) })
		s.Logger = logger
		if setup != nil {
			setup(s)
		}
	}})
	return e, hook
}

// fill replaces each {var} of a path template by a value the route
// matches: a real workflow handle, or a run id.
var templateVar = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

func fill(t *testing.T, tpl string, vars map[string]string) string {
	t.Helper()
	return templateVar.ReplaceAllStringFunc(tpl, func(v string) string {
		name := templateVar.FindStringSubmatch(v)[1]
		val, ok := vars[name]
		if !ok {
			t.Fatalf("route %s: the test has no value for {%s}; add one to vars", tpl, name)
		}
		return val
	})
}

// anyMethod is what a route that accepts any method is tried with.
var anyMethod = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// TestRouteScopes enumerates the router: every route × method is asked
// without a token, with a wrong one and with a token of each scope, and
// must answer 401, 401, and 403 or pass as routeScopes says (issue 9).
func TestRouteScopes(t *testing.T) {
	t.Parallel()
	e, _ := scopedEnv(t, func(s *server.Server) { s.Token = testToken })
	admin := client.New(e.http.URL, tokenValue("ops"))
	ctx := context.Background()
	if _, err := admin.CreateWorkflow(ctx, "scoped", "scoped", "", []byte(okDefinition)); err != nil {
		t.Fatal(err)
	}
	run, err := admin.StartRun(ctx, "scoped", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"ref": "scoped", "id": run.ID}

	routes, err := e.srv.RouteMethods()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var keys []string
	for tpl, methods := range routes {
		for _, m := range methods {
			keys = append(keys, m+" "+tpl)
		}
	}
	sort.Strings(keys)
	h := e.srv.Handler()
	for _, key := range keys {
		seen[key] = true
		need, ok := routeScopes[key]
		if !ok {
			t.Errorf("route %s is not in routeScopes: decide who may call it (requiredScopes in server/auth.go), document it in docs/api.md and add it here", key)
			continue
		}
		method, tpl, _ := strings.Cut(key, " ")
		methods := []string{method}
		if method == "*" {
			methods = anyMethod
		}
		path := fill(t, tpl, vars)
		for _, method := range methods {
			t.Run(method+" "+tpl, func(t *testing.T) {
				call := func(token string) *httptest.ResponseRecorder {
					req := httptest.NewRequest(method, path, strings.NewReader("{}"))
					req.Header.Set("Content-Type", "application/json")
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					if got := e.srv.MatchedTemplate(req); got != tpl {
						t.Fatalf("%s %s reaches route %q, not %s", method, path, got, tpl)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				for _, tc := range []struct{ name, token string }{{"NoToken", ""}, {"WrongToken", "wrong-0123456789abcdef"}} {
					rec := call(tc.token)
					if need == nil {
						wantAllowed(t, tc.name, rec)
					} else {
						wantDenied(t, tc.name, rec, http.StatusUnauthorized, orcheo.EUNAUTHORIZED)
					}
				}
				for _, tok := range scopedTokens {
					rec := call(tok.value)
					name := fmt.Sprintf("token %s (%s)", tok.name, tok.scope)
					if need == nil || slices.Contains(need, tok.scope) {
						wantAllowed(t, name, rec)
					} else {
						wantDenied(t, name, rec, http.StatusForbidden, orcheo.EFORBIDDEN)
					}
				}
			})
		}
	}
	for key := range routeScopes {
		if !seen[key] {
			t.Errorf("routeScopes lists %s, which the router does not have", key)
		}
	}
}

func wantAllowed(t *testing.T, who string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
		t.Errorf("%s: answered %d %s, want it let through", who, rec.Code, rec.Body)
	}
}

func wantDenied(t *testing.T, who string, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != status || body.Error.Code != code {
		t.Errorf("%s: answered %d %s, want %d %s", who, rec.Code, rec.Body, status, code)
	}
	if challenge := rec.Header().Get("WWW-Authenticate"); (status == http.StatusUnauthorized) != (challenge != "") {
		t.Errorf("%s: %d with WWW-Authenticate %q", who, rec.Code, challenge)
	}
}

// TestScopeEdges: paths that are no route, and methods a route lacks, are
// decided by the same rule.
func TestScopeEdges(t *testing.T) {
	t.Parallel()
	e, _ := scopedEnv(t, nil)
	h := e.srv.Handler()
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/nope", "", 401},
		{"GET", "/api/nope", "read-0123456789abcdef", 404},
		{"POST", "/api/nope", "read-0123456789abcdef", 403},
		{"POST", "/api/nope", "admin-0123456789abcdef", 404},
		{"DELETE", "/api/workflows", "read-0123456789abcdef", 403},
		{"DELETE", "/api/workflows", "admin-0123456789abcdef", 405},
		{"HEAD", "/api/workflows", "read-0123456789abcdef", 405},
		{"HEAD", "/api/workflows", "metrics-0123456789abcdef", 403},
		{"GET", "/api/triggers/cron/dispatch", "dispatch-0123456789abcdef", 403},
		{"GET", "/api/triggers/cron", "dispatch-0123456789abcdef", 503}, // no Cron service here
		{"GET", "/api/runs", "dispatch-0123456789abcdef", 403},
		{"POST", "/metrics", "metrics-0123456789abcdef", 403},
		{"GET", "/metrics", "read-0123456789abcdef", 403},
		{"GET", "/metrics", "dispatch-0123456789abcdef", 403},
		{"GET", "/nope", "", 404},
		{"GET", "/healthz", "wrong-0123456789abcdef", 200},
		// Decoded this is the webhook route; as routed it is GET
		// /api/workflows/{ref}, which needs read.
		{"GET", "/api/workflows/x%2Ftriggers%2Fwebhook", "", 401},
		{"GET", "/api/workflows/x%2Ftriggers%2Fwebhook", "metrics-0123456789abcdef", 403},
	} {
		if rec := serve(h, tc.method, tc.path, "192.0.2.1:1", tc.token, ""); rec.Code != tc.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tc.method, tc.path, tc.token, rec.Code, rec.Body, tc.want)
		}
	}
}

// TestAuthLogsTokenName: the request line names the token, never its
// value; the 403 message names it too, for its holder.
func TestAuthLogsTokenName(t *testing.T) {
	t.Parallel()
	e, hook := scopedEnv(t, nil)
	h := e.srv.Handler()
	if rec := serve(h, "GET", "/api/workflows", "192.0.2.1:1", tokenValue("dashboard"), ""); rec.Code != 200 {
		t.Fatalf("read token: %d %s", rec.Code, rec.Body)
	}
	rec := serve(h, "POST", "/api/workflows", "192.0.2.1:1", tokenValue("beat"), "{}")
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), `token \"beat\" has scope dispatch`) {
		t.Fatalf("dispatch token on POST /api/workflows: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "GET", "/api/workflows", "192.0.2.1:1", "wrong-0123456789abcdef", ""); rec.Code != 401 {
		t.Fatalf("wrong token: %d", rec.Code)
	}
	var lines []*logrus.Entry
	for _, entry := range hook.AllEntries() {
		if entry.Message == "request" {
			lines = append(lines, entry)
		}
		text, _ := entry.String()
		for _, tok := range scopedTokens {
			if strings.Contains(text, tok.value) {
				t.Errorf("log line holds the value of token %s: %s", tok.name, text)
			}
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d request lines, want 3", len(lines))
	}
	for i, want := range []any{"dashboard", "beat", nil} {
		if got := lines[i].Data["token"]; got != want {
			t.Errorf("request line %d: token=%v, want %v", i, got, want)
		}
	}
	if fmt.Sprint(server.APIToken{Name: "x", Scope: server.ScopeRead, Value: "do-not-print-me"}) != "x (read)" ||
		strings.Contains(fmt.Sprintf("%#v %+v", server.APIToken{Value: "do-not-print-me"}, server.APIToken{Value: "do-not-print-me"}), "do-not-print-me") {
		t.Error("formatting an APIToken prints its value")
	}
}

// TestAuthCapCountsOnlyInvalid: a request with a valid token of any scope,
// even one answered 403, holds no slot of the unauthenticated cap.
func TestAuthCapCountsOnlyInvalid(t *testing.T) {
	t.Parallel()
	e, _ := scopedEnv(t, func(s *server.Server) { s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP = 1, 0 })
	admin := client.New(e.http.URL, tokenValue("ops"))
	if _, err := admin.CreateWorkflow(context.Background(), "capped", "capped", "", []byte(okDefinition)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetWebhookConfig(context.Background(), "capped", &orcheo.WebhookConfig{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h := e.srv.Handler()
	blocked := startBlocked(t, h, "capped", "192.0.2.1:1000")
	waitInFlight(t, e.srv, 1)

	wantRefused(t, serve(h, "POST", "/api/workflows/capped/triggers/webhook", "198.51.100.1:1", "wrong-0123456789abcdef", "x"), "too many unauthenticated requests")
	if rec := serve(h, "POST", "/api/workflows/capped/triggers/webhook", "198.51.100.1:1", tokenValue("prometheus"), "x"); rec.Code != http.StatusAccepted {
		t.Fatalf("webhook with a metrics token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/api/workflows/capped/runs", "198.51.100.1:1", tokenValue("dashboard"), ""); rec.Code != http.StatusForbidden {
		t.Fatalf("read token on POST: %d %s", rec.Code, rec.Body)
	}
	if code := blocked.release(t); code != http.StatusAccepted {
		t.Fatalf("blocked webhook ended %d", code)
	}
}

// TestTokensSet: a bad set is refused, naming tokens by name only, and
// leaves the old set in place; a good one replaces it at once.
func TestTokensSet(t *testing.T) {
	t.Parallel()
	e, _ := scopedEnv(t, nil)
	h := e.srv.Handler()
	for name, list := range map[string][]server.APIToken{
		"Empty":          nil,
		"DuplicateName":  {{Name: "a", Scope: server.ScopeRead, Value: "value-one-0123456789"}, {Name: "a", Scope: server.ScopeRead, Value: "value-two-0123456789"}},
		"DuplicateValue": {{Name: "a", Scope: server.ScopeRead, Value: "value-one-0123456789"}, {Name: "b", Scope: server.ScopeAdmin, Value: "value-one-0123456789"}},
		"UnknownScope":   {{Name: "a", Scope: "write", Value: "value-one-0123456789"}},
		"BadName":        {{Name: "a b", Scope: server.ScopeRead, Value: "value-one-0123456789"}},
		"EmptyValue":     {{Name: "a", Scope: server.ScopeRead}},
		"SpaceInValue":   {{Name: "a", Scope: server.ScopeRead, Value: "value one 0123456789"}},
	} {
		err := e.srv.Tokens.Set(list)
		if orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Errorf("%s: Set = %v, want invalid", name, err)
		} else if strings.Contains(err.Error(), "value-one") {
			t.Errorf("%s: the message shows a token value: %v", name, err)
		}
	}
	if rec := serve(h, "GET", "/api/workflows", "192.0.2.1:1", tokenValue("dashboard"), ""); rec.Code != 200 {
		t.Fatalf("after refused sets, the old read token: %d", rec.Code)
	}
	if err := e.srv.Tokens.Set([]server.APIToken{{Name: "new", Scope: server.ScopeRead, Value: "new-read-0123456789"}}); err != nil {
		t.Fatal(err)
	}
	if rec := serve(h, "GET", "/api/workflows", "192.0.2.1:1", tokenValue("dashboard"), ""); rec.Code != 401 {
		t.Fatalf("a removed token: %d, want 401", rec.Code)
	}
	if rec := serve(h, "GET", "/api/workflows", "192.0.2.1:1", "new-read-0123456789", ""); rec.Code != 200 {
		t.Fatalf("an added token: %d, want 200", rec.Code)
	}
	if got := strings.Join(e.srv.Tokens.Names(), ","); got != "new (read)" {
		t.Fatalf("Names = %q", got)
	}
}

// TestForbiddenMapping: 403 is forbidden on both sides of the wire.
func TestForbiddenMapping(t *testing.T) {
	t.Parallel()
	if got := server.ErrorStatusCode(orcheo.EFORBIDDEN); got != http.StatusForbidden {
		t.Fatalf("ErrorStatusCode(forbidden) = %d", got)
	}
	if got := client.FromErrorStatusCode(http.StatusForbidden); got != orcheo.EFORBIDDEN {
		t.Fatalf("FromErrorStatusCode(403) = %s", got)
	}
	e, _ := scopedEnv(t, nil)
	_, err := client.New(e.http.URL, tokenValue("beat")).StartRun(context.Background(), "nope", nil, "")
	wantCode(t, err, orcheo.EFORBIDDEN)
}
