package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
	verifier "github.com/orcheo/orcheo/webhook"
)

// memoryGuard is an in-process orcheo.WebhookGuard: no limits, replays
// remembered in a map (the Redis one is tested in tasks/).
type memoryGuard struct {
	mu   sync.Mutex
	seen map[string]string
}

func (g *memoryGuard) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}

func (g *memoryGuard) Remember(_ context.Context, key, value string, _ time.Duration) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.seen[key]; ok {
		return v, nil
	}
	g.seen[key] = value
	return value, nil
}

func (g *memoryGuard) Forget(_ context.Context, key, value string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen[key] == value {
		delete(g.seen, key)
	}
	return nil
}

// failingCreate fails the first CreateRun (or CreateRuns) with an outage,
// as a database that dropped its connections would.
type failingCreate struct {
	orcheo.RunService
	failed atomic.Bool
}

func (f *failingCreate) CreateRun(ctx context.Context, run *orcheo.Run) (*orcheo.Run, bool, error) {
	if f.failed.CompareAndSwap(false, true) {
		return nil, false, orcheo.Errorf(orcheo.EUNAVAILABLE, "database unavailable; try again shortly")
	}
	return f.RunService.CreateRun(ctx, run)
}

func (f *failingCreate) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	if f.failed.CompareAndSwap(false, true) {
		out := make([]orcheo.RunCreated, len(runs))
		for i := range out {
			out[i].Err = orcheo.Errorf(orcheo.EUNAVAILABLE, "database unavailable; try again shortly")
		}
		return out
	}
	return f.RunService.CreateRuns(ctx, runs)
}

// TestWebhookRetryAfterStoreFailureIsNoReplay: a signed request without a
// delivery id whose run could not be stored (503) is retried by its sender
// with the same signature; the retry must be stored, not refused as a
// replay, or the delivery is lost. A real replay is still refused.
func TestWebhookRetryAfterStoreFailureIsNoReplay(t *testing.T) {
	t.Parallel()
	guard := &memoryGuard{seen: map[string]string{}}
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		s.Secrets = mustSecretBox(t)
		s.Verifier = verifier.Verifier{}
		s.WebhookGuard = guard
		s.Runs = &failingCreate{RunService: s.Runs}
	}})
	e.mustWorkflow(t, "hmac")
	if resp, body := putConfig(t, e, "hmac", `{"enabled":true,"verify":{"type":"hmac","header":"x-signature","secret":"hmac-test-secret"}}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("config: %d %s", resp.StatusCode, body)
	}
	const raw = `{"order": 7}`
	m := hmac.New(sha256.New, []byte("hmac-test-secret"))
	m.Write([]byte(raw))
	signed := http.Header{"Content-Type": {"application/json"}, "X-Signature": {hex.EncodeToString(m.Sum(nil))}}

	resp, body := webhook(t, e, "POST", "hmac", "", signed, raw)
	wantError(t, resp, body, http.StatusServiceUnavailable, orcheo.EUNAVAILABLE)
	resp, body = webhook(t, e, "POST", "hmac", "", signed, raw)
	acceptedRun(t, e, resp, body)
	resp, body = webhook(t, e, "POST", "hmac", "", signed, raw)
	wantError(t, resp, body, http.StatusUnauthorized, orcheo.EUNAUTHORIZED)
}
