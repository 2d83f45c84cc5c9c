package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/mock"
	"github.com/orcheo/orcheo/server"
	verifier "github.com/orcheo/orcheo/webhook"
)

// countingWorkflows counts the lookups the webhook route makes.
type countingWorkflows struct {
	orcheo.WorkflowService
	n atomic.Int64
}

func (c *countingWorkflows) FindWorkflowByRef(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	c.n.Add(1)
	return c.WorkflowService.FindWorkflowByRef(ctx, ref)
}

// countingTriggers counts config lookups; before, if set, runs first.
type countingTriggers struct {
	orcheo.TriggerService
	n      atomic.Int64
	before atomic.Pointer[func()]
}

func (c *countingTriggers) FindWebhookConfig(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error) {
	c.n.Add(1)
	if f := c.before.Load(); f != nil {
		(*f)()
	}
	return c.TriggerService.FindWebhookConfig(ctx, workflowID)
}

// testFeed is a change feed the test drives: it hands the server's one
// subscription a channel and records what the server publishes.
type testFeed struct {
	mock.ChangeFeed
	events chan orcheo.ChangeEvent

	mu        sync.Mutex
	published []string
}

func newTestFeed() *testFeed {
	f := &testFeed{events: make(chan orcheo.ChangeEvent)}
	f.PublishFn = func(_ context.Context, id string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.published = append(f.published, id)
		return nil
	}
	f.SubscribeFn = func(ctx context.Context) <-chan orcheo.ChangeEvent {
		out := make(chan orcheo.ChangeEvent)
		go func() {
			defer close(out)
			for {
				select {
				case ev := <-f.events:
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		return out
	}
	return f
}

// send delivers ev to the server's cache and returns once it is applied:
// the cache takes events one at a time, so taking the one after (of no
// kind, which it ignores) means it is done with ev.
func (f *testFeed) send(tb testing.TB, ev orcheo.ChangeEvent) {
	tb.Helper()
	for _, e := range []orcheo.ChangeEvent{ev, {}, {}} {
		select {
		case f.events <- e:
		case <-time.After(5 * time.Second):
			tb.Fatalf("the cache did not take change event %+v", e)
		}
	}
}

func (f *testFeed) publishedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.published...)
}

// cacheEnv is a server with its webhook cache on a testFeed, over a store
// whose webhook lookups are counted.
type cacheEnv struct {
	*env
	feed      *testFeed
	workflows *countingWorkflows
	triggers  *countingTriggers
}

type cacheOptions struct {
	ttl  time.Duration
	size int
	// noFeed leaves Server.Changes nil.
	noFeed bool
	// postgresDB, if set, puts the store on PostgreSQL.
	postgresDB string
	// secrets seal webhook secrets.
	secrets orcheo.SecretBox
}

func newCacheEnv(tb testing.TB, opts cacheOptions) *cacheEnv {
	tb.Helper()
	ce := &cacheEnv{feed: newTestFeed()}
	ce.env = newEnv(tb, envOptions{postgresDB: opts.postgresDB, setup: func(s *server.Server, st *db.Store) {
		ce.workflows = &countingWorkflows{WorkflowService: st.Workflows}
		ce.triggers = &countingTriggers{TriggerService: st.Triggers}
		s.Workflows, s.Triggers = ce.workflows, ce.triggers
		if !opts.noFeed {
			s.Changes = ce.feed
		}
		s.WebhookCacheTTL, s.WebhookCacheSize = opts.ttl, opts.size
		if opts.secrets != nil {
			s.Secrets, s.Verifier = opts.secrets, verifier.Verifier{}
		}
		s.Addr = "127.0.0.1:0"
	}})
	// Open starts the cache; requests go through e.http all the same.
	if err := ce.srv.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ce.srv.Close() })
	return ce
}

// lookups returns the workflow and config lookups made so far.
func (ce *cacheEnv) lookups() (workflows, configs int64) {
	return ce.workflows.n.Load(), ce.triggers.n.Load()
}

// post sends a webhook to ref and returns its status and body.
func (ce *cacheEnv) post(tb testing.TB, ref string) (int, string) {
	tb.Helper()
	resp, body := webhook(tb, ce.env, "POST", ref, "", http.Header{"Content-Type": {"application/json"}}, `{"n":1}`)
	return resp.StatusCode, body
}

// wantStatus posts to ref and fails unless the status is want and the
// store saw wantLookups more workflow lookups (each with its config
// lookup, for a workflow that exists).
func (ce *cacheEnv) wantStatus(tb testing.TB, ref string, want int, wantLookups int64) string {
	tb.Helper()
	w0, _ := ce.lookups()
	status, body := ce.post(tb, ref)
	if status != want {
		tb.Fatalf("webhook to %s: status %d, want %d: %s", ref, status, want, body)
	}
	if w1, _ := ce.lookups(); w1-w0 != wantLookups {
		tb.Fatalf("webhook to %s: %d workflow lookups in the store, want %d", ref, w1-w0, wantLookups)
	}
	return body
}

func TestWebhookCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SecondWebhookFromCache", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.mustWorkflow(t, "hot")
		ce.mustEnableWebhook(t, "hot")
		ce.wantStatus(t, "hot", http.StatusAccepted, 1)
		w0, c0 := ce.lookups()
		ce.wantStatus(t, "hot", http.StatusAccepted, 0)
		ce.wantStatus(t, "hot", http.StatusAccepted, 0)
		if w, c := ce.lookups(); w != w0 || c != c0 {
			t.Fatalf("lookups went from %d+%d to %d+%d, want none", w0, c0, w, c)
		}
		if _, runs := ce.counts(t); runs != 3 {
			t.Fatalf("%d runs stored, want 3", runs)
		}
	})

	t.Run("ByIDAndHandle", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		wf := ce.mustWorkflow(t, "both")
		ce.mustEnableWebhook(t, "both")
		ce.wantStatus(t, "both", http.StatusAccepted, 1)
		// The handle's lookup cached the workflow under its id too.
		ce.wantStatus(t, wf.ID, http.StatusAccepted, 0)
		ce.wantStatus(t, "both", http.StatusAccepted, 0)
	})

	t.Run("WriteInvalidatesAtOnce", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		wf := ce.mustWorkflow(t, "writes")
		ce.mustEnableWebhook(t, "writes")
		ce.wantStatus(t, "writes", http.StatusAccepted, 1)
		ce.wantStatus(t, "writes", http.StatusAccepted, 0)

		// Disabled through this server: refused at once, no feed event
		// needed.
		if _, err := ce.client.SetWebhookConfig(ctx, "writes", &orcheo.WebhookConfig{Enabled: false}); err != nil {
			t.Fatal(err)
		}
		disabled := ce.wantStatus(t, "writes", http.StatusNotFound, 1)
		ce.wantStatus(t, "writes", http.StatusNotFound, 0) // a disabled trigger is cached too

		ce.mustEnableWebhook(t, "writes")
		ce.wantStatus(t, "writes", http.StatusAccepted, 1)

		// A new version: the next run starts it.
		if _, err := ce.client.CreateWorkflowVersion(ctx, "writes", []byte(okDefinition)); err != nil {
			t.Fatal(err)
		}
		status, body := ce.post(t, "writes")
		run, _ := acceptedRun(t, ce.env, &http.Response{StatusCode: status}, body)
		if stored, err := ce.store.Runs.FindRunByID(ctx, run.ID); err != nil || stored.Version != 2 {
			t.Fatalf("run after the new version: %+v, %v; want version 2", stored, err)
		}

		// Archived: the same 404 as unknown and disabled.
		if _, err := ce.client.ArchiveWorkflow(ctx, "writes"); err != nil {
			t.Fatal(err)
		}
		archived := ce.wantStatus(t, "writes", http.StatusNotFound, 1)
		unknown := ce.wantStatus(t, "no-such-workflow", http.StatusNotFound, 1)
		if disabled != archived || archived != unknown {
			t.Fatalf("404 bodies differ:\n%s\n%s\n%s", disabled, archived, unknown)
		}
		// Every write was published for the other replicas.
		got := ce.feed.publishedIDs()
		for _, id := range got {
			if id != wf.ID {
				t.Fatalf("published %q, want only %s: %v", id, wf.ID, got)
			}
		}
		if len(got) != 6 {
			t.Fatalf("published %d changes, want 6 (create, enable, disable, enable, version, archive): %v", len(got), got)
		}
	})

	t.Run("RotateSecretInvalidatesAtOnce", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{secrets: mustSecretBox(t)})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.mustWorkflow(t, "rotating")
		resp, body := putConfig(t, ce.env, "rotating", `{"enabled":true,"verify":{"type":"secret","header":"X-Token","secret":"old-secret-1234567890"}}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("put config: %d %s", resp.StatusCode, body)
		}
		if got := deliver(t, ce.env, "rotating", "old-secret-1234567890"); got != http.StatusAccepted {
			t.Fatalf("old secret: %d", got)
		}
		if resp, body := rotate(t, ce.env, "rotating", `{"secret":"new-secret-1234567890","drop_previous":true}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("rotate: %d %s", resp.StatusCode, body)
		}
		if got := deliver(t, ce.env, "rotating", "old-secret-1234567890"); got != http.StatusUnauthorized {
			t.Fatalf("old secret after the rotation: %d, want 401", got)
		}
		if got := deliver(t, ce.env, "rotating", "new-secret-1234567890"); got != http.StatusAccepted {
			t.Fatalf("new secret: %d", got)
		}
	})

	t.Run("PublishedChangeInvalidates", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		wf := ce.mustWorkflow(t, "elsewhere")
		ce.mustEnableWebhook(t, "elsewhere")
		ce.wantStatus(t, "elsewhere", http.StatusAccepted, 1)
		// Another replica disables it: the store changes behind this
		// server's back, which serves its cache until told.
		if err := ce.store.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: false}); err != nil {
			t.Fatal(err)
		}
		ce.wantStatus(t, "elsewhere", http.StatusAccepted, 0)
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: wf.ID})
		ce.wantStatus(t, "elsewhere", http.StatusNotFound, 1)
	})

	t.Run("CreatedElsewhereDropsNotFound", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.wantStatus(t, "later", http.StatusNotFound, 1)
		ce.wantStatus(t, "later", http.StatusNotFound, 0) // a negative entry
		wf := &orcheo.Workflow{Handle: "later", Name: "later"}
		if err := wf.Validate(); err != nil {
			t.Fatal(err)
		}
		def, err := newEngine().Compile([]byte(okDefinition))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ce.store.Workflows.CreateWorkflow(ctx, wf, def); err != nil {
			t.Fatal(err)
		}
		if err := ce.store.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true}); err != nil {
			t.Fatal(err)
		}
		// The news names the new workflow's id, not the handle that was
		// looked up: every "not found" goes.
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: wf.ID})
		ce.wantStatus(t, "later", http.StatusAccepted, 1)
	})

	t.Run("CreatedHereDropsNotFound", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.wantStatus(t, "soon", http.StatusNotFound, 1)
		ce.mustWorkflow(t, "soon")
		ce.mustEnableWebhook(t, "soon")
		ce.wantStatus(t, "soon", http.StatusAccepted, 1)
	})

	t.Run("ReconnectFlushes", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		wf := ce.mustWorkflow(t, "flaky")
		ce.mustEnableWebhook(t, "flaky")
		ce.wantStatus(t, "flaky", http.StatusAccepted, 1)

		// The subscription drops: its news may be lost, so nothing is
		// served from the cache, or kept in it.
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeDisconnected})
		if err := ce.store.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: false}); err != nil {
			t.Fatal(err)
		}
		ce.wantStatus(t, "flaky", http.StatusNotFound, 1)
		ce.wantStatus(t, "flaky", http.StatusNotFound, 1)

		// Back: cached again from a fresh read.
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.wantStatus(t, "flaky", http.StatusNotFound, 1)
		ce.wantStatus(t, "flaky", http.StatusNotFound, 0)

		// A resubscription the feed reports without a disconnection
		// before it (go-redis reconnected by itself) flushes too.
		if err := ce.store.Triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true}); err != nil {
			t.Fatal(err)
		}
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.wantStatus(t, "flaky", http.StatusAccepted, 1)
		ce.wantStatus(t, "flaky", http.StatusAccepted, 0)
	})

	t.Run("NothingCachedBeforeConnected", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.mustWorkflow(t, "early")
		ce.mustEnableWebhook(t, "early")
		ce.wantStatus(t, "early", http.StatusAccepted, 1)
		ce.wantStatus(t, "early", http.StatusAccepted, 1)
	})

	t.Run("NoFeedNoCache", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{noFeed: true})
		ce.mustWorkflow(t, "plain")
		ce.mustEnableWebhook(t, "plain")
		ce.wantStatus(t, "plain", http.StatusAccepted, 1)
		ce.wantStatus(t, "plain", http.StatusAccepted, 1)
		ce.wantStatus(t, "missing", http.StatusNotFound, 1)
		ce.wantStatus(t, "missing", http.StatusNotFound, 1)
	})

	t.Run("NegativeEntriesBounded", func(t *testing.T) {
		t.Parallel()
		const size = 3
		ce := newCacheEnv(t, cacheOptions{size: size})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.mustWorkflow(t, "real")
		ce.mustEnableWebhook(t, "real")
		ce.wantStatus(t, "real", http.StatusAccepted, 1)
		for i := 0; i < size; i++ {
			ce.wantStatus(t, fmt.Sprintf("missing-%d", i), http.StatusNotFound, 1)
		}
		for i := 0; i < size; i++ {
			ce.wantStatus(t, fmt.Sprintf("missing-%d", i), http.StatusNotFound, 0)
		}
		// A flood of made-up refs: each costs its lookup, and the least
		// recently used "not found" makes room; the real workflow stays.
		for i := size; i < 10*size; i++ {
			ce.wantStatus(t, fmt.Sprintf("missing-%d", i), http.StatusNotFound, 1)
		}
		ce.wantStatus(t, "missing-0", http.StatusNotFound, 1)
		ce.wantStatus(t, "real", http.StatusAccepted, 0)
	})

	t.Run("EntriesExpire", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{ttl: 20 * time.Millisecond})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.mustWorkflow(t, "ageing")
		ce.mustEnableWebhook(t, "ageing")
		ce.wantStatus(t, "ageing", http.StatusAccepted, 1)
		w0, _ := ce.lookups()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ce.post(t, "ageing")
			if w, _ := ce.lookups(); w > w0 {
				return // read again once the entry expired
			}
			if time.Now().After(deadline) {
				t.Fatal("the entry was still served after 10 s with a 20 ms TTL")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("LookupOverlappingAChangeIsNotKept", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		wf := ce.mustWorkflow(t, "racy")
		ce.mustEnableWebhook(t, "racy")
		// The webhook reads the workflow, then (before it reads the
		// config) the config changes elsewhere and the news arrives: what
		// it read must not be kept.
		reading, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		hook := func() {
			once.Do(func() {
				close(reading)
				<-release
			})
		}
		ce.triggers.before.Store(&hook)
		done := make(chan int)
		go func() {
			status, _ := ce.post(t, "racy")
			done <- status
		}()
		<-reading
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: wf.ID})
		close(release)
		if status := <-done; status != http.StatusAccepted {
			t.Fatalf("status %d", status)
		}
		ce.wantStatus(t, "racy", http.StatusAccepted, 1)
		ce.wantStatus(t, "racy", http.StatusAccepted, 0)
	})

	t.Run("ConcurrentWebhooks", func(t *testing.T) {
		t.Parallel()
		ce := newCacheEnv(t, cacheOptions{secrets: mustSecretBox(t)})
		ce.feed.send(t, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
		ce.mustWorkflow(t, "shared")
		resp, body := putConfig(t, ce.env, "shared", `{"enabled":true,"methods":["post"],"required_headers":{"X-Token":"tok-1234567890123456"},"verify":{"type":"secret","header":"X-Token","secret":"tok-1234567890123456"}}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("put config: %d %s", resp.StatusCode, body)
		}
		// The race detector watches the shared cached values.
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 5; j++ {
					if got := deliver(t, ce.env, "shared", "tok-1234567890123456"); got != http.StatusAccepted {
						t.Errorf("status %d", got)
					}
				}
			}()
		}
		wg.Wait()
	})
}

// nopSubmitter accepts every run and stores nothing, so that a benchmark
// measures the webhook route without the run's insert.
type nopSubmitter struct{}

func (nopSubmitter) SubmitRun(_ context.Context, wf *orcheo.Workflow, run *orcheo.Run) (*orcheo.Run, bool, error) {
	run.ID, run.WorkflowID, run.Status = orcheo.NewID(), wf.ID, orcheo.RunPending
	return run, true, nil
}

func (nopSubmitter) PublishRuns(_ context.Context, runs []*orcheo.Run, _ orcheo.PublishOptions) []error {
	return make([]error, len(runs))
}

// BenchmarkWebhookLookup compares the webhook route with and without the
// cache on a store that costs a round trip (PostgreSQL) and on SQLite;
// "lookup" stores no run (nopSubmitter), "insert" stores each one as in
// production (with a no-op queue).
func BenchmarkWebhookLookup(b *testing.B) {
	type benchCase struct {
		name             string
		postgres, cached bool
		insert           bool
	}
	var cases []benchCase
	for _, store := range []string{"postgres", "sqlite"} {
		for _, submit := range []string{"lookup", "insert"} {
			for _, cache := range []string{"uncached", "cached"} {
				cases = append(cases, benchCase{
					name:     store + "/" + submit + "/" + cache,
					postgres: store == "postgres", cached: cache == "cached", insert: submit == "insert",
				})
			}
		}
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			opts := cacheOptions{noFeed: !bc.cached}
			if bc.postgres {
				opts.postgresDB = "server_cache_bench"
			}
			ce := newCacheEnv(b, opts)
			if bc.insert {
				useQueue(b, ce.srv, nopQueue{})
			} else {
				ce.srv.Submitter = nopSubmitter{}
			}
			ce.srv.Logger.(interface{ SetOutput(io.Writer) }).SetOutput(io.Discard)
			if bc.cached {
				ce.feed.send(b, orcheo.ChangeEvent{Kind: orcheo.ChangeConnected})
			}
			handle := "bench-" + strings.ReplaceAll(bc.name, "/", "-")
			ce.mustWorkflow(b, handle)
			ce.mustEnableWebhook(b, handle)
			h := ce.srv.Handler()
			body := `{"action":"opened","number":42}`
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", "/api/workflows/"+handle+"/triggers/webhook", strings.NewReader(body))
					req.RemoteAddr = "192.0.2.1:1234"
					req.Header.Set("Content-Type", "application/json")
					rec := newDiscardRecorder()
					h.ServeHTTP(rec, req)
					if rec.status != http.StatusAccepted {
						b.Fatalf("status %d", rec.status)
					}
				}
			})
			b.StopTimer()
			w, c := ce.lookups()
			b.ReportMetric(float64(w+c)/float64(b.N), "lookups/op")
		})
	}
}
