package server_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/server"
	verifier "github.com/orcheo/orcheo/webhook"
)

// conditional sends method to ref's webhook route (config or
// rotate-secret) with If-Match: ifMatch, unless ifMatch is "-".
func conditional(t *testing.T, e *env, method, ref, route, ifMatch, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+"/api/workflows/"+ref+"/triggers/webhook/"+route, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "-" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// etagOf returns a 200 answer's ETag, failing unless it is a strong,
// quoted one.
func etagOf(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	view(t, resp, body)
	tag := resp.Header.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		t.Fatalf("ETag %q: want a strong quoted entity tag", tag)
	}
	return tag
}

// TestWebhookConfigETag checks the config routes' ETag and If-Match: a
// change conditional on a config that is no longer the stored one is 412
// and writes nothing, on both stores.
func TestWebhookConfigETag(t *testing.T) {
	t.Parallel()
	for name, postgresDB := range map[string]string{"SQLite": "", "PostgreSQL": "server_webhook_etag"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			box := mustSecretBox(t)
			e := newEnv(t, envOptions{postgresDB: postgresDB, setup: func(s *server.Server, _ *db.Store) {
				s.Secrets, s.Verifier = box, verifier.Verifier{}
			}})
			wf := e.mustWorkflow(t, "tagged")
			const secret, rotated = "etag-first-s3cret", "etag-rotated-s3cret"
			// ok sends a request that must succeed and returns its ETag.
			ok := func(method, route, ifMatch, body string) string {
				t.Helper()
				resp, b := conditional(t, e, method, "tagged", route, ifMatch, body)
				return etagOf(t, resp, b)
			}
			get := func() string { t.Helper(); return ok("GET", "config", "-", "") }

			never := get() // a config never set has one too
			put := `{"enabled":true,"verify":{"type":"secret","header":"X-Token","secret":"` + secret + `"}}`
			first := ok("PUT", "config", "-", put)
			if first == never {
				t.Fatal("the ETag did not change on PUT")
			}
			if got := get(); got != first {
				t.Fatalf("GET answers ETag %s, the PUT answered %s", got, first)
			}
			sealed := stored(t, e, wf).Verify.SealedSecret
			if strings.Contains(first, secret) || strings.Contains(first, sealed) {
				t.Fatalf("ETag %s shows the secret", first)
			}

			// The same config again: the sealed secret is kept, and the
			// ETag with it.
			same := `{"enabled":true,"verify":{"type":"secret","header":"X-Token"}}`
			if got := ok("PUT", "config", first, same); got != first {
				t.Fatalf("an unchanged config's ETag moved from %s to %s", first, got)
			}

			// Someone raises the rate limit; a PUT conditional on what was
			// read before is refused and leaves that change stored.
			limited := `{"enabled":true,"verify":{"type":"secret","header":"X-Token"},"rate_limit":{"limit":100,"per":"1m"}}`
			second := ok("PUT", "config", first, limited)
			if second == first {
				t.Fatal("the ETag did not change with the rate limit")
			}
			before := stored(t, e, wf)
			disable := `{"enabled":false,"verify":{"type":"secret","header":"X-Token"}}`
			for _, stale := range []string{first, `W/` + second, `"other", ` + first, ""} {
				resp, body := conditional(t, e, "PUT", "tagged", "config", stale, disable)
				wantError(t, resp, body, http.StatusPreconditionFailed, orcheo.EPRECONDITION)
				if resp.Header.Get("ETag") != "" {
					t.Errorf("If-Match %q: a refused PUT answers ETag %s", stale, resp.Header.Get("ETag"))
				}
				if after := stored(t, e, wf); !reflect.DeepEqual(after, before) {
					t.Fatalf("If-Match %q: a refused PUT stored %+v (was %+v)", stale, after, before)
				}
			}
			resp, body := conditional(t, e, "PUT", "tagged", "config", `"unterminated`, disable)
			wantError(t, resp, body, http.StatusBadRequest, orcheo.EINVALID)

			// Conditional on the current ETag (in a list, too), or on *: stored.
			third := ok("PUT", "config", `"other", `+second, disable)
			if cfg := stored(t, e, wf); cfg.Enabled || cfg.RateLimit != nil {
				t.Fatalf("a PUT with the current ETag stored %+v", cfg)
			}
			fourth := ok("PUT", "config", "*", limited)
			if third == second || fourth == third {
				t.Fatalf("ETags %s, %s, %s: want each change to change it", second, third, fourth)
			}

			// Rotation: a stale If-Match is refused, the current one
			// rotates and changes the ETag.
			rot := `{"secret":"` + rotated + `"}`
			resp, body = conditional(t, e, "POST", "tagged", "rotate-secret", third, rot)
			wantError(t, resp, body, http.StatusPreconditionFailed, orcheo.EPRECONDITION)
			if after := stored(t, e, wf).Verify; after.SealedSecret != sealed || after.SealedPreviousSecret != "" {
				t.Fatalf("a refused rotation stored %+v", after)
			}
			fifth := ok("POST", "rotate-secret", fourth, rot)
			if after := stored(t, e, wf).Verify; after.SealedPreviousSecret != sealed {
				t.Fatalf("the rotation stored %+v", after)
			}
			if fifth == fourth || get() != fifth {
				t.Fatalf("after rotation ETag %s (before %s), GET answers %s", fifth, fourth, get())
			}
		})
	}
}

// interleavingTriggers runs meanwhile, once, at the start of the next
// UpdateWebhookConfig: a change another request makes after this one's
// handler began and before its store update.
type interleavingTriggers struct {
	orcheo.TriggerService
	mu        sync.Mutex
	meanwhile func()
}

func (t *interleavingTriggers) UpdateWebhookConfig(ctx context.Context, workflowID string,
	fn func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error) {
	t.mu.Lock()
	meanwhile := t.meanwhile
	t.meanwhile = nil
	t.mu.Unlock()
	if meanwhile != nil {
		meanwhile()
	}
	return t.TriggerService.UpdateWebhookConfig(ctx, workflowID, fn)
}

// TestWebhookConfigETag_CheckedInUpdate: If-Match is checked against the
// config the store's update locked, not one read before it, so a change
// that lands between the handler's start and its update is not undone.
func TestWebhookConfigETag_CheckedInUpdate(t *testing.T) {
	t.Parallel()
	triggers := &interleavingTriggers{}
	e := newEnv(t, envOptions{postgresDB: "server_webhook_etag_lock", setup: func(s *server.Server, _ *db.Store) {
		triggers.TriggerService = s.Triggers
		s.Triggers = triggers
	}})
	wf := e.mustWorkflow(t, "locked")
	tag := func(resp *http.Response, body string) string { t.Helper(); return etagOf(t, resp, body) }
	read := tag(conditional(t, e, "PUT", "locked", "config", "-", `{"enabled":true}`))

	triggers.mu.Lock()
	triggers.meanwhile = func() {
		// The inner store, so that this change is not interleaved itself.
		if _, err := triggers.TriggerService.UpdateWebhookConfig(context.Background(), wf.ID,
			func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
				stored.RateLimit = &orcheo.WebhookRateLimit{Limit: 5, Per: "1m"}
				return stored, nil
			}); err != nil {
			t.Error(err)
		}
	}
	triggers.mu.Unlock()
	resp, body := conditional(t, e, "PUT", "locked", "config", read, `{"enabled":false}`)
	wantError(t, resp, body, http.StatusPreconditionFailed, orcheo.EPRECONDITION)
	if cfg := stored(t, e, wf); !cfg.Enabled || cfg.RateLimit == nil || cfg.RateLimit.Limit != 5 {
		t.Fatalf("stored %+v: want the change made meanwhile, and not the refused one", cfg)
	}
}
