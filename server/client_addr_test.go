package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
)

// addrRecorder is a UI that records the address and scheme the server
// gave the last request: the /ui/ route is the first the chain hands on.
type addrRecorder struct {
	mu         sync.Mutex
	remoteAddr string
	https      bool
}

func (u *addrRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.remoteAddr, u.https = r.RemoteAddr, orcheo.ForwardedHTTPS(r.Context())
}

func (u *addrRecorder) Shutdown() {}

// SessionToken counts every UI request as signed in, should the server ask.
func (u *addrRecorder) SessionToken(*http.Request) (string, bool) { return "recorder", true }

func mustTrustedProxies(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	p, err := server.ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forwardedRequest is a request from peer carrying the given
// X-Forwarded-For headers (one header each) and X-Forwarded-Proto.
func forwardedRequest(method, path, peer, proto string, forwardedFor ...string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader("{}"))
	req.RemoteAddr = peer
	for _, v := range forwardedFor {
		req.Header.Add("X-Forwarded-For", v)
	}
	if proto != "" {
		req.Header.Set("X-Forwarded-Proto", proto)
	}
	return req
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := server.ParseTrustedProxies(" 10.0.0.0/8, 127.0.0.1,::1 ,, 10.1.2.3/8, ::ffff:192.0.2.0/120")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128", "10.0.0.0/8", "192.0.2.0/24"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if got, err := server.ParseTrustedProxies(""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"proxy.internal", "10.0.0.0/33", "10.0.0.1:80", "fe80::1%eth0", "10.0.0.0/8, *"} {
		if _, err := server.ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := server.ParseTrustedProxies("10.0.0.1, nope/8"); err == nil || !strings.Contains(err.Error(), `"nope/8"`) {
		t.Errorf("the error does not name the entry: %v", err)
	}
}

// TestClientAddr: behind a trusted proxy every middleware and route sees
// the client X-Forwarded-For names, read from the right; from any other
// peer, or with no trusted proxies, the headers change nothing.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	ui := &addrRecorder{}
	s := server.NewServer()
	s.UI = ui
	s.TrustedProxies = mustTrustedProxies(t, "10.0.0.0/8, 192.0.2.10, 2001:db8:ffff::/48")
	h := s.Handler()

	const proxy = "10.0.0.2:5000"
	for _, c := range []struct {
		name, peer   string
		forwardedFor []string
		want         string
	}{
		{"UntrustedPeer", "198.51.100.7:4000", []string{"203.0.113.1"}, "198.51.100.7:4000"},
		{"TrustedPeer", proxy, []string{"203.0.113.1"}, "203.0.113.1:5000"},
		{"TrustedPeerNoHeader", proxy, nil, proxy},
		{"TrustedSingleAddress", "192.0.2.10:80", []string{"203.0.113.1"}, "203.0.113.1:80"},
		{"NeighbourOfTrustedAddress", "192.0.2.11:80", []string{"203.0.113.1"}, "192.0.2.11:80"},
		// What the client wrote itself is left of the proxy's entry.
		{"SpoofedLeftmost", proxy, []string{"1.1.1.1, 10.9.9.9, 203.0.113.1"}, "203.0.113.1:5000"},
		{"ChainOfProxies", proxy, []string{"1.1.1.1, 203.0.113.1, 10.0.0.7, 10.0.0.3"}, "203.0.113.1:5000"},
		{"MultipleHeaders", proxy, []string{"6.6.6.6", "203.0.113.1, 10.0.0.3"}, "203.0.113.1:5000"},
		{"MultipleHeadersLastWins", proxy, []string{"6.6.6.6", "203.0.113.1"}, "203.0.113.1:5000"},
		{"EveryHopTrusted", proxy, []string{"10.1.1.1, 10.0.0.3"}, "10.1.1.1:5000"},
		{"Whitespace", proxy, []string{" 203.0.113.1 ,\t10.0.0.3 "}, "203.0.113.1:5000"},
		{"HopWithPort", proxy, []string{"203.0.113.1:1234"}, "203.0.113.1:5000"},
		{"IPv6Client", proxy, []string{"2001:db8:1::5"}, "[2001:db8:1::5]:5000"},
		{"IPv6ClientWithPort", proxy, []string{"[2001:db8:1::5]:99"}, "[2001:db8:1::5]:5000"},
		{"IPv6Proxy", "[2001:db8:ffff::1]:443", []string{"203.0.113.9, 2001:db8:ffff::2"}, "203.0.113.9:443"},
		{"MappedIPv4", proxy, []string{"::ffff:203.0.113.1"}, "203.0.113.1:5000"},
		{"MappedTrustedPeer", "[::ffff:10.0.0.2]:5000", []string{"203.0.113.1"}, "203.0.113.1:5000"},
		// Garbage where the walk stops keeps the peer; left of it, it is
		// never read.
		{"MalformedAtStop", proxy, []string{"203.0.113.1, proxy.internal"}, proxy},
		{"MalformedLeftOfStop", proxy, []string{"<script>, 203.0.113.1"}, "203.0.113.1:5000"},
		{"EmptyEntry", proxy, []string{"203.0.113.1,"}, proxy},
		{"EmptyHeader", proxy, []string{""}, proxy},
		{"Zone", proxy, []string{"fe80::1%eth0"}, proxy},
		{"Unknown", proxy, []string{"unknown"}, proxy},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.ServeHTTP(httptest.NewRecorder(), forwardedRequest("GET", "/ui/runs", c.peer, "", c.forwardedFor...))
			ui.mu.Lock()
			defer ui.mu.Unlock()
			if ui.remoteAddr != c.want {
				t.Fatalf("X-Forwarded-For %q from %s: RemoteAddr %q, want %q", c.forwardedFor, c.peer, ui.remoteAddr, c.want)
			}
		})
	}

	for _, c := range []struct {
		name, peer, proto string
		want              bool
	}{
		{"TrustedHTTPS", proxy, "https", true},
		{"TrustedHTTPSUpperCase", proxy, "HTTPS", true},
		{"TrustedHTTP", proxy, "http", false},
		{"NearestProxyHTTPS", proxy, "http, https", true},
		{"NearestProxyHTTP", proxy, "https, http", false},
		{"UntrustedHTTPS", "198.51.100.7:4000", "https", false},
		{"TrustedNone", proxy, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.ServeHTTP(httptest.NewRecorder(), forwardedRequest("GET", "/ui/runs", c.peer, c.proto))
			ui.mu.Lock()
			defer ui.mu.Unlock()
			if ui.https != c.want {
				t.Fatalf("X-Forwarded-Proto %q from %s: https %v, want %v", c.proto, c.peer, ui.https, c.want)
			}
		})
	}

	t.Run("NoTrustedProxies", func(t *testing.T) {
		ui := &addrRecorder{}
		s := server.NewServer()
		s.UI = ui
		s.Handler().ServeHTTP(httptest.NewRecorder(), forwardedRequest("GET", "/ui/runs", "127.0.0.1:7000", "https", "203.0.113.1"))
		if ui.remoteAddr != "127.0.0.1:7000" || ui.https {
			t.Fatalf("with no trusted proxies: RemoteAddr %q, https %v", ui.remoteAddr, ui.https)
		}
	})
}

// perKeyGuard is an orcheo.WebhookGuard that counts requests per key,
// without windows: enough to tell the per-IP buckets apart.
type perKeyGuard struct {
	mu    sync.Mutex
	count map[string]int
}

func (g *perKeyGuard) Allow(_ context.Context, key string, limit int, _ time.Duration) (bool, time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.count[key]++
	return g.count[key] <= limit, time.Second, nil
}

func (g *perKeyGuard) Remember(_ context.Context, _, value string, _ time.Duration) (string, error) {
	return value, nil
}

func (g *perKeyGuard) Forget(context.Context, string, string) error { return nil }

// TestTrustedProxy_PerClientLimits: behind a trusted proxy two clients get
// separate per-address caps and separate webhook per-IP rate limits, and a
// run's source_ip is its client; an untrusted peer's X-Forwarded-For gets
// it nothing.
func TestTrustedProxy_PerClientLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{postgresDB: "server_proxies", setup: func(s *server.Server, _ *db.Store) {
		s.TrustedProxies = mustTrustedProxies(t, "10.0.0.0/8")
		s.MaxUnauthenticated, s.MaxUnauthenticatedPerIP = 10, 1
		s.WebhookGuard = &perKeyGuard{count: map[string]int{}}
	}})
	h := e.srv.Handler()
	const proxy, untrusted = "10.0.0.2:5000", "198.51.100.9:6000"
	hook := func(peer string, forwardedFor ...string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, forwardedRequest("POST", "/api/workflows/limited/triggers/webhook", peer, "", forwardedFor...))
		return rec
	}
	sourceIP := func(t *testing.T, rec *httptest.ResponseRecorder) string {
		t.Helper()
		resp := &http.Response{StatusCode: rec.Code, Header: rec.Header()}
		_, in := acceptedRun(t, e, resp, rec.Body.String())
		return in.SourceIP
	}

	t.Run("UnauthenticatedCap", func(t *testing.T) {
		e.mustWorkflow(t, "capped")
		e.mustEnableWebhook(t, "capped")
		pr, pw := io.Pipe()
		held := httptest.NewRequest("POST", "/api/workflows/capped/triggers/webhook", pr)
		held.RemoteAddr = proxy
		held.Header.Set("X-Forwarded-For", "203.0.113.1")
		done := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, held)
			done <- rec.Code
		}()
		waitInFlight(t, e.srv, 1)
		capped := func(peer string, forwardedFor ...string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, forwardedRequest("POST", "/api/workflows/capped/triggers/webhook", peer, "", forwardedFor...))
			return rec
		}
		wantRefused(t, capped(proxy, "203.0.113.1"), "from this address")
		if rec := capped(proxy, "203.0.113.2"); rec.Code != http.StatusAccepted {
			t.Fatalf("another client behind the proxy: %d %s, want 202", rec.Code, rec.Body)
		}
		_, _ = pw.Write([]byte("{}"))
		_ = pw.Close()
		if code := <-done; code != http.StatusAccepted {
			t.Fatalf("held webhook ended %d", code)
		}
		waitInFlight(t, e.srv, 0)
	})

	e.mustWorkflow(t, "limited")
	if resp, body := putConfig(t, e, "limited", `{"enabled":true,"rate_limit":{"limit":100,"per":"1m","per_ip":1}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("config: %d %s", resp.StatusCode, body)
	}
	t.Run("RateLimitPerIP", func(t *testing.T) {
		if got := sourceIP(t, hook(proxy, "203.0.113.1")); got != "203.0.113.1" {
			t.Fatalf("source_ip %q, want the client 203.0.113.1", got)
		}
		if rec := hook(proxy, "203.0.113.1"); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("second call of one client: %d %s, want 429", rec.Code, rec.Body)
		}
		// A client forging an entry left of the proxy's is still itself.
		if rec := hook(proxy, "203.0.113.77, 203.0.113.1"); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("the same client with a forged entry: %d %s, want 429", rec.Code, rec.Body)
		}
		if got := sourceIP(t, hook(proxy, "2001:db8:1::5")); got != "2001:db8:1::5" {
			t.Fatalf("source_ip %q, want the client 2001:db8:1::5", got)
		}
	})
	t.Run("UntrustedPeer", func(t *testing.T) {
		if got := sourceIP(t, hook(untrusted, "203.0.113.50")); got != "198.51.100.9" {
			t.Fatalf("source_ip %q, want the peer 198.51.100.9", got)
		}
		if rec := hook(untrusted, "203.0.113.51"); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("an untrusted peer changing X-Forwarded-For: %d %s, want 429 (one bucket)", rec.Code, rec.Body)
		}
	})
}
