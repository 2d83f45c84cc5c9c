package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/ui"
	"github.com/sirupsen/logrus"
)

const (
	adminToken    = "admin-token-0123456789"
	readToken     = "read-token-0123456789"
	dispatchToken = "dispatch-token-0123456789"
)

var testTokens = []server.APIToken{
	{Name: "ops", Scope: server.ScopeAdmin, Value: adminToken},
	{Name: "viewer", Scope: server.ScopeRead, Value: readToken},
	{Name: "beat", Scope: server.ScopeDispatch, Value: dispatchToken},
}

// uiTokens is cmd/orcheo's adapter of the server's tokens, which package
// main cannot lend to a test.
type uiTokens struct{ s *server.Server }

func (t uiTokens) Enabled() bool { return t.s.AuthEnabled() }
func (t uiTokens) Authenticate(v string) (ui.Token, bool) {
	p, ok := t.s.TokenPrincipal(v)
	return ui.Token{Name: p.TokenName, Scope: string(p.Scope)}, ok
}
func (t uiTokens) SessionKey(name string) ([]byte, ui.Token, bool) {
	k, p, ok := t.s.TokenSessionKey(name, "test")
	return k, ui.Token{Name: p.TokenName, Scope: string(p.Scope)}, ok
}

// recordingQueue records what was published.
type recordingQueue struct {
	mu  sync.Mutex
	ids []string
}

func (q *recordingQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, run.ID)
	return nil
}

func (q *recordingQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRun)
}

func (q *recordingQueue) count(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, v := range q.ids {
		if v == id {
			n++
		}
	}
	return n
}

// env is the real API server, with the UI mounted, on a SQLite store.
type env struct {
	srv    *server.Server
	ui     *ui.Handler
	http   *httptest.Server
	store  *db.Store
	queue  *recordingQueue
	cancel *recordingCancels
	wf     *orcheo.Workflow
	// workers and depths stand in for tasks.Inspector and tasks.Queue,
	// which read Redis (test/ui_workflows_test.go reads the real ones).
	workers *fakeWorkers
	depths  *fakeDepths
}

type fakeWorkers struct {
	mu      sync.Mutex
	workers []*orcheo.WorkerInfo
	err     error
}

func (f *fakeWorkers) Workers(context.Context) ([]*orcheo.WorkerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers, f.err
}

func (f *fakeWorkers) Delayed(context.Context, []string, int) ([]orcheo.DelayedMessage, error) {
	return nil, nil
}

func (f *fakeWorkers) Shutdown(context.Context, []string) ([]string, error) { return nil, nil }

type fakeDepths struct {
	mu     sync.Mutex
	asked  []string
	ready  int64
	failed error
}

func (f *fakeDepths) QueueDepth(_ context.Context, q string) (int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, q)
	return f.ready, 1, f.failed
}

type recordingCancels struct {
	mu  sync.Mutex
	ids []string
}

func (c *recordingCancels) NotifyCancel(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return nil
}

type envOptions struct {
	noAuth bool
	cfg    func(*cfgAlias)
}

func newEnv(t *testing.T, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	st, err := db.Open(context.Background(), "sqlite:"+t.TempDir()+"/ui.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	if testing.Verbose() {
		logger.SetOutput(os.Stderr)
	}
	e := &env{store: st, queue: &recordingQueue{}, cancel: &recordingCancels{}}
	sub := submit.New(submit.Config{Runs: st.Runs, Queue: e.queue, Logger: logger})
	sub.Start(context.Background())
	t.Cleanup(sub.Stop)
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers, s.Submitter, s.Cancels = st.Workflows, st.Runs, st.Triggers, sub, e.cancel
	s.Engine = engine.New(engine.Options{Logger: logger})
	s.Logger = logger
	if !o.noAuth {
		if s.Tokens, err = server.NewTokens(testTokens); err != nil {
			t.Fatal(err)
		}
	}
	s.Cron, s.CronScheduler = st.Cron, schedule.Scheduler{}
	e.workers, e.depths = &fakeWorkers{}, &fakeDepths{}
	cfg := ui.Config{Runs: s.Runs, Workflows: s.Workflows, Submitter: s.Submitter, Cancels: s.Cancels,
		Tokens: uiTokens{s}, Logger: logger, PollInterval: 50 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		Triggers: st.Triggers, Cron: st.Cron, CronScheduler: schedule.Scheduler{}, Workers: e.workers, Queues: e.depths,
		QueueNames: []string{"default"}, RunStats: st.Runs.(orcheo.RunStatsService), RunCounts: st.Runs.(orcheo.RunCounts),
		BeatLeader: func(context.Context) (string, error) { return "beat-host-1", nil }}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e.ui = ui.New(cfg)
	s.UI = e.ui
	e.srv = s
	e.http = httptest.NewServer(s.Handler())
	t.Cleanup(e.http.Close)
	t.Cleanup(e.ui.Shutdown)
	def, err := s.Engine.Compile([]byte(`{"nodes":[{"id":"greet","type":"set","values":{"message":"\"hi\""}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e.wf = &orcheo.Workflow{Handle: "greet", Name: "Greet"}
	if _, err := st.Workflows.CreateWorkflow(context.Background(), e.wf, def); err != nil {
		t.Fatal(err)
	}
	wf, err := st.Workflows.FindWorkflowByRef(context.Background(), "greet")
	if err != nil {
		t.Fatal(err)
	}
	e.wf = wf
	return e
}

// newRun submits a pending run of the test workflow.
func (e *env) newRun(t *testing.T, input string) *orcheo.Run {
	t.Helper()
	run, _, err := e.srv.Submitter.SubmitRun(context.Background(), e.wf, &orcheo.Run{TriggeredBy: orcheo.TriggerWebhook, Input: []byte(input)})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// claim moves run to running, as a worker would.
func (e *env) claim(t *testing.T, id string) *orcheo.Run {
	t.Helper()
	run, err := e.store.Runs.ClaimRun(context.Background(), id, "worker-1", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// fail ends a running run failed with one failed step.
func (e *env) fail(t *testing.T, id string) {
	t.Helper()
	run := e.claim(t, id)
	now := time.Now()
	_, err := e.store.Runs.CompleteRun(context.Background(), id, run.Attempt, orcheo.RunCompletion{Status: orcheo.RunFailed,
		Error: "no thanks", Steps: []*orcheo.RunStep{{RunID: id, Attempt: run.Attempt, Seq: 1, Node: "check", NodeType: "fail",
			Status: orcheo.StepFailed, Error: "no thanks", StartedAt: now, CompletedAt: &now}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) run(t *testing.T, id string) *orcheo.Run {
	t.Helper()
	run, err := e.store.Runs.FindRunByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// browser is a client with a cookie jar that follows no redirects and
// sends the Origin a browser sends from the UI's own pages.
type browser struct {
	t      *testing.T
	e      *env
	c      *http.Client
	origin string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, origin: e.http.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.http.URL+path, nil)
	return b.do(req)
}

// post sends form with the browser's Origin (none if origin is "").
func (b *browser) post(path string, form url.Values, header ...string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// login signs in with token and fails the test unless it worked.
func (b *browser) login(token string) {
	b.t.Helper()
	a := b.post("/ui/login", url.Values{"token": {token}, "next": {"/ui/runs"}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/runs" {
		b.t.Fatalf("login: %d %s, want 303 to /ui/runs: %s", a.status, a.header.Get("Location"), a.body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token a signed-in page carries.
func (b *browser) csrf() string {
	b.t.Helper()
	a := b.get("/ui/runs")
	m := csrfRE.FindStringSubmatch(a.body)
	if m == nil {
		b.t.Fatalf("no csrf field on the runs page (%d): %s", a.status, a.body)
	}
	return m[1]
}

// cfgAlias names ui.Config in option funcs.
type cfgAlias = ui.Config
