package server_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/submit"
	"github.com/sirupsen/logrus"
)

const testToken = "s3cret-token"

// okDefinition is a valid one-node workflow definition.
const okDefinition = `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`

// recordingQueue records enqueued run ids; with fail set it refuses them.
type recordingQueue struct {
	mu   sync.Mutex
	ids  []string
	fail bool
}

func (q *recordingQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return errors.New("redis: connection refused")
	}
	q.ids = append(q.ids, run.ID)
	return nil
}

func (q *recordingQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRun)
}

func (q *recordingQueue) enqueued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.ids...)
}

// startSubmitter returns a started run submitter storing in runs and
// publishing on q, stopped when the test ends.
func startSubmitter(tb testing.TB, runs orcheo.RunService, q orcheo.RunQueue) *submit.Submitter {
	tb.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	s := submit.New(submit.Config{Runs: runs, Queue: q, Logger: logger})
	s.Start(context.Background())
	tb.Cleanup(s.Stop)
	return s
}

// useQueue makes s publish on q from now on.
func useQueue(tb testing.TB, s *server.Server, q orcheo.RunQueue) {
	tb.Helper()
	s.Submitter = startSubmitter(tb, s.Runs, q)
}

// env is a server on a real listener with a client pointed at it.
type env struct {
	srv    *server.Server
	http   *httptest.Server
	client *client.Client
	queue  *recordingQueue
	store  *db.Store
}

type envOptions struct {
	failQueue bool
	noToken   bool
	maxBody   int64
	// postgresDB, if set, names the PostgreSQL database (testenv) to use
	// instead of a SQLite file.
	postgresDB string
	// setup, if set, changes the server before it serves.
	setup func(*server.Server, *db.Store)
}

func newEnv(tb testing.TB, opts envOptions) *env {
	tb.Helper()
	st := openStore(tb, opts.postgresDB)
	q := &recordingQueue{fail: opts.failQueue}
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers = st.Workflows, st.Runs, st.Triggers
	s.Engine = newEngine()
	if !opts.noToken {
		s.Token = testToken
	}
	if opts.maxBody > 0 {
		s.MaxBodyBytes = opts.maxBody
	}
	logger := logrus.New()
	logger.SetOutput(testWriter{tb})
	s.Logger = logger
	if opts.setup != nil {
		opts.setup(s, st)
	}
	// After setup, which may wrap Runs or bring a submitter of its own.
	if s.Submitter == nil {
		s.Submitter = startSubmitter(tb, s.Runs, q)
	}
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(ts.Close)
	return &env{srv: s, http: ts, client: client.New(ts.URL, s.Token), queue: q, store: st}
}

// testWriter sends server logs to the test log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// counts returns the number of workflows (archived too) and runs stored.
func (e *env) counts(tb testing.TB) (workflows, runs int) {
	tb.Helper()
	ctx := context.Background()
	_, workflows, err := e.store.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{IncludeArchived: true, Limit: 1})
	if err != nil {
		tb.Fatal(err)
	}
	_, runs, err = e.store.Runs.FindRuns(ctx, orcheo.RunFilter{Limit: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return workflows, runs
}

// unchanged fails the test if the stored counts differ from before.
func (e *env) unchanged(tb testing.TB, wantWorkflows, wantRuns int) {
	tb.Helper()
	if w, r := e.counts(tb); w != wantWorkflows || r != wantRuns {
		tb.Fatalf("stored %d workflows and %d runs, want %d and %d", w, r, wantWorkflows, wantRuns)
	}
}

// mustWorkflow creates a workflow with okDefinition.
func (e *env) mustWorkflow(tb testing.TB, handle string) *orcheo.Workflow {
	tb.Helper()
	wf, err := e.client.CreateWorkflow(context.Background(), handle, handle, "", []byte(okDefinition))
	if err != nil {
		tb.Fatalf("create workflow %s: %v", handle, err)
	}
	return wf
}

// mustEnableWebhook enables the workflow's webhook for methods.
func (e *env) mustEnableWebhook(tb testing.TB, ref string, methods ...string) {
	tb.Helper()
	if _, err := e.client.SetWebhookConfig(context.Background(), ref, &orcheo.WebhookConfig{Enabled: true, Methods: methods}); err != nil {
		tb.Fatalf("enable webhook: %v", err)
	}
}

// wantCode fails the test unless err is an application error with code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := orcheo.ErrorCode(err); got != code {
		tb.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	var e *orcheo.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v is not an *orcheo.Error", err)
	}
}

// openStore opens a fresh SQLite store for one test: the real store, so
// that "stores nothing" is checked against what a server would keep.
func openStore(tb testing.TB, postgresDB string) *db.Store {
	tb.Helper()
	dsn := "sqlite:" + tb.TempDir() + "/t.db"
	if postgresDB != "" {
		dsn = testenv.PostgresURL(tb, postgresDB)
	}
	st, err := db.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

func newEngine() orcheo.Engine {
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	return engine.New(engine.Options{Logger: logger})
}
