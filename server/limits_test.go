package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
)

// openEnv is newEnv on the server's own listener (Open), whose timeouts
// httptest's server would not have.
func openEnv(t *testing.T, setup func(*server.Server)) *env {
	t.Helper()
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		s.Addr = "127.0.0.1:0"
		setup(s)
	}})
	if err := e.srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	return e
}

// TestReadTimeout: a client trickling its body is cut off once the read
// timeout has passed (issue 8, item 8).
func TestReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	e := openEnv(t, func(s *server.Server) { s.ReadTimeout = readTimeout })
	e.mustWorkflow(t, "slow")
	e.mustEnableWebhook(t, "slow")

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/workflows/slow/triggers/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	answered := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- line
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case line := <-answered:
			if took := time.Since(start); took < readTimeout || took > readTimeout+2*time.Second {
				t.Fatalf("cut off after %s, want about %s (answer %q)", took, readTimeout, line)
			}
			if line != "" && !strings.HasPrefix(line, "HTTP/1.1 400") {
				t.Fatalf("answer %q, want 400 or a closed connection", line)
			}
			_, runs := e.counts(t)
			if runs != 0 {
				t.Fatalf("a trickled body stored %d runs", runs)
			}
			return
		case <-tick.C:
			if time.Since(start) > 5*time.Second {
				t.Fatal("a body trickled at 50 bytes/s is still being read after 5s")
			}
			_, _ = conn.Write([]byte("x"))
		}
	}
}

// TestServerDefaults: the timeouts and caps are on unless turned off.
func TestServerDefaults(t *testing.T) {
	s := server.NewServer()
	if s.ReadHeaderTimeout != server.ReadHeaderTimeoutDefault || s.ReadTimeout != server.ReadTimeoutDefault ||
		s.WriteTimeout != server.WriteTimeoutDefault || s.IdleTimeout != server.IdleTimeoutDefault ||
		s.MaxUnauthenticated != server.MaxUnauthenticatedDefault || s.MaxUnauthenticatedPerIP != server.MaxUnauthenticatedPerIPDefault {
		t.Fatalf("defaults %+v", s)
	}
	if server.ReadTimeoutDefault <= 0 || server.WriteTimeoutDefault <= server.ReadTimeoutDefault || server.MaxUnauthenticatedDefault <= 0 {
		t.Fatal("a default turns a limit off")
	}
}

// blockedRequest is an unauthenticated webhook request whose body arrives
// only when release is called; done receives its status.
type blockedRequest struct {
	w    *io.PipeWriter
	done chan int
}

func startBlocked(t *testing.T, h http.Handler, ref, remoteAddr string) *blockedRequest {
	t.Helper()
	pr, pw := io.Pipe()
	req := httptest.NewRequest("POST", "/api/workflows/"+ref+"/triggers/webhook", pr)
	req.RemoteAddr = remoteAddr
	b := &blockedRequest{w: pw, done: make(chan int, 1)}
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		b.done <- rec.Code
	}()
	return b
}

func (b *blockedRequest) release(t *testing.T) int {
	t.Helper()
	_, _ = b.w.Write([]byte("x"))
	_ = b.w.Close()
	return <-b.done
}

// serve sends one request straight to the handler.
func serve(h http.Handler, method, path, remoteAddr, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remoteAddr
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// waitInFlight waits until n unauthenticated requests hold a slot.
func waitInFlight(t *testing.T, s *server.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.UnauthenticatedInFlight() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d unauthenticated requests in flight, want %d", s.UnauthenticatedInFlight(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantRefused(t *testing.T, rec *httptest.ResponseRecorder, message string) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) ||
		!strings.Contains(rec.Body.String(), message) {
		t.Fatalf("answer %d %s, want 503 unavailable with %q", rec.Code, rec.Body, message)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", rec.Header())
	}
}

// TestUnauthenticatedCap: N slow unauthenticated requests hold the cap;
// the next is refused with 503 and Retry-After, while requests with the
// token and the health routes are still served (issue 8, item 8).
func TestUnauthenticatedCap(t *testing.T) {
	t.Parallel()
	const max = 3
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP = max, 0
	}})
	e.mustWorkflow(t, "cap")
	e.mustEnableWebhook(t, "cap")
	h := e.srv.Handler()

	var blocked []*blockedRequest
	for i := range max {
		blocked = append(blocked, startBlocked(t, h, "cap", fmt.Sprintf("192.0.2.%d:1000", i+1)))
	}
	waitInFlight(t, e.srv, max)

	wantRefused(t, serve(h, "POST", "/api/workflows/cap/triggers/webhook", "198.51.100.1:1", "", "x"), "too many unauthenticated requests")
	// Unknown routes without the token count too.
	wantRefused(t, serve(h, "GET", "/nope", "198.51.100.1:1", "", ""), "too many unauthenticated requests")

	if rec := serve(h, "GET", "/api/workflows", "198.51.100.1:1", testToken, ""); rec.Code != http.StatusOK {
		t.Fatalf("management request with the token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/api/workflows/cap/runs", "198.51.100.1:1", testToken, ""); rec.Code != http.StatusAccepted {
		t.Fatalf("manual run with the token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/api/workflows/cap/triggers/webhook", "198.51.100.1:1", testToken, "x"); rec.Code != http.StatusAccepted {
		t.Fatalf("webhook with the token: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "GET", "/healthz", "198.51.100.1:1", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("healthz: %d %s", rec.Code, rec.Body)
	}
	// A wrong token is answered 401 at once, holding no slot.
	if rec := serve(h, "GET", "/api/workflows", "198.51.100.1:1", "wrong", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s", rec.Code, rec.Body)
	}

	for _, b := range blocked {
		if code := b.release(t); code != http.StatusAccepted {
			t.Fatalf("blocked webhook ended %d", code)
		}
	}
	waitInFlight(t, e.srv, 0)
	if rec := serve(h, "POST", "/api/workflows/cap/triggers/webhook", "198.51.100.1:1", "", "x"); rec.Code != http.StatusAccepted {
		t.Fatalf("webhook once the slots are free: %d %s", rec.Code, rec.Body)
	}
}

// TestUnauthenticatedCapPerIP: one address (one IPv6 /64) cannot take more
// than its share of the cap.
func TestUnauthenticatedCapPerIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP = 10, 2
	}})
	e.mustWorkflow(t, "ip")
	e.mustEnableWebhook(t, "ip")
	h := e.srv.Handler()

	var blocked []*blockedRequest
	for _, addr := range []string{"192.0.2.1:1", "192.0.2.1:2", "[2001:db8::1]:1", "[2001:db8::2]:2"} {
		blocked = append(blocked, startBlocked(t, h, "ip", addr))
	}
	waitInFlight(t, e.srv, 4)
	wantRefused(t, serve(h, "POST", "/api/workflows/ip/triggers/webhook", "192.0.2.1:3", "", "x"), "from this address")
	wantRefused(t, serve(h, "POST", "/api/workflows/ip/triggers/webhook", "[2001:db8::ffff]:3", "", "x"), "from this address")
	for _, addr := range []string{"192.0.2.2:1", "[2001:db8:0:1::1]:1"} {
		if rec := serve(h, "POST", "/api/workflows/ip/triggers/webhook", addr, "", "x"); rec.Code != http.StatusAccepted {
			t.Fatalf("webhook from %s: %d %s", addr, rec.Code, rec.Body)
		}
	}
	var wg sync.WaitGroup
	for _, b := range blocked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := b.release(t); code != http.StatusAccepted {
				t.Errorf("blocked webhook ended %d", code)
			}
		}()
	}
	wg.Wait()
	waitInFlight(t, e.srv, 0)
}

// TestRefusedConnectionCloses: a request over the cap is answered at once
// and its connection closed, without waiting for the body it announced.
func TestRefusedConnectionCloses(t *testing.T) {
	t.Parallel()
	e := openEnv(t, func(s *server.Server) { s.MaxUnauthenticated, s.ReadTimeout = 1, 10*time.Second })
	e.mustWorkflow(t, "one")
	e.mustEnableWebhook(t, "one")
	addr := strings.TrimPrefix(e.srv.URL(), "http://")
	const head = "POST /api/workflows/one/triggers/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"

	holder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	fmt.Fprint(holder, head)
	waitInFlight(t, e.srv, 1)

	refused, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	start := time.Now()
	fmt.Fprint(refused, head+"x")
	_ = refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(refused), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the refusal: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("refusal %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if _, err := refused.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("refused connection still open: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("refusal took %s", took)
	}
}
