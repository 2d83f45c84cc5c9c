package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/orcheo/orcheo"
)

// meddlingProxy stands between the CLI and the API and, when a PUT of a
// webhook config arrives while armed, first lets someone else change the
// config (meanwhile), as another operator could between the CLI's read and
// its write.
type meddlingProxy struct {
	mu sync.Mutex
	// times is how many of the next PUTs meanwhile precedes.
	times     int
	meanwhile func(tb testing.TB)
	puts      int
}

func (p *meddlingProxy) arm(times int, meanwhile func(tb testing.TB)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.times, p.meanwhile, p.puts = times, meanwhile, 0
}

func (p *meddlingProxy) putCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.puts
}

// startMeddlingProxy points b's commands at a meddlingProxy in front of
// its API.
func startMeddlingProxy(t *testing.T, b *cliBundle) *meddlingProxy {
	t.Helper()
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	p := &meddlingProxy{}
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/triggers/webhook/config") {
			p.mu.Lock()
			p.puts++
			var meanwhile func(testing.TB)
			if p.times > 0 {
				p.times--
				meanwhile = p.meanwhile
			}
			p.mu.Unlock()
			if meanwhile != nil {
				meanwhile(t)
			}
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return p
}

// setRateLimit is another operator's change: ref's rate limit to limit
// per minute, straight to the API.
func (b *cliBundle) setRateLimit(ref string, limit int) func(testing.TB) {
	return func(tb testing.TB) {
		ctx := context.Background()
		view, err := b.client.FindWebhookConfig(ctx, ref)
		if err != nil {
			tb.Error(err)
			return
		}
		cfg := view.Config()
		cfg.RateLimit = &orcheo.WebhookRateLimit{Limit: limit, Per: "1m"}
		if _, err := b.client.SetWebhookConfig(ctx, ref, cfg); err != nil {
			tb.Error(err)
		}
	}
}

// TestWebhookCommands_KeepConcurrentChange: enable and disable change the
// config they read on the condition that it did not change meanwhile, so
// another operator's change made between their read and their write is
// kept, and theirs applied on top.
func TestWebhookCommands_KeepConcurrentChange(t *testing.T) {
	t.Parallel()
	b := setupCLI(t)
	b.mustRun(t, "", "triggers", "webhook", "enable", "greet")
	proxy := startMeddlingProxy(t, b)
	ctx := context.Background()

	t.Run("Disable", func(t *testing.T) {
		proxy.arm(1, b.setRateLimit("greet", 7))
		out, _ := b.mustRun(t, "", "triggers", "webhook", "disable", "greet")
		mustContain(t, "disable", out, "webhook of greet disabled")
		view, err := b.client.FindWebhookConfig(ctx, "greet")
		if err != nil {
			t.Fatal(err)
		}
		if view.Enabled || view.RateLimit == nil || view.RateLimit.Limit != 7 {
			t.Fatalf("stored %+v, rate limit %+v: want disabled with the rate limit set meanwhile", view, view.RateLimit)
		}
		if n := proxy.putCount(); n != 2 {
			t.Errorf("%d PUTs, want 2 (the refused one and the one on the new config)", n)
		}
	})

	t.Run("Enable", func(t *testing.T) {
		proxy.arm(1, b.setRateLimit("greet", 9))
		b.mustRun(t, "", "triggers", "webhook", "enable", "greet", "--method", "PUT")
		view, err := b.client.FindWebhookConfig(ctx, "greet")
		if err != nil {
			t.Fatal(err)
		}
		if !view.Enabled || len(view.Methods) != 1 || view.Methods[0] != "PUT" || view.RateLimit == nil || view.RateLimit.Limit != 9 {
			t.Fatalf("stored %+v, rate limit %+v: want enabled for PUT with the rate limit set meanwhile", view, view.RateLimit)
		}
	})

	t.Run("GivesUp", func(t *testing.T) {
		// A config that changes before every write: the command stops,
		// and what it would have changed is not stored.
		limit := 10
		proxy.arm(webhookChangeAttempts, func(tb testing.TB) {
			limit++ // a new value each time, so each is a change
			b.setRateLimit("greet", limit)(tb)
		})
		_, _, err := b.run(t, "", "triggers", "webhook", "disable", "greet")
		if orcheo.ErrorCode(err) != orcheo.EPRECONDITION || !strings.Contains(orcheo.ErrorMessage(err), "run it again") {
			t.Fatalf("err %v: want EPRECONDITION, run it again", err)
		}
		view, err := b.client.FindWebhookConfig(ctx, "greet")
		if err != nil {
			t.Fatal(err)
		}
		if !view.Enabled || view.RateLimit == nil || view.RateLimit.Limit != 10+webhookChangeAttempts {
			t.Fatalf("stored %+v, rate limit %+v: want still enabled", view, view.RateLimit)
		}
		if n := proxy.putCount(); n != webhookChangeAttempts {
			t.Errorf("%d PUTs, want %d", n, webhookChangeAttempts)
		}
	})
}
