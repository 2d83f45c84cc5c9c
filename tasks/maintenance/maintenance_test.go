package maintenance

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// The services are tested alone, on a real store (SQLite, and PostgreSQL
// where its locking matters), a real submitter and a real Redis (the
// shared one under a prefix of the test's own, or a private redis-server
// a test kills). Messages are published through package rdb with the run
// id as their body: what a message says is the tasks package's business,
// where it goes and how it is counted is what these services rely on.

func testLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("ORCHEO_TEST_VERBOSE") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return l
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// openStore opens a fresh store of backend; pgName names the test's own
// PostgreSQL database.
func openStore(tb testing.TB, backend, pgName string) *db.Store {
	tb.Helper()
	dsn := "sqlite:" + filepath.Join(tb.TempDir(), "orcheo.db")
	if backend == db.BackendPostgres {
		dsn = testenv.PostgresURL(tb, pgName)
	}
	s, err := db.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open %s store: %v", backend, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// newRDB is an RDB on redisURL under a prefix of the test's own, whose
// keys are deleted when the test ends.
func newRDB(tb testing.TB, redisURL string) *rdb.RDB {
	tb.Helper()
	client, err := rdb.Open(redisURL)
	must(tb, err)
	prefix := "maintenance-test:" + orcheo.NewID()
	tb.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := client.Keys(ctx, prefix+":*").Result(); len(keys) > 0 {
			_ = client.Del(ctx, keys...).Err()
		}
		_ = client.Close()
	})
	return rdb.New(client, prefix)
}

// testQueue is an orcheo.RunQueue on r whose messages are run ids, with
// the front publish the submitter uses for PublishOptions.Front.
type testQueue struct{ r *rdb.RDB }

func (q testQueue) publish(ctx context.Context, front bool, runs []*orcheo.Run) []error {
	msgs := make([]rdb.Message, len(runs))
	for i, run := range runs {
		msgs[i] = rdb.Message{Queue: queueName(run.Queue), Body: run.ID, RunID: run.ID}
	}
	return q.r.Publish(ctx, time.Now(), front, msgs...)
}

func (q testQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	return q.publish(ctx, false, []*orcheo.Run{run})[0]
}
func (q testQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return q.publish(ctx, false, runs)
}

// EnqueueRunsFront puts runs[i] in front of runs[:i], as tasks.Queue does.
func (q testQueue) EnqueueRunsFront(ctx context.Context, runs []*orcheo.Run) []error {
	return q.publish(ctx, true, runs)
}

// env is a store, an RDB and the process's one submitter publishing on it.
type env struct {
	store     *db.Store
	rdb       *rdb.RDB
	submitter *submit.Submitter
}

func newEnv(tb testing.TB, backend, pgName, redisURL string) *env {
	tb.Helper()
	e := &env{store: openStore(tb, backend, pgName), rdb: newRDB(tb, redisURL)}
	e.submitter = submit.New(submit.Config{Runs: e.store.Runs, Queue: testQueue{e.rdb}, Logger: testLogger()})
	e.submitter.Start(context.Background())
	tb.Cleanup(e.submitter.Stop)
	return e
}

// createRun stores a workflow of definition and a pending run of it,
// stamped enqueued but published nowhere.
func (e *env) createRun(tb testing.TB, definition string) *orcheo.Run {
	tb.Helper()
	ctx := context.Background()
	compiled, err := engine.New(engine.Options{Logger: testLogger()}).Compile([]byte(definition))
	must(tb, err)
	wf := &orcheo.Workflow{Handle: "wf-" + strings.ToLower(orcheo.NewID()[24:]), Name: "test"}
	v, err := e.store.Workflows.CreateWorkflow(ctx, wf, compiled)
	must(tb, err)
	run, _, err := e.store.Runs.CreateRun(ctx, &orcheo.Run{
		WorkflowID: wf.ID, VersionID: v.ID, TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{}`),
	})
	must(tb, err)
	return run
}

// list is a Redis list's contents.
func list(tb testing.TB, r *rdb.RDB, key string) []string {
	tb.Helper()
	msgs, err := r.Client().LRange(context.Background(), key, 0, -1).Result()
	must(tb, err)
	return msgs
}

// counts is the message count of each run id under queue.
func counts(tb testing.TB, r *rdb.RDB, queue string, ids ...string) []int {
	tb.Helper()
	queues := make([]string, len(ids))
	for i := range ids {
		queues[i] = queue
	}
	c, err := r.MessageCounts(context.Background(), queues, ids)
	must(tb, err)
	return c
}

// waitFor polls cond for up to 20 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const okDefinition = `{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`
