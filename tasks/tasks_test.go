package tasks

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
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// testLogger writes to stderr when ORCHEO_TEST_VERBOSE is set. It must not
// be tied to a *testing.T: machinery's loggers are process-wide and outlive
// single tests.
func testLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("ORCHEO_TEST_VERBOSE") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return l
}

// storeBackends names the stores the store-backed tests run against.
var storeBackends = []string{db.BackendSQLite, db.BackendPostgres}

// openStore opens a fresh store of the given backend; pgName names the
// test's own PostgreSQL database.
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

// fixture is a store, an engine, a queue and a worker on one Redis.
type fixture struct {
	store  *db.Store
	engine *engine.Engine
	cfg    Config
	queue  *Queue
	worker *Worker
}

// newFixture builds (without starting) a worker and a queue on redisURL;
// each option may change the worker's Config and the engine's Options
// before they are used.
func newFixture(tb testing.TB, store *db.Store, redisURL string, options ...func(*Config, *engine.Options)) *fixture {
	tb.Helper()
	cfg := Config{RedisURL: redisURL, Prefix: "tasks-test", Concurrency: 4}
	opts := engine.Options{Logger: testLogger()}
	for _, o := range options {
		o(&cfg, &opts)
	}
	// One Redis client for the queue and the worker, as in a process.
	client, err := trdb.Open(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = client.Close() }) // after the worker's Stop
	q, err := NewQueue(cfg, client, testLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = q.Close() })
	eng := engine.New(opts)
	w := NewWorker(cfg)
	w.Runs, w.Workflows, w.Engine, w.Logger, w.Redis = store.Runs, store.Workflows, eng, testLogger(), client
	w.Submitter = startSubmitter(tb, store.Runs, q)
	tb.Cleanup(w.Stop)
	return &fixture{store: store, engine: eng, cfg: cfg, queue: q, worker: w}
}

// start starts the worker.
func (f *fixture) start(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f.worker.Start(ctx); err != nil {
		tb.Fatalf("start worker: %v", err)
	}
}

// createRun stores a workflow with definition and a pending run of it.
func (f *fixture) createRun(tb testing.TB, definition, input string) *orcheo.Run {
	tb.Helper()
	ctx := context.Background()
	compiled, err := f.engine.Compile([]byte(definition))
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	wf := &orcheo.Workflow{Handle: "wf-" + strings.ToLower(orcheo.NewID()[24:]), Name: "test"}
	v, err := f.store.Workflows.CreateWorkflow(ctx, wf, compiled)
	if err != nil {
		tb.Fatalf("create workflow: %v", err)
	}
	run, _, err := f.store.Runs.CreateRun(ctx, &orcheo.Run{
		WorkflowID: wf.ID, VersionID: v.ID, TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(input),
	})
	if err != nil {
		tb.Fatalf("create run: %v", err)
	}
	return run
}

// waitTerminal polls the run until it reaches a terminal status.
func (f *fixture) waitTerminal(tb testing.TB, id string) *orcheo.Run {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run, err := f.store.Runs.FindRunByID(context.Background(), id)
		if err != nil {
			tb.Fatalf("find run: %v", err)
		}
		if run.Status.Terminal() {
			return run
		}
		if time.Now().After(deadline) {
			tb.Fatalf("run %s still %s after 30s", id, run.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQueueEmpty polls until the queue's Redis list is empty, that is, every
// message was fetched by a worker.
func waitQueueEmpty(tb testing.TB, redisURL, key string) {
	tb.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	client := redis.NewClient(opt)
	defer client.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := client.LLen(context.Background(), key).Result()
		if err != nil {
			tb.Fatalf("llen %s: %v", key, err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d messages still in %s after 30s", n, key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	okDefinition   = `{"nodes":[{"id":"a","type":"set","values":{"x":"input.n * 2"}}]}`
	failDefinition = `{"nodes":[{"id":"a","type":"set","values":{"x":"input.n * 2"}},{"id":"b","type":"fail","message":"\"boom\""}]}`
)

// TestWorker_DuplicateDeliveryExecutesOnce enqueues one run twice: the
// second delivery must be skipped by the claim.
func TestWorker_DuplicateDeliveryExecutesOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_dup")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL())
			run := f.createRun(t, okDefinition, `{"n":21}`)

			ctx := context.Background()
			for i := 0; i < 2; i++ {
				if err := f.queue.EnqueueRun(ctx, run); err != nil {
					t.Fatalf("enqueue %d: %v", i, err)
				}
			}
			f.start(t)
			done := f.waitTerminal(t, run.ID)
			// Both messages have been fetched once the list is empty; Stop
			// waits until the fetched ones are processed.
			waitQueueEmpty(t, rs.URL(), f.queue.rdb.QueueKey(orcheo.DefaultQueue))
			f.worker.Stop()

			got, err := store.Runs.FindRunByID(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != orcheo.RunSucceeded {
				t.Fatalf("status = %s (error %q), want succeeded", got.Status, got.Error)
			}
			if got.Attempt != 1 {
				t.Fatalf("attempt = %d, want 1: the run was claimed %d times", got.Attempt, got.Attempt)
			}
			if len(got.Steps) != 1 || got.Steps[0].Node != "a" || got.Steps[0].Attempt != 1 {
				t.Fatalf("steps = %+v, want one step of node a in attempt 1", got.Steps)
			}
			var out map[string]any
			if err := json.Unmarshal(got.Output, &out); err != nil {
				t.Fatalf("output %s: %v", got.Output, err)
			}
			if !strings.Contains(string(got.Output), "42") {
				t.Fatalf("output = %s, want x = 42 in it", got.Output)
			}
			if got.WorkerID != f.worker.ID || !done.CompletedAt.Equal(*got.CompletedAt) {
				t.Fatalf("worker_id = %q, want %q; completion changed after the duplicate", got.WorkerID, f.worker.ID)
			}
		})
	}
}

// TestWorker_FailingWorkflow checks that a workflow failure ends the run
// failed with its error and steps, not as a task error.
func TestWorker_FailingWorkflow(t *testing.T) {
	t.Parallel()
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, backend, "tasks_fail")
			rs := testenv.StartRedis(t)
			f := newFixture(t, store, rs.URL())
			f.start(t)
			run := f.createRun(t, failDefinition, `{"n":1}`)
			if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
				t.Fatal(err)
			}
			got := f.waitTerminal(t, run.ID)
			if got.Status != orcheo.RunFailed {
				t.Fatalf("status = %s, want failed", got.Status)
			}
			if !strings.Contains(got.Error, "boom") {
				t.Fatalf("error = %q, want it to contain boom", got.Error)
			}
			if len(got.Steps) != 2 {
				t.Fatalf("steps = %+v, want 2", got.Steps)
			}
			if got.Steps[0].Status != orcheo.StepSucceeded || got.Steps[1].Status != orcheo.StepFailed {
				t.Fatalf("step statuses = %s, %s; want succeeded, failed", got.Steps[0].Status, got.Steps[1].Status)
			}
		})
	}
}

// TestWorker_StopIsIdempotent checks Stop without Start, Stop twice and
// concurrent Stops.
func TestWorker_StopIsIdempotent(t *testing.T) {
	t.Parallel()

	t.Run("WithoutStart", func(t *testing.T) {
		t.Parallel()
		w := NewWorker(Config{RedisURL: "redis://127.0.0.1:1/0"})
		w.Stop()
		w.Stop()
	})

	t.Run("Twice", func(t *testing.T) {
		t.Parallel()
		store := openStore(t, db.BackendSQLite, "")
		rs := testenv.StartRedis(t)
		f := newFixture(t, store, rs.URL())
		f.start(t)
		f.worker.Stop()
		f.worker.Stop()
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		store := openStore(t, db.BackendSQLite, "")
		rs := testenv.StartRedis(t)
		f := newFixture(t, store, rs.URL())
		f.start(t)
		done := make(chan struct{})
		for i := 0; i < 3; i++ {
			go func() { f.worker.Stop(); done <- struct{}{} }()
		}
		for i := 0; i < 3; i++ {
			<-done
		}
	})

	t.Run("RestartAfterStop", func(t *testing.T) {
		t.Parallel()
		store := openStore(t, db.BackendSQLite, "")
		rs := testenv.StartRedis(t)
		f := newFixture(t, store, rs.URL())
		f.start(t)
		f.worker.Stop()
		f.start(t)
		run := f.createRun(t, okDefinition, `{"n":3}`)
		if err := f.queue.EnqueueRun(context.Background(), run); err != nil {
			t.Fatal(err)
		}
		if got := f.waitTerminal(t, run.ID); got.Status != orcheo.RunSucceeded {
			t.Fatalf("status = %s, want succeeded", got.Status)
		}
	})
}

// TestWorker_StartFailsWithoutRedis checks that a worker pointed at a dead
// Redis fails at Start instead of retrying silently.
func TestWorker_StartFailsWithoutRedis(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	port := testenv.FreePort(t)
	f := newFixture(t, store, "redis://127.0.0.1:"+itoa(port)+"/0")
	if err := f.worker.Start(context.Background()); err == nil {
		t.Fatal("Start with Redis down succeeded")
	}
	f.worker.Stop()
}
