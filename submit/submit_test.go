package submit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// backends are the stores every behaviour is checked on.
var backends = []string{db.BackendPostgres, db.BackendSQLite}

// openStore opens a migrated store of backend on a database of its own
// (named after the test for PostgreSQL).
func openStore(tb testing.TB, backend, name string) (*db.Store, string) {
	tb.Helper()
	dsn := "sqlite:" + filepath.Join(tb.TempDir(), "orcheo.db")
	if backend == db.BackendPostgres {
		dsn = testenv.PostgresURL(tb, "submit_"+name)
	}
	s, err := db.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open %s store: %v", backend, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, dsn
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// mustWorkflow creates a workflow with one version.
func mustWorkflow(tb testing.TB, s *db.Store) *orcheo.Workflow {
	tb.Helper()
	id := orcheo.NewID()
	wf := &orcheo.Workflow{Handle: "wf-" + id[len(id)-12:], Name: "submit test"}
	if _, err := s.Workflows.CreateWorkflow(context.Background(), wf, json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)); err != nil {
		tb.Fatal(err)
	}
	return wf
}

// gatedRuns counts CreateRuns calls and the runs they carry. With a gate,
// the first call waits until the gate is closed, after closing entered, so
// a test can line submissions up behind a batch in flight.
type gatedRuns struct {
	orcheo.RunService
	calls, runs atomic.Int64
	gate        chan struct{}
	entered     chan struct{}
	once        sync.Once
}

func gated(runs orcheo.RunService) *gatedRuns {
	return &gatedRuns{RunService: runs, gate: make(chan struct{}), entered: make(chan struct{})}
}

func (g *gatedRuns) CreateRuns(ctx context.Context, runs []*orcheo.Run) []orcheo.RunCreated {
	g.calls.Add(1)
	g.runs.Add(int64(len(runs)))
	first := false
	g.once.Do(func() { first = true })
	if first && g.gate != nil {
		close(g.entered)
		<-g.gate
	}
	return g.RunService.CreateRuns(ctx, runs)
}

// recordingQueue records what it publishes; with fail set it refuses.
type recordingQueue struct {
	mu   sync.Mutex
	ids  map[string]int
	fail bool
}

func (q *recordingQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	return q.EnqueueRuns(ctx, []*orcheo.Run{run})[0]
}

func (q *recordingQueue) EnqueueRuns(_ context.Context, runs []*orcheo.Run) []error {
	q.mu.Lock()
	defer q.mu.Unlock()
	errs := make([]error, len(runs))
	for i, run := range runs {
		if q.fail {
			errs[i] = errors.New("redis: connection refused")
			continue
		}
		if q.ids == nil {
			q.ids = map[string]int{}
		}
		q.ids[run.ID]++
	}
	return errs
}

func (q *recordingQueue) published(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ids[id]
}

func (q *recordingQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ids)
}

func startSubmitter(tb testing.TB, runs orcheo.RunService, q orcheo.RunQueue) *submit.Submitter {
	tb.Helper()
	s := submit.New(submit.Config{Runs: runs, Queue: q, Logger: quietLogger()})
	s.Start(context.Background())
	tb.Cleanup(s.Stop)
	return s
}

// waitFor polls cond until it holds or 10 s have passed.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type outcome struct {
	run     *orcheo.Run
	created bool
	err     error
}

// submitAll submits runs at once, each from its own goroutine, once the
// first batch (run first) is in flight and held by g: they all line up
// behind it, so they form the second batch. It returns their outcomes.
func submitAll(t *testing.T, sub *submit.Submitter, g *gatedRuns, wf *orcheo.Workflow, first *orcheo.Run, runs []*orcheo.Run) (outcome, []outcome) {
	t.Helper()
	ctx := context.Background()
	firstDone := make(chan outcome, 1)
	go func() {
		r, c, err := sub.SubmitRun(ctx, wf, first)
		firstDone <- outcome{r, c, err}
	}()
	<-g.entered
	out := make([]outcome, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, c, err := sub.SubmitRun(ctx, wf, run)
			out[i] = outcome{r, c, err}
		}()
	}
	waitFor(t, "the submissions to line up", func() bool { return sub.Waiting() == len(runs) })
	close(g.gate)
	wg.Wait()
	return <-firstDone, out
}

func manual(n int, key string) *orcheo.Run {
	return &orcheo.Run{TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)), IdempotencyKey: key}
}

// TestSubmitter_Batches: submissions arriving while a batch is written are
// written as one batch (one CreateRuns), and each caller gets its own run
// back, stored and published.
func TestSubmitter_Batches(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store, _ := openStore(t, backend, "batches")
			wf := mustWorkflow(t, store)
			g := gated(store.Runs)
			q := &recordingQueue{}
			sub := startSubmitter(t, g, q)
			const n = 50
			runs := make([]*orcheo.Run, n)
			for i := range runs {
				runs[i] = manual(i, "")
			}
			first, out := submitAll(t, sub, g, wf, manual(-1, ""), runs)
			if first.err != nil || !first.created {
				t.Fatalf("first run: %+v", first)
			}
			if calls, stored := g.calls.Load(), g.runs.Load(); calls != 2 || stored != n+1 {
				t.Fatalf("%d CreateRuns calls for %d runs, want 2 (the first run, then all the others)", calls, stored)
			}
			seen := map[string]bool{first.run.ID: true}
			for i, o := range out {
				if o.err != nil || !o.created || o.run == nil {
					t.Fatalf("run %d: %+v", i, o)
				}
				var in struct{ N int }
				if err := json.Unmarshal(o.run.Input, &in); err != nil || in.N != i {
					t.Fatalf("caller %d got the run of input %s", i, o.run.Input)
				}
				if seen[o.run.ID] {
					t.Fatalf("run id %s returned twice", o.run.ID)
				}
				seen[o.run.ID] = true
				stored, err := store.Runs.FindRunByID(context.Background(), o.run.ID)
				if err != nil || stored.Status != orcheo.RunPending || stored.WorkflowID != wf.ID || stored.VersionID != wf.LatestVersionID {
					t.Fatalf("run %d stored as %+v (%v)", i, stored, err)
				}
				if q.published(o.run.ID) != 1 || o.run.EnqueuedAt == nil {
					t.Fatalf("run %d published %d times, enqueued_at %v", i, q.published(o.run.ID), o.run.EnqueuedAt)
				}
			}
		})
	}
}

// TestSubmitter_IdempotencyConflictInBatch: in one batch, a run whose key
// is already stored gets the stored run (created=false, not published
// again), two runs with one key yield one run, and the others commit.
func TestSubmitter_IdempotencyConflictInBatch(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store, _ := openStore(t, backend, "conflict")
			wf := mustWorkflow(t, store)
			g := gated(store.Runs)
			q := &recordingQueue{}
			sub := startSubmitter(t, g, q)
			first, out := submitAll(t, sub, g, wf, manual(0, "taken"), []*orcheo.Run{
				manual(1, "a"), manual(2, "taken"), manual(3, "b"), manual(4, "a"), manual(5, ""),
			})
			if first.err != nil || !first.created {
				t.Fatalf("first run: %+v", first)
			}
			if g.calls.Load() != 2 {
				t.Fatalf("%d CreateRuns calls, want 2", g.calls.Load())
			}
			for i, o := range out {
				if o.err != nil || o.run == nil {
					t.Fatalf("run %d: %+v", i, o)
				}
			}
			if dup := out[1]; dup.created || dup.run.ID != first.run.ID {
				t.Fatalf("the taken key: created %v, run %s; want the first run %s", dup.created, dup.run.ID, first.run.ID)
			}
			if q.published(first.run.ID) != 1 {
				t.Fatalf("the first run was published %d times, want once", q.published(first.run.ID))
			}
			if a, b := out[0], out[3]; a.created == b.created || a.run.ID != b.run.ID {
				t.Fatalf("two runs of key a: created %v/%v, ids %s/%s; want one run", a.created, b.created, a.run.ID, b.run.ID)
			}
			for _, i := range []int{2, 4} {
				if !out[i].created || q.published(out[i].run.ID) != 1 {
					t.Fatalf("run %d: created %v, published %d", i, out[i].created, q.published(out[i].run.ID))
				}
			}
			if _, total, err := store.Runs.FindRuns(context.Background(), orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 4 {
				t.Fatalf("%d runs stored, want 4 (%v)", total, err)
			}
			if q.count() != 4 {
				t.Fatalf("%d runs published, want 4", q.count())
			}
		})
	}
}

// TestSubmitter_CallerGivesUp: a caller whose context ends while its run
// waits for a batch gets its error and nothing is stored for it; the other
// runs of the batch are stored and published.
func TestSubmitter_CallerGivesUp(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store, _ := openStore(t, backend, "gives_up")
			wf := mustWorkflow(t, store)
			g := gated(store.Runs)
			q := &recordingQueue{}
			sub := startSubmitter(t, g, q)
			ctx := context.Background()
			firstDone := make(chan error, 1)
			go func() {
				_, _, err := sub.SubmitRun(ctx, wf, manual(0, ""))
				firstDone <- err
			}()
			<-g.entered
			cctx, cancel := context.WithCancel(ctx)
			gaveUp := make(chan error, 1)
			go func() {
				_, _, err := sub.SubmitRun(cctx, wf, manual(1, "abandoned"))
				gaveUp <- err
			}()
			waitFor(t, "the abandoned run to line up", func() bool { return sub.Waiting() == 1 })
			var others sync.WaitGroup
			results := make([]outcome, 3)
			for i := range results {
				others.Add(1)
				go func() {
					defer others.Done()
					r, c, err := sub.SubmitRun(ctx, wf, manual(2+i, ""))
					results[i] = outcome{r, c, err}
				}()
			}
			waitFor(t, "the other runs to line up", func() bool { return sub.Waiting() == 4 })
			cancel()
			if err := <-gaveUp; !errors.Is(err, context.Canceled) {
				t.Fatalf("the caller that gave up got %v", err)
			}
			close(g.gate)
			others.Wait()
			if err := <-firstDone; err != nil {
				t.Fatal(err)
			}
			for i, o := range results {
				if o.err != nil || !o.created || q.published(o.run.ID) != 1 {
					t.Fatalf("run %d: %+v", i, o)
				}
			}
			if _, total, err := store.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 4 {
				t.Fatalf("%d runs stored, want 4: the abandoned one is not (%v)", total, err)
			}
		})
	}
}

// TestSubmitter_StopFlushes: Stop writes and publishes what it accepted,
// then refuses new submissions with EUNAVAILABLE.
func TestSubmitter_StopFlushes(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store, _ := openStore(t, backend, "stop")
			wf := mustWorkflow(t, store)
			g := gated(store.Runs)
			q := &recordingQueue{}
			sub := submit.New(submit.Config{Runs: g, Queue: q, Logger: quietLogger()})
			sub.Start(context.Background())
			ctx := context.Background()
			const n = 10
			results := make([]outcome, n+1)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, c, err := sub.SubmitRun(ctx, wf, manual(0, ""))
				results[0] = outcome{r, c, err}
			}()
			<-g.entered
			for i := 1; i <= n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, c, err := sub.SubmitRun(ctx, wf, manual(i, ""))
					results[i] = outcome{r, c, err}
				}()
			}
			waitFor(t, "the submissions to line up", func() bool { return sub.Waiting() == n })
			stopped := make(chan struct{})
			go func() {
				sub.Stop()
				close(stopped)
			}()
			close(g.gate)
			<-stopped
			wg.Wait()
			for i, o := range results {
				if o.err != nil || !o.created || q.published(o.run.ID) != 1 {
					t.Fatalf("run %d accepted before Stop: %+v", i, o)
				}
			}
			_, _, err := sub.SubmitRun(ctx, wf, manual(99, ""))
			if orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
				t.Fatalf("after Stop: %v, want EUNAVAILABLE", err)
			}
			sub.Stop() // twice is fine
		})
	}
}

// TestSubmitter_Refuses: an archived workflow is ECONFLICT and an invalid
// run EINVALID, with nothing stored; a submitter never started refuses
// with EUNAVAILABLE.
func TestSubmitter_Refuses(t *testing.T) {
	t.Parallel()
	store, _ := openStore(t, db.BackendSQLite, "")
	wf := mustWorkflow(t, store)
	q := &recordingQueue{}
	sub := startSubmitter(t, store.Runs, q)
	ctx := context.Background()
	_, _, err := sub.SubmitRun(ctx, wf, &orcheo.Run{TriggeredBy: "carrier pigeon"})
	if orcheo.ErrorCode(err) != orcheo.EINVALID {
		t.Fatalf("unknown trigger: %v", err)
	}
	if _, err := store.Workflows.ArchiveWorkflow(ctx, wf.ID); err != nil {
		t.Fatal(err)
	}
	archived, err := store.Workflows.FindWorkflowByRef(ctx, wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = sub.SubmitRun(ctx, archived, manual(1, ""))
	if orcheo.ErrorCode(err) != orcheo.ECONFLICT {
		t.Fatalf("archived workflow: %v", err)
	}
	if _, total, err := store.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 0 || q.count() != 0 {
		t.Fatalf("%d runs stored, %d published (%v)", total, q.count(), err)
	}
	idle := submit.New(submit.Config{Runs: store.Runs, Queue: q, Logger: quietLogger()})
	if _, _, err := idle.SubmitRun(ctx, wf, manual(2, "")); orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
		t.Fatalf("never started: %v", err)
	}
	idle.Stop()
}

// TestSubmitter_BadInputNeverStored: the submitter leaves validation to
// the store, so the store's check must keep every kind of bad run out, in
// a batch with good ones and alone: each bad run is refused EINVALID,
// nothing of it is stored or published, and the good runs of its batch
// commit. The store itself, called directly, refuses the same runs.
func TestSubmitter_BadInputNeverStored(t *testing.T) {
	t.Parallel()
	bad := func() []*orcheo.Run {
		return []*orcheo.Run{
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"a":"\u0000"}`)},   // NUL, escaped
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage("{\"a\":\"\xff\"}")}, // invalid UTF-8
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"a":`)},            // not JSON
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"a":"\ud800"}`)},   // lone surrogate
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"n":1e100000}`)},   // number beyond numeric
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(strings.Repeat("[", orcheo.MaxJSONDepth+1) + strings.Repeat("]", orcheo.MaxJSONDepth+1))},
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{}`), IdempotencyKey: "k\x00"},
			{TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{}`), IdempotencyKey: strings.Repeat("k", 256)},
			{TriggeredBy: "carrier pigeon", Input: json.RawMessage(`{}`)},
		}
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store, _ := openStore(t, backend, "bad_input")
			wf := mustWorkflow(t, store)
			g := gated(store.Runs)
			q := &recordingQueue{}
			sub := startSubmitter(t, g, q)
			ctx := context.Background()
			runs := bad()
			nBad := len(runs)
			runs = append(runs, manual(1, ""), manual(2, "good"))
			first, out := submitAll(t, sub, g, wf, manual(0, ""), runs)
			if first.err != nil || !first.created {
				t.Fatalf("first run: %+v", first)
			}
			for i, o := range out {
				if i < nBad {
					if orcheo.ErrorCode(o.err) != orcheo.EINVALID || o.run != nil {
						t.Errorf("bad run %d: %+v, want EINVALID and no run", i, o)
					}
				} else if o.err != nil || !o.created {
					t.Errorf("good run %d of the same batch: %+v", i, o)
				}
			}
			// Alone, each bad run is refused too.
			for i, run := range bad() {
				if _, _, err := sub.SubmitRun(ctx, wf, run); orcheo.ErrorCode(err) != orcheo.EINVALID {
					t.Errorf("bad run %d alone: %v, want EINVALID", i, err)
				}
			}
			// And by the store, called without the submitter.
			for i, res := range store.Runs.CreateRuns(ctx, bad()) {
				if orcheo.ErrorCode(res.Err) != orcheo.EINVALID {
					t.Errorf("CreateRuns of bad run %d: %+v, want EINVALID", i, res)
				}
			}
			if _, total, err := store.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 3 || q.count() != 3 {
				t.Fatalf("%d runs stored, %d published (%v); want only the 3 good ones", total, q.count(), err)
			}
		})
	}
}

// TestSubmitter_PublishFailureMarksUnenqueued: with Redis down, a submitted
// run is still stored and answered (the 2xx promise), its EnqueuedAt
// cleared and marked unenqueued for the requeuer; so is a run PublishRuns
// could not publish. With Redis up, the run's message is in the queue.
func TestSubmitter_PublishFailureMarksUnenqueued(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, _ := openStore(t, backend, "publish_fails")
			wf := mustWorkflow(t, store)
			redis := testenv.StartRedis(t)
			cfg := tasks.Config{RedisURL: redis.URL(), Prefix: "submit-test", Queues: []string{orcheo.DefaultQueue}}
			client, err := rdb.Open(cfg.RedisURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Close() })
			queue, err := tasks.NewQueue(cfg, client, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = queue.Close() })
			sub := startSubmitter(t, store.Runs, queue)

			up, created, err := sub.SubmitRun(ctx, wf, manual(1, ""))
			if err != nil || !created || up.EnqueuedAt == nil {
				t.Fatalf("with redis up: %+v, %v, %v", up, created, err)
			}
			if ready, _, err := queue.QueueDepth(ctx, orcheo.DefaultQueue); err != nil || ready != 1 {
				t.Fatalf("queue holds %d messages (%v), want 1", ready, err)
			}

			redis.Kill()
			down, created, err := sub.SubmitRun(ctx, wf, manual(2, ""))
			if err != nil || !created {
				t.Fatalf("with redis down the run must still be stored and answered: %+v, %v, %v", down, created, err)
			}
			if down.EnqueuedAt != nil {
				t.Fatalf("enqueued_at %v after a failed publish", down.EnqueuedAt)
			}
			retried, err := store.Runs.FindRunByID(ctx, up.ID)
			if err != nil {
				t.Fatal(err)
			}
			errs := sub.PublishRuns(ctx, []*orcheo.Run{retried}, orcheo.PublishOptions{Front: true})
			if len(errs) != 1 || errs[0] == nil || retried.EnqueuedAt != nil {
				t.Fatalf("PublishRuns with redis down: %v, enqueued_at %v", errs, retried.EnqueuedAt)
			}
			claimed, err := store.Runs.ClaimUnenqueuedRuns(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, r := range claimed {
				got[r.ID] = true
			}
			if len(claimed) != 2 || !got[down.ID] || !got[up.ID] {
				t.Fatalf("unenqueued runs %v, want %s and %s", got, down.ID, up.ID)
			}
		})
	}
}

// TestSubmitter_DatabaseErrorMidBatch: PostgreSQL's backends are cut while
// submissions are in flight. Every caller gets an answer, an error or its
// run, and every run answered without error is stored: nothing a 2xx was
// built on is lost.
func TestSubmitter_DatabaseErrorMidBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, dsn := openStore(t, db.BackendPostgres, "cut")
	wf := mustWorkflow(t, store)
	q := &recordingQueue{}
	counting := gated(store.Runs)
	counting.gate = nil
	sub := startSubmitter(t, counting, q)

	admin, err := db.Open(ctx, dsn) // a second pool, to look at the result
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	const goroutines, per = 16, 25
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered []*orcheo.Run
		failed   int
	)
	stop := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				run, _, err := sub.SubmitRun(cctx, wf, manual(g*per+i, fmt.Sprintf("k-%d-%d", g, i)))
				cancel()
				mu.Lock()
				if err != nil {
					failed++
				} else {
					answered = append(answered, run)
				}
				mu.Unlock()
			}
		}()
	}
	// Cut every other connection to the test's own database, again and
	// again, until the submissions are done.
	cuts := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { cuts <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var killed int64
			err := pgExec(ctx, dsn, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
				FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`, &killed)
			if err == nil {
				n += killed
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	if n := <-cuts; n == 0 {
		t.Fatal("no backend was terminated: the test cut nothing")
	}
	t.Logf("%d runs answered, %d errors, %d CreateRuns calls", len(answered), failed, counting.calls.Load())
	if len(answered)+failed != goroutines*per {
		t.Fatalf("%d answers for %d submissions", len(answered)+failed, goroutines*per)
	}
	for _, run := range answered {
		stored, err := admin.Runs.FindRunByID(ctx, run.ID)
		if err != nil {
			t.Fatalf("run %s was answered but is not stored: %v", run.ID, err)
		}
		if stored.Status != orcheo.RunPending || stored.IdempotencyKey != run.IdempotencyKey {
			t.Fatalf("run %s stored as %+v", run.ID, stored)
		}
		if q.published(run.ID) == 0 && run.EnqueuedAt != nil {
			t.Fatalf("run %s neither published nor marked unenqueued", run.ID)
		}
	}
}

// pgExec runs one query on a connection of its own and scans one value.
func pgExec(ctx context.Context, dsn, query string, dest any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, query).Scan(dest)
}

// TestNew: defaults fill zero fields, and a missing dependency panics.
func TestNew(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("New without Runs did not panic")
		}
	}()
	submit.New(submit.Config{Queue: &recordingQueue{}})
}

// TestStartStop: Start and Stop in any order and number, concurrently.
func TestStartStop(t *testing.T) {
	t.Parallel()
	store, _ := openStore(t, db.BackendSQLite, "")
	sub := submit.New(submit.Config{Runs: store.Runs, Queue: &recordingQueue{}, Logger: quietLogger()})
	sub.Stop()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				sub.Start(context.Background())
			} else {
				sub.Stop()
			}
		}()
	}
	wg.Wait()
	sub.Stop()
	sub.Start(context.Background())
	wf := mustWorkflow(t, store)
	if _, created, err := sub.SubmitRun(context.Background(), wf, manual(1, "")); err != nil || !created {
		t.Fatalf("after restart: %v %v", created, err)
	}
	sub.Stop()
}
