package ui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/orcheo/orcheo/server"
)

// proxied is a request to the UI straight through the server's handler,
// from peer, with the given headers (name, value, ...).
func proxied(t *testing.T, e *env, peer string, form url.Values, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://orcheo.example/ui/login", strings.NewReader(form.Encode()))
	req.RemoteAddr = peer
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// trustingEnv is newEnv whose server trusts the proxy 10.0.0.0/8. The
// requests of these tests go straight to the handler, in the test's own
// goroutine, so setting the field here races with nothing.
func trustingEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	proxies, err := server.ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.TrustedProxies = proxies
	return e
}

// TestLogin_TrustedProxyHTTPS: X-Forwarded-Proto: https from a trusted
// proxy makes the session cookie Secure and the origin check want https,
// as the server's own TLS does; from any other peer the header counts for
// nothing.
func TestLogin_TrustedProxyHTTPS(t *testing.T) {
	e := trustingEnv(t)
	login := url.Values{"token": {adminToken}, "next": {"/ui/runs"}}
	const proxy, untrusted = "10.0.0.2:40000", "198.51.100.1:40000"

	// No Origin, so the cookie's flag cannot come from an https one.
	rec := proxied(t, e, proxy, login, "X-Forwarded-Proto", "https", "Referer", "https://orcheo.example/ui/login")
	if c := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusSeeOther || !strings.Contains(c, "Secure") {
		t.Fatalf("sign-in through a trusted https proxy: %d, cookie %q; want 303 and Secure", rec.Code, c)
	}
	rec = proxied(t, e, untrusted, login, "X-Forwarded-Proto", "https", "Referer", "https://orcheo.example/ui/login")
	if c := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusSeeOther || strings.Contains(c, "Secure") {
		t.Fatalf("sign-in from an untrusted peer saying https: %d, cookie %q; want 303, not Secure", rec.Code, c)
	}
	// Served over https, an http page is another origin.
	if rec := proxied(t, e, proxy, login, "X-Forwarded-Proto", "https", "Origin", "http://orcheo.example"); rec.Code != http.StatusForbidden {
		t.Fatalf("http Origin through a trusted https proxy: %d, want 403", rec.Code)
	}
	if rec := proxied(t, e, untrusted, login, "X-Forwarded-Proto", "https", "Origin", "http://orcheo.example"); rec.Code != http.StatusSeeOther {
		t.Fatalf("http Origin from an untrusted peer saying https: %d, want 303", rec.Code)
	}
	if rec := proxied(t, e, proxy, login, "X-Forwarded-Proto", "https", "Origin", "https://orcheo.example"); rec.Code != http.StatusSeeOther ||
		!strings.Contains(rec.Header().Get("Set-Cookie"), "Secure") {
		t.Fatalf("https Origin through a trusted https proxy: %d, cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
}

// TestLogin_FailuresPerClientBehindProxy: behind a trusted proxy each
// client has its own budget of failed sign-ins, so one guesser does not
// lock out everyone behind the same proxy; an untrusted peer cannot buy a
// fresh budget by changing X-Forwarded-For.
func TestLogin_FailuresPerClientBehindProxy(t *testing.T) {
	e := trustingEnv(t)
	const proxy, untrusted = "10.0.0.2:40000", "198.51.100.1:40000"
	origin := []string{"Origin", "http://orcheo.example"}
	guess := func(peer, client string, i int) int {
		form := url.Values{"token": {"guess-000000000000" + string(rune('a'+i))}}
		return proxied(t, e, peer, form, append(origin, "X-Forwarded-For", client)...).Code
	}
	for i := range 10 {
		if code := guess(proxy, "203.0.113.1", i); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := guess(proxy, "203.0.113.1", 10); code != http.StatusTooManyRequests {
		t.Fatalf("the guesser after 10 failures: %d, want 429", code)
	}
	login := url.Values{"token": {adminToken}, "next": {"/ui/runs"}}
	if rec := proxied(t, e, proxy, login, append(origin, "X-Forwarded-For", "203.0.113.2")...); rec.Code != http.StatusSeeOther {
		t.Fatalf("another client behind the same proxy: %d, want 303", rec.Code)
	}

	for i := range 10 {
		if code := guess(untrusted, "203.0.113.100", i); code != http.StatusUnauthorized {
			t.Fatalf("untrusted guess %d: %d", i, code)
		}
	}
	if code := guess(untrusted, "203.0.113.101", 10); code != http.StatusTooManyRequests {
		t.Fatalf("an untrusted peer with a new X-Forwarded-For: %d, want 429", code)
	}
}

// TestWorkflowPage_WebhookURLThroughTrustedProxy: the webhook URL a
// workflow page shows has the scheme the browser used, so behind a trusted
// TLS proxy it is https (what a sender must be given), and an untrusted
// peer saying https changes nothing.
func TestWorkflowPage_WebhookURLThroughTrustedProxy(t *testing.T) {
	e := trustingEnv(t)
	const proxy, untrusted = "10.0.0.2:40000", "198.51.100.1:40000"
	rec := proxied(t, e, proxy, url.Values{"token": {adminToken}, "next": {"/ui/runs"}},
		"X-Forwarded-Proto", "https", "Origin", "https://orcheo.example")
	cookies := (&http.Response{Header: rec.Header()}).Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) == 0 {
		t.Fatalf("sign-in: %d, cookies %v", rec.Code, cookies)
	}
	page := func(peer string) string {
		req := httptest.NewRequest(http.MethodGet, "http://orcheo.example/ui/workflows/greet", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-Proto", "https")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("workflow page from %s: %d %s", peer, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	const path = "://orcheo.example/api/workflows/greet/triggers/webhook"
	if body := page(proxy); !strings.Contains(body, "https"+path) {
		t.Errorf("through a trusted https proxy the page lacks https%s", path)
	}
	if body := page(untrusted); !strings.Contains(body, "http"+path) || strings.Contains(body, "https"+path) {
		t.Errorf("from an untrusted peer saying https the page should show http%s", path)
	}
}
