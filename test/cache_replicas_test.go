package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// replicaWithin is how soon a change made through one API process must
// be seen by another (issue #10).
const replicaWithin = time.Second

// startReplica starts a second api on the stack's database and Redis and
// returns its URL.
func (s *faultStack) startReplica() string {
	s.t.Helper()
	port := testenv.FreePort(s.t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(append([]string{}, s.env...), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port))
	p := startProcess(s.t, env, "api")
	waitHealthy(s.t, p, url)
	return url
}

// seenWithin posts webhooks to base every 50 ms until one is answered
// want, and fails if that takes longer than replicaWithin after since
// (the moment the change's write was answered).
func seenWithin(t *testing.T, since time.Time, what, base, handle string, want int, header ...string) {
	t.Helper()
	for {
		status, body, _ := webhookPost(t, base, handle, `{"n":1}`, header...)
		if status == want {
			t.Logf("%s: seen by the other replica after %s", what, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Since(since) > replicaWithin {
			t.Fatalf("%s: the other replica still answers %d (%s) %s after the change, want %d", what, status, body, time.Since(since).Round(time.Millisecond), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantWebhook posts one webhook to base and fails unless it is answered
// want.
func wantWebhook(t *testing.T, base, handle string, want int, header ...string) {
	t.Helper()
	if status, body, _ := webhookPost(t, base, handle, `{"n":1}`, header...); status != want {
		t.Fatalf("webhook to %s at %s: %d (%s), want %d", handle, base, status, body, want)
	}
}

// TestCacheReplicas: two api processes on one PostgreSQL and one Redis.
// Replica B caches the workflow and webhook config it serves; every
// change made through replica A reaches it within a second (Redis
// pub/sub), including while Redis is down (B then stops caching).
func TestCacheReplicas(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "e2e_cache_replicas")
	b := s.startReplica() // A is s.url, which s.client talks to
	ctx := context.Background()
	setConfig := func(handle string, cfg *orcheo.WebhookConfig) time.Time {
		t.Helper()
		if _, err := s.client.SetWebhookConfig(ctx, handle, cfg); err != nil {
			t.Fatalf("set webhook config of %s through replica A: %v", handle, err)
		}
		return time.Now()
	}

	handle := "replicas-" + randomSuffix()
	s.createWorkflow(handle, `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)
	setConfig(handle, &orcheo.WebhookConfig{Enabled: true})
	// B reads the workflow and config once, then serves them from its
	// cache.
	wantWebhook(t, b, handle, http.StatusAccepted)
	wantWebhook(t, b, handle, http.StatusAccepted)

	since := setConfig(handle, &orcheo.WebhookConfig{Enabled: false})
	seenWithin(t, since, "disabled", b, handle, http.StatusNotFound)

	since = setConfig(handle, &orcheo.WebhookConfig{Enabled: true})
	seenWithin(t, since, "enabled", b, handle, http.StatusAccepted)

	since = setConfig(handle, &orcheo.WebhookConfig{Enabled: true, RequiredHeaders: map[string]string{"x-deploy": "yes"}})
	seenWithin(t, since, "required header", b, handle, http.StatusBadRequest)
	wantWebhook(t, b, handle, http.StatusAccepted, "X-Deploy", "yes")

	if _, err := s.client.ArchiveWorkflow(ctx, handle); err != nil {
		t.Fatal(err)
	}
	seenWithin(t, time.Now(), "archived", b, handle, http.StatusNotFound, "X-Deploy", "yes")

	// A workflow B was asked for before it existed ("not found" cached).
	later := "replicas-later-" + randomSuffix()
	wantWebhook(t, b, later, http.StatusNotFound)
	wantWebhook(t, b, later, http.StatusNotFound)
	s.createWorkflow(later, `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)
	since = setConfig(later, &orcheo.WebhookConfig{Enabled: true})
	seenWithin(t, since, "created", b, later, http.StatusAccepted)

	// Redis down: A's news cannot travel, and B, whose subscription is
	// gone, reads the store for every webhook instead of its cache.
	s.redis.Kill()
	since = setConfig(later, &orcheo.WebhookConfig{Enabled: false})
	seenWithin(t, since, "disabled while Redis is down", b, later, http.StatusNotFound)
	s.redis.Start()
	since = setConfig(later, &orcheo.WebhookConfig{Enabled: true})
	seenWithin(t, since, "enabled after Redis restarted", b, later, http.StatusAccepted)
	// And B caches again: the next change still reaches it through the
	// resubscribed feed.
	wantWebhook(t, b, later, http.StatusAccepted)
	since = setConfig(later, &orcheo.WebhookConfig{Enabled: false})
	seenWithin(t, since, "disabled after Redis restarted", b, later, http.StatusNotFound)
}
