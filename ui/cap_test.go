package ui_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo/ui"
)

// capDeadline bounds every wait of these tests: generous, for a loaded CI
// machine; a passing run waits milliseconds.
const capDeadline = 30 * time.Second

// TestUnauthenticatedCap: a /ui/ request without a session that verifies
// counts under the API's cap on unauthenticated requests, globally and per
// address, while a signed-in request and a live stream are neither refused
// nor counted. With a cap of 1, a slow POST /ui/login holding its slot makes
// the next unauthenticated /ui/ request answer 503 with Retry-After and
// Connection: close; a forged or expired cookie gets no exemption.
func TestUnauthenticatedCap(t *testing.T) {
	for _, tc := range []struct {
		name            string
		global, perAddr int
		message         string
	}{
		{"global", 1, 0, "too many unauthenticated requests in progress; retry in a few seconds"},
		{"per address", 0, 1, "too many unauthenticated requests in progress from this address; retry in a few seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var skew atomic.Int64 // nanoseconds the UI's clock runs ahead
			e := newEnv(t, envOptions{cfg: func(c *cfgAlias) {
				c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			}})
			// A server of its own, started after the caps are set: they
			// are read on every request and must not change while it serves.
			e.srv.MaxUnauthenticated, e.srv.MaxUnauthenticatedPerIP = tc.global, tc.perAddr
			e.http = httptest.NewServer(e.srv.Handler())
			t.Cleanup(e.http.Close)

			signedIn, other := e.browser(t), e.browser(t)
			signedIn.login(adminToken)
			other.login(readToken)
			forged := forgeCookie(t, sessionCookieOf(t, signedIn))
			stream := signedIn.stream("/ui/runs/events")
			defer stream.resp.Body.Close()
			if a := uiGet(t, e, "/ui/login", ""); a.status != http.StatusOK {
				t.Fatalf("GET /ui/login beside an open stream: %d, want 200 (a stream holds no slot): %s", a.status, a.body)
			}

			slow := startSlowLogin(t, e)
			refused := waitForStatus(t, e, "/ui/login", "", http.StatusServiceUnavailable)
			if refused.header.Get("Retry-After") != "5" || !refused.closed || !strings.Contains(refused.body, tc.message) {
				t.Fatalf("refusal: Retry-After %q, closed %v, body %s; want 5, closed, %q",
					refused.header.Get("Retry-After"), refused.closed, refused.body, tc.message)
			}
			for _, path := range []string{"/ui/", "/ui/runs", "/ui/static/app.css", "/ui", "/ui/nope"} {
				if a := uiGet(t, e, path, ""); a.status != http.StatusServiceUnavailable {
					t.Fatalf("GET %s without a session while the slot is held: %d, want 503", path, a.status)
				}
			}
			if a := uiGet(t, e, "/ui/runs", forged); a.status != http.StatusServiceUnavailable {
				t.Fatalf("GET /ui/runs with a forged cookie: %d, want 503", a.status)
			}
			// Signed in: served, though the one slot is taken.
			if a := signedIn.get("/ui/runs"); a.status != http.StatusOK {
				t.Fatalf("signed-in GET /ui/runs while the slot is held: %d, want 200: %s", a.status, a.body)
			}
			if a := signedIn.get("/ui/static/app.css"); a.status != http.StatusOK {
				t.Fatalf("signed-in GET of a static file while the slot is held: %d, want 200", a.status)
			}
			if _, ok := stream.next(t, "ping"); !ok {
				t.Fatal("the open stream ended while the slot is held")
			}
			otherStream := other.stream("/ui/runs/events") // fails the test unless 200
			otherStream.resp.Body.Close()

			// Expired: the UI's clock past the sessions' lifetime.
			skew.Store(int64(ui.SessionLifetimeDefault + time.Minute))
			if a := signedIn.get("/ui/runs"); a.status != http.StatusServiceUnavailable {
				t.Fatalf("GET /ui/runs with an expired session: %d, want 503", a.status)
			}
			skew.Store(0)

			// The slow login, answered, frees its slot.
			if status := slow.finish(t); status != "HTTP/1.1 401" {
				t.Fatalf("the slow login answered %q, want HTTP/1.1 401 (it held the slot, it was not refused)", status)
			}
			waitForStatus(t, e, "/ui/login", "", http.StatusOK)
		})
	}
}

// uiAnswer is an answer to one request of uiGet.
type uiAnswer struct {
	status int
	header http.Header
	body   string
	closed bool // the server closes the connection after it
}

// uiGet gets path with the session cookie value cookie ("" for none), on
// a fresh connection.
func uiGet(t *testing.T, e *env, path, cookie string) uiAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "orcheo_session", Value: cookie})
	}
	c := &http.Client{Timeout: capDeadline, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return uiAnswer{resp.StatusCode, resp.Header, string(body), resp.Close}
}

// waitForStatus gets path until it answers status, failing the test after
// capDeadline.
func waitForStatus(t *testing.T, e *env, path, cookie string, status int) uiAnswer {
	t.Helper()
	deadline := time.Now().Add(capDeadline)
	for {
		a := uiGet(t, e, path, cookie)
		if a.status == status {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d after %s, want %d", path, a.status, capDeadline, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slowLogin is a POST /ui/login whose body has not all arrived.
type slowLogin struct {
	conn   net.Conn
	rest   string
	status chan string
}

// startSlowLogin sends a login form's headers and the start of its body,
// from this origin, and holds the rest back.
func startSlowLogin(t *testing.T, e *env) *slowLogin {
	t.Helper()
	u, _ := url.Parse(e.http.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	const body = "token=not-a-valid-token-0123456789&next=%2Fui%2Fruns"
	sent := body[:10]
	if _, err := fmt.Fprintf(conn, "POST /ui/login HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
		u.Host, e.http.URL, len(body), sent); err != nil {
		t.Fatal(err)
	}
	s := &slowLogin{conn: conn, rest: body[len(sent):], status: make(chan string, 1)}
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		s.status <- line
	}()
	return s
}

// finish sends the rest of the body and returns the answer's protocol and
// status code ("HTTP/1.1 401").
func (s *slowLogin) finish(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(s.conn, s.rest); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-s.status:
		if len(line) >= 12 {
			return line[:12]
		}
		return line
	case <-time.After(capDeadline):
		t.Fatalf("the slow login got no answer within %s", capDeadline)
		return ""
	}
}

// sessionCookieOf returns the value of b's session cookie.
func sessionCookieOf(t *testing.T, b *browser) string {
	t.Helper()
	u, _ := url.Parse(b.e.http.URL + "/ui/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "orcheo_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// forgeCookie returns value with its MAC's first character changed: a
// cookie of the right shape, name and expiry that does not verify.
func forgeCookie(t *testing.T, value string) string {
	t.Helper()
	parts := strings.Split(value, ".")
	if len(parts) != 4 || parts[3] == "" {
		t.Fatalf("session cookie %q has not four parts", value)
	}
	mac := []byte(parts[3])
	if mac[0] == 'A' {
		mac[0] = 'B'
	} else {
		mac[0] = 'A'
	}
	parts[3] = string(mac)
	return strings.Join(parts, ".")
}
