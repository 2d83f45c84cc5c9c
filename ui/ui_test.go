package ui_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/server"
)

func TestPages_NeedSession(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	b := e.browser(t)
	for _, path := range []string{"/ui/", "/ui/runs", "/ui/runs?status=failed", "/ui/runs/" + run.ID} {
		a := b.get(path)
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session: %d to %q, want 303 to the login form", path, a.status, a.header.Get("Location"))
		}
	}
	if a := b.get("/ui/runs/events"); a.status != http.StatusUnauthorized {
		t.Errorf("live stream without a session: %d, want 401", a.status)
	}
	if a := b.get("/ui"); a.status != http.StatusFound || a.header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want 302 to /ui/", a.status, a.header.Get("Location"))
	}
	// Actions without a session go to the login form and do nothing.
	if a := b.post("/ui/runs/"+run.ID+"/cancel", url.Values{"csrf": {"x"}}); a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login" {
		t.Errorf("cancel without a session: %d to %q", a.status, a.header.Get("Location"))
	}
	if got := e.run(t, run.ID).Status; got != orcheo.RunPending {
		t.Errorf("run is %s after a cancel without a session", got)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	t.Run("BadToken", func(t *testing.T) {
		b := e.browser(t)
		a := b.post("/ui/login", url.Values{"token": {"wrong-token-0123456789"}})
		if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "That token is not valid.") {
			t.Fatalf("bad token: %d %s", a.status, a.body)
		}
		if a.header.Get("Set-Cookie") != "" {
			t.Fatalf("bad token set a cookie: %s", a.header.Get("Set-Cookie"))
		}
		if strings.Contains(a.body, "wrong-token-0123456789") {
			t.Fatal("the login page shows the token it was sent")
		}
	})
	t.Run("Cookie", func(t *testing.T) {
		b := e.browser(t)
		a := b.post("/ui/login", url.Values{"token": {adminToken}, "next": {"/ui/runs?status=failed"}})
		if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/runs?status=failed" {
			t.Fatalf("login: %d to %q", a.status, a.header.Get("Location"))
		}
		c := a.header.Get("Set-Cookie")
		for _, want := range []string{"orcheo_session=", "Path=/ui/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
			if !strings.Contains(c, want) {
				t.Errorf("cookie %q lacks %q", c, want)
			}
		}
		if strings.Contains(c, "Secure") {
			t.Errorf("cookie over plain http is Secure, so it would never come back: %q", c)
		}
		if strings.Contains(c, adminToken) {
			t.Error("the cookie holds the token")
		}
		if a := b.get("/ui/runs"); a.status != http.StatusOK || !strings.Contains(a.body, "ops") {
			t.Fatalf("runs page after login: %d", a.status)
		}
		// Signed in, the login form sends the browser on.
		if a := b.get("/ui/login"); a.status != http.StatusSeeOther {
			t.Errorf("login form when signed in: %d", a.status)
		}
	})
	t.Run("SecureBehindTLSProxy", func(t *testing.T) {
		b := e.browser(t)
		b.origin = "https://" + strings.TrimPrefix(e.http.URL, "http://")
		a := b.post("/ui/login", url.Values{"token": {adminToken}})
		if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "Secure") {
			t.Fatalf("login from an https page: %d, cookie %q, want Secure", a.status, a.header.Get("Set-Cookie"))
		}
	})
	t.Run("OpenRedirect", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/api/runs", "/ui/../api", `/\evil.example`, "/ui/login"} {
			b := e.browser(t)
			a := b.post("/ui/login", url.Values{"token": {adminToken}, "next": {next}})
			if loc := a.header.Get("Location"); a.status != http.StatusSeeOther || (loc != "/ui/runs" && !strings.HasPrefix(loc, "/ui/")) || strings.Contains(loc, "evil") || strings.Contains(loc, "..") {
				t.Errorf("next=%q sent the browser to %q", next, loc)
			}
		}
	})
	t.Run("ScopeWithoutUI", func(t *testing.T) {
		a := e.browser(t).post("/ui/login", url.Values{"token": {dispatchToken}})
		if a.status != http.StatusForbidden || a.header.Get("Set-Cookie") != "" {
			t.Fatalf("dispatch token: %d, cookie %q; want 403 and none", a.status, a.header.Get("Set-Cookie"))
		}
	})
	t.Run("CrossOrigin", func(t *testing.T) {
		for _, origin := range []string{"", "https://evil.example", "null"} {
			b := e.browser(t)
			b.origin = origin
			a := b.post("/ui/login", url.Values{"token": {adminToken}})
			if a.status != http.StatusForbidden || a.header.Get("Set-Cookie") != "" {
				t.Errorf("login with Origin %q: %d, cookie %q; want 403 (login CSRF)", origin, a.status, a.header.Get("Set-Cookie"))
			}
		}
	})
}

func TestLogin_FailuresBounded(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	for i := 0; i < 10; i++ {
		if a := b.post("/ui/login", url.Values{"token": {"guess-000000000000" + string(rune('a'+i))}}); a.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, a.status)
		}
	}
	a := b.post("/ui/login", url.Values{"token": {adminToken}})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || a.header.Get("Set-Cookie") != "" {
		t.Fatalf("after 10 failures: %d, Retry-After %q, cookie %q; want 429 without looking at the token", a.status, a.header.Get("Retry-After"), a.header.Get("Set-Cookie"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	anon := e.browser(t)
	b := e.browser(t)
	b.login(adminToken)
	for _, c := range []struct {
		b    *browser
		path string
	}{{anon, "/ui/login"}, {anon, "/ui/runs"}, {anon, "/ui/static/app.js"}, {b, "/ui/runs"}, {b, "/ui/runs/" + run.ID},
		{b, "/ui/nothing-here"}, {b, "/ui/runs/not-an-id"}, {anon, "/ui/nothing"}} {
		a := c.b.get(c.path)
		h := a.header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: nosniff %q, referrer %q", c.path, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
		if strings.Contains(a.body, "<script>") || strings.Contains(a.body, " onclick=") || strings.Contains(a.body, " style=") {
			t.Errorf("%s: inline script or style", c.path)
		}
	}
	if a := b.get("/ui/nothing-here"); a.status != http.StatusNotFound || !strings.Contains(a.body, "There is no page at /ui/nothing-here") {
		t.Errorf("404 page: %d %s", a.status, a.body)
	}
}

func TestActions_CSRF(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	b := e.browser(t)
	b.login(adminToken)
	token := b.csrf()
	other := e.browser(t)
	other.login(adminToken)
	otherToken := other.csrf()
	if otherToken == token {
		t.Fatal("two sessions of one token share a CSRF token")
	}
	path := "/ui/runs/" + run.ID + "/cancel"
	for name, c := range map[string]struct {
		form   url.Values
		origin string
		header []string
	}{
		"Missing":         {form: url.Values{}, origin: b.origin},
		"Wrong":           {form: url.Values{"csrf": {"AAAA" + token[4:]}}, origin: b.origin},
		"OtherSession":    {form: url.Values{"csrf": {otherToken}}, origin: b.origin},
		"ForeignOrigin":   {form: url.Values{"csrf": {token}}, origin: "http://evil.example"},
		"NoOrigin":        {form: url.Values{"csrf": {token}}, origin: ""},
		"CrossSiteFetch":  {form: url.Values{"csrf": {token}}, origin: b.origin, header: []string{"Sec-Fetch-Site", "cross-site"}},
		"ForeignReferer":  {form: url.Values{"csrf": {token}}, origin: "", header: []string{"Referer", "http://evil.example/ui/"}},
		"HeaderWrongCSRF": {form: url.Values{}, origin: b.origin, header: []string{"X-CSRF-Token", otherToken}},
	} {
		t.Run(name, func(t *testing.T) {
			b.origin = c.origin
			a := b.post(path, c.form, c.header...)
			if a.status != http.StatusForbidden {
				t.Fatalf("%d, want 403: %s", a.status, a.body)
			}
			if got := e.run(t, run.ID).Status; got != orcheo.RunPending {
				t.Fatalf("run is %s", got)
			}
		})
	}
	b.origin = e.http.URL
	// A same-origin Referer stands in for a missing Origin.
	b.origin = ""
	a := b.post(path, url.Values{"csrf": {token}}, "Referer", e.http.URL+"/ui/runs/"+run.ID)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/runs/"+run.ID+"?done=cancelled" {
		t.Fatalf("cancel: %d to %q: %s", a.status, a.header.Get("Location"), a.body)
	}
	if got := e.run(t, run.ID).Status; got != orcheo.RunCancelled {
		t.Fatalf("run is %s after cancel", got)
	}
	// Again: the run already ended, said on its page with 409.
	b.origin = e.http.URL
	if a := b.post(path, url.Values{"csrf": {token}}); a.status != http.StatusConflict || !strings.Contains(a.body, "error-box") {
		t.Fatalf("second cancel: %d", a.status)
	}
}

func TestActions_CancelRunningNotifiesWorker(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	e.claim(t, run.ID)
	b := e.browser(t)
	b.login(adminToken)
	a := b.post("/ui/runs/"+run.ID+"/cancel", url.Values{"csrf": {b.csrf()}})
	if a.status != http.StatusSeeOther || !strings.HasSuffix(a.header.Get("Location"), "?done=cancel-requested") {
		t.Fatalf("cancel running: %d to %q", a.status, a.header.Get("Location"))
	}
	if got := e.run(t, run.ID); got.Status != orcheo.RunRunning || !got.CancelRequested {
		t.Fatalf("run %s cancel_requested=%v", got.Status, got.CancelRequested)
	}
	e.cancel.mu.Lock()
	defer e.cancel.mu.Unlock()
	if len(e.cancel.ids) != 1 || e.cancel.ids[0] != run.ID {
		t.Fatalf("worker notified of %v", e.cancel.ids)
	}
}

func TestActions_RetryPublishes(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	e.fail(t, run.ID)
	before := e.queue.count(run.ID)
	b := e.browser(t)
	b.login(adminToken)
	page := b.get("/ui/runs/" + run.ID)
	if !strings.Contains(page.body, `id="retry"`) || strings.Contains(page.body, `id="cancel"`) {
		t.Fatalf("failed run's page: retry button %v, cancel button %v", strings.Contains(page.body, `id="retry"`), strings.Contains(page.body, `id="cancel"`))
	}
	a := b.post("/ui/runs/"+run.ID+"/retry", url.Values{"csrf": {b.csrf()}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("retry: %d %s", a.status, a.body)
	}
	if got := e.run(t, run.ID); got.Status != orcheo.RunPending || got.MaxAttempts != 2 {
		t.Fatalf("after retry: %s, max_attempts %d", got.Status, got.MaxAttempts)
	}
	if e.queue.count(run.ID) != before+1 {
		t.Fatalf("retry published the run %d times, want once", e.queue.count(run.ID)-before)
	}
	if page := b.get(a.header.Get("Location")); !strings.Contains(page.body, "A new attempt was queued.") {
		t.Fatal("no notice after retry")
	}
}

func TestReadToken_CannotAct(t *testing.T) {
	e := newEnv(t)
	pending := e.newRun(t, `{}`)
	failed := e.newRun(t, `{}`)
	e.fail(t, failed.ID)
	b := e.browser(t)
	b.login(readToken)
	for _, id := range []string{pending.ID, failed.ID} {
		page := b.get("/ui/runs/" + id)
		if page.status != http.StatusOK || strings.Contains(page.body, `id="cancel"`) || strings.Contains(page.body, `id="retry"`) {
			t.Fatalf("read token's run page: %d, shows a button", page.status)
		}
	}
	token := b.csrf()
	if a := b.post("/ui/runs/"+pending.ID+"/cancel", url.Values{"csrf": {token}}); a.status != http.StatusForbidden {
		t.Errorf("read token's cancel: %d, want 403", a.status)
	}
	if a := b.post("/ui/runs/"+failed.ID+"/retry", url.Values{"csrf": {token}}); a.status != http.StatusForbidden {
		t.Errorf("read token's retry: %d, want 403", a.status)
	}
	if e.run(t, pending.ID).Status != orcheo.RunPending || e.run(t, failed.ID).Status != orcheo.RunFailed {
		t.Fatal("a read token changed a run")
	}
	// It may still sign out.
	if a := b.post("/ui/logout", url.Values{"csrf": {token}}); a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d, cookie %q", a.status, a.header.Get("Set-Cookie"))
	}
	if a := b.get("/ui/runs"); a.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", a.status)
	}
}

func TestSession_RevokedTokenEndsIt(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login(adminToken)
	if a := b.get("/ui/runs"); a.status != http.StatusOK {
		t.Fatalf("signed in: %d", a.status)
	}
	// A new value for the same name ends the sessions of the old one.
	rotated := append([]server.APIToken{{Name: "ops", Scope: server.ScopeAdmin, Value: "admin-token-rotated-000"}}, testTokens[1:]...)
	if err := e.srv.Tokens.Set(rotated); err != nil {
		t.Fatal(err)
	}
	if a := b.get("/ui/runs"); a.status != http.StatusSeeOther {
		t.Fatalf("after rotating the token: %d, want 303 to login", a.status)
	}
	b.login("admin-token-rotated-000")
	// Removing it ends them too.
	if err := e.srv.Tokens.Set(testTokens[1:]); err != nil {
		t.Fatal(err)
	}
	if a := b.get("/ui/runs"); a.status != http.StatusSeeOther {
		t.Fatalf("after removing the token: %d, want 303 to login", a.status)
	}
}

func TestSession_ScopeFollowsToken(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	b := e.browser(t)
	b.login(adminToken)
	token := b.csrf()
	// The same token, now read-only: its session can no longer act.
	demoted := append([]server.APIToken{{Name: "ops", Scope: server.ScopeRead, Value: adminToken}}, testTokens[1:]...)
	if err := e.srv.Tokens.Set(demoted); err != nil {
		t.Fatal(err)
	}
	if a := b.post("/ui/runs/"+run.ID+"/cancel", url.Values{"csrf": {token}}); a.status != http.StatusForbidden {
		t.Fatalf("demoted token's cancel: %d", a.status)
	}
}

func TestSession_ForgedCookies(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login(adminToken)
	u, _ := url.Parse(e.http.URL + "/ui/")
	var value string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "orcheo_session" {
			value = c.Value
		}
	}
	parts := strings.Split(value, ".")
	if len(parts) != 4 {
		t.Fatalf("cookie %q", value)
	}
	far := time.Now().Add(30 * 24 * time.Hour).Unix()
	for name, v := range map[string]string{
		"MAC":          strings.Join([]string{parts[0], parts[1], parts[2], "AAAA" + parts[3][4:]}, "."),
		"OtherName":    strings.Join([]string{"dmlld2Vy", parts[1], parts[2], parts[3]}, "."), // "viewer"
		"LongerExpiry": strings.Join([]string{parts[0], itoa(far), parts[2], parts[3]}, "."),
		"Expired":      strings.Join([]string{parts[0], "1", parts[2], parts[3]}, "."),
		"Garbage":      "x.y",
		"Huge":         strings.Repeat("a", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/ui/runs", nil)
			req.AddCookie(&http.Cookie{Name: "orcheo_session", Value: v})
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("forged cookie: %d, want 303 to login", resp.StatusCode)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSession_Expires(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, envOptions{cfg: func(c *cfgAlias) { c.Now = func() time.Time { return clock() }; c.SessionLifetime = time.Hour }})
	b := e.browser(t)
	b.login(adminToken)
	if a := b.get("/ui/runs"); a.status != http.StatusOK {
		t.Fatalf("fresh session: %d", a.status)
	}
	clock = func() time.Time { return now.Add(time.Hour + time.Second) }
	if a := b.get("/ui/runs"); a.status != http.StatusSeeOther {
		t.Fatalf("session past its lifetime: %d, want 303", a.status)
	}
}

func TestRunsPage(t *testing.T) {
	e := newEnv(t)
	a1 := e.newRun(t, `{}`)
	a2 := e.newRun(t, `{}`)
	e.fail(t, a2.ID)
	b := e.browser(t)
	b.login(readToken)
	page := b.get("/ui/runs")
	if page.status != http.StatusOK || !strings.Contains(page.body, a1.ID) || !strings.Contains(page.body, a2.ID) {
		t.Fatalf("runs page: %d, lists both runs: %v", page.status, strings.Contains(page.body, a1.ID) && strings.Contains(page.body, a2.ID))
	}
	if strings.Index(page.body, a2.ID) > strings.Index(page.body, a1.ID) {
		t.Error("runs are not newest first")
	}
	if page := b.get("/ui/runs?status=failed"); !strings.Contains(page.body, a2.ID) || strings.Contains(page.body, a1.ID) {
		t.Error("status filter")
	}
	if page := b.get("/ui/runs?q=" + a1.ID); !strings.Contains(page.body, a1.ID) || strings.Contains(page.body, a2.ID) {
		t.Error("search by run id")
	}
	if page := b.get("/ui/runs?workflow=greet&trigger=webhook&queue=default"); !strings.Contains(page.body, a1.ID) {
		t.Error("workflow, trigger and queue filters")
	}
	if page := b.get("/ui/runs?trigger=cron"); strings.Contains(page.body, a1.ID) || !strings.Contains(page.body, "No runs match.") {
		t.Error("trigger filter")
	}
	if page := b.get("/ui/runs?status=bogus"); page.status != http.StatusBadRequest || !strings.Contains(page.body, "error-box") {
		t.Errorf("bad status: %d", page.status)
	}
	if page := b.get("/ui/runs?workflow=nope"); page.status != http.StatusNotFound || !strings.Contains(page.body, "error-box") {
		t.Errorf("unknown workflow: %d", page.status)
	}
	if page := b.get("/ui/runs?since=yesterday"); page.status != http.StatusBadRequest {
		t.Errorf("bad since: %d", page.status)
	}
}

func TestRunsPage_Cursor(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 52; i++ {
		ids = append(ids, e.newRun(t, `{}`).ID)
	}
	b := e.browser(t)
	b.login(readToken)
	page := b.get("/ui/runs")
	i := strings.Index(page.body, `href="/ui/runs?before=`)
	if i < 0 {
		t.Fatal("no link to older runs")
	}
	link := page.body[i+len(`href="`):]
	link = strings.ReplaceAll(link[:strings.Index(link, `"`)], "&amp;", "&")
	older := b.get(link)
	if older.status != http.StatusOK || !strings.Contains(older.body, ids[0]) || !strings.Contains(older.body, ids[1]) || strings.Contains(older.body, ids[51]) {
		t.Fatalf("older page: %d", older.status)
	}
}

func TestRunPage(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{"name":"Ada <script>"}`)
	e.fail(t, run.ID)
	b := e.browser(t)
	b.login(adminToken)
	page := b.get("/ui/runs/" + run.ID)
	for _, want := range []string{"status-failed", "no thanks", `data-node="check"`, "Attempt 1", "greet", "&lt;script&gt;", "<details"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "Ada <script>") {
		t.Error("run input rendered unescaped")
	}
	if page := b.get("/ui/runs/0190aaaa-0000-7000-8000-000000000000"); page.status != http.StatusNotFound {
		t.Errorf("unknown run: %d", page.status)
	}
	if page := b.get("/ui/runs/%2e%2e"); page.status != http.StatusNotFound {
		t.Errorf("malformed id: %d", page.status)
	}
}

func TestNoAuth_DevOnLoopback(t *testing.T) {
	e := newEnv(t, envOptions{noAuth: true})
	b := e.browser(t)
	if a := b.get("/ui/runs"); a.status != http.StatusSeeOther {
		t.Fatalf("without a session: %d", a.status)
	}
	if a := b.post("/ui/login", url.Values{}); a.status != http.StatusSeeOther {
		t.Fatalf("login without auth: %d", a.status)
	}
	if a := b.get("/ui/runs"); a.status != http.StatusOK {
		t.Fatalf("after login: %d", a.status)
	}
}

// stream reads a live stream's events.
type stream struct {
	resp   *http.Response
	events chan [2]string
}

func (b *browser) stream(path string) *stream {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.e.http.URL+path, nil)
	c := *b.c
	c.Timeout = 0
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b.t.Fatalf("stream %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{resp: resp, events: make(chan [2]string, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				s.events <- [2]string{event, strings.TrimPrefix(line, "data: ")}
			case strings.HasPrefix(line, ": ping"):
				s.events <- [2]string{"ping", ""}
			}
		}
	}()
	return s
}

// next waits for the next event named name (skipping others) and returns
// its data; "" and false if the stream ended first.
func (s *stream) next(t *testing.T, name string) (string, bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return "", false
			}
			if ev[0] == name {
				return ev[1], true
			}
		case <-timeout:
			t.Fatalf("no %q event within 5 s", name)
		}
	}
}

func TestEvents_RowsFollowTheRuns(t *testing.T) {
	e := newEnv(t)
	run := e.newRun(t, `{}`)
	b := e.browser(t)
	b.login(readToken)
	s := b.stream("/ui/runs/events")
	if _, ok := s.next(t, "ping"); !ok { // nothing changed: heartbeats only
		t.Fatal("stream ended")
	}
	e.claim(t, run.ID)
	data, _ := s.next(t, "rows")
	if !strings.Contains(data, "status-running") || !strings.Contains(data, run.ID) {
		t.Fatalf("rows after the claim: %s", data)
	}
	added := e.newRun(t, `{}`)
	data, _ = s.next(t, "rows")
	for !strings.Contains(data, added.ID) {
		data, _ = s.next(t, "rows")
	}
	// The run page's stream shows its steps as they are saved; the runs
	// page's stays live beside it (another tab), until the session opens
	// more than streamsPerSession: then its oldest is replaced.
	rs := b.stream("/ui/runs/events?run=" + run.ID)
	third := e.newRun(t, `{}`)
	for data = ""; !strings.Contains(data, third.ID); {
		var ok bool
		if data, ok = s.next(t, "rows"); !ok {
			t.Fatal("a second stream of the session ended the first")
		}
	}
	for range 3 {
		b.stream("/ui/runs/events?run=" + run.ID)
	}
	if _, ok := s.next(t, "replaced"); !ok {
		t.Fatal("a fifth stream of the session did not replace the oldest")
	}
	now := time.Now()
	if err := e.store.Runs.SaveRunStep(context.Background(), &orcheo.RunStep{RunID: run.ID, Attempt: 1, Seq: 1, Node: "greet",
		NodeType: "set", Status: orcheo.StepRunning, StartedAt: now}); err != nil {
		t.Fatal(err)
	}
	data, _ = rs.next(t, "run") // the stream's first read, then the step
	for !strings.Contains(data, `data-node=\"greet\"`) {
		data, _ = rs.next(t, "run")
	}
	// Revoking the token ends the stream at its next read.
	if err := e.srv.Tokens.Set([]server.APIToken{testTokens[0]}); err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.next(t, "signedout"); !ok {
		t.Fatal("revoked session's stream did not say so")
	}
}

func TestEvents_Bounded(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *cfgAlias) { c.MaxStreams = 1 }})
	b := e.browser(t)
	b.login(readToken)
	b.stream("/ui/runs/events")
	other := e.browser(t)
	other.login(readToken)
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/ui/runs/events", nil)
	a := other.do(req)
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("stream over the cap: %d, want 503", a.status)
	}
}

func TestShutdown_EndsStreams(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login(readToken)
	s := b.stream("/ui/runs/events")
	e.ui.Shutdown()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("stream still open after Shutdown")
		}
	}
}
