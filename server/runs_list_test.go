package server_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

func TestRunList(t *testing.T) {
	ctx := context.Background()

	t.Run("CursorPages", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "p")
		var want []string
		for i := 0; i < 5; i++ {
			run, err := e.client.StartRun(ctx, "p", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			want = append([]string{run.ID}, want...) // newest first
		}
		var got []string
		q := client.RunQuery{Workflow: "p", Limit: 2}
		for pages := 1; ; pages++ {
			page, err := e.client.ListRuns(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Runs {
				got = append(got, r.ID)
			}
			if !page.HasMore {
				if pages != 3 || page.NextCursor != "" {
					t.Fatalf("%d pages, last %+v; want 3 and no cursor", pages, page)
				}
				break
			}
			if page.NextCursor == "" || len(page.NextCursor) > 128 {
				t.Fatalf("page %d: cursor %q", pages, page.NextCursor)
			}
			q.Cursor = page.NextCursor
			// A run started between pages does not show up on later ones.
			if _, err := e.client.StartRun(ctx, "p", nil, ""); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages = %v, want %v", got, want)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		wf := e.mustWorkflow(t, "f")
		old, err := e.client.StartRun(ctx, "f", nil, "key-1")
		if err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		time.Sleep(5 * time.Millisecond) // created_at is the store's clock: strictly after cut
		recent, err := e.client.StartRun(ctx, "f", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		for name, tc := range map[string]struct {
			q    client.RunQuery
			want []string
		}{
			"Queue":          {client.RunQuery{Workflow: "f", Queue: orcheo.DefaultQueue}, []string{recent.ID, old.ID}},
			"OtherQueue":     {client.RunQuery{Workflow: "f", Queue: "other"}, nil},
			"Since":          {client.RunQuery{Workflow: wf.ID, Since: cut}, []string{recent.ID}},
			"Until":          {client.RunQuery{Workflow: "f", Until: cut}, []string{old.ID}},
			"ID":             {client.RunQuery{ID: recent.ID}, []string{recent.ID}},
			"IdempotencyKey": {client.RunQuery{IdempotencyKey: "key-1"}, []string{old.ID}},
		} {
			page, err := e.client.ListRuns(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for _, r := range page.Runs {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tc.want) || page.HasMore {
				t.Fatalf("%s: %v (more %v), want %v", name, got, page.HasMore, tc.want)
			}
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "i")
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		id := orcheo.NewID()
		for _, tc := range []struct{ query, message string }{
			{"offset=5", "cursor"},
			{"cursor=garbled!", "cursor"},
			{"cursor=" + b64("v1.123"), "cursor"},
			{"cursor=" + b64("v2.123."+id), "cursor"},
			{"cursor=" + b64("v1.abc."+id), "cursor"},
			{"cursor=" + b64("v1.-5."+id), "cursor"},
			{"cursor=" + b64("v1.123.not-an-id"), "cursor"},
			{"cursor=" + strings.Repeat("A", 200), "cursor"},
			{"since=yesterday", "since"},
			{"until=2026-13-01T00:00:00Z", "until"},
			{"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since must be before until"},
			{"id=nope", "not a run id"},
			{"queue=Bad%20Queue", "queue"},
			{"idempotency_key=" + strings.Repeat("k", 256), "idempotency key"},
			{"status=done", "status"},
			{"trigger=beat", "trigger"},
			{"limit=1001", "limit"},
		} {
			resp, body := do(t, e, "GET", "/api/runs?"+tc.query, testToken, "", "")
			wantError(t, resp, body, 400, orcheo.EINVALID)
			if !strings.Contains(body, tc.message) {
				t.Errorf("%s: body %s does not say %q", tc.query, body, tc.message)
			}
		}
		resp, body := do(t, e, "GET", "/api/runs?workflow=nope", testToken, "", "")
		wantError(t, resp, body, 404, orcheo.ENOTFOUND)
		// offset=0 is what old clients send: still accepted.
		resp, body = do(t, e, "GET", "/api/runs?offset=0&"+url.Values{"workflow": {"i"}}.Encode(), testToken, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("offset=0: %d %s", resp.StatusCode, body)
		}
	})
}
