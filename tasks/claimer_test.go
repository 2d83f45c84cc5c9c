package tasks

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/mock"
)

// claimRecorder is a mock RunService whose ClaimRuns claims every id and
// records the batches, and whose ReleaseRun records what it released.
type claimRecorder struct {
	mock.RunService
	mu       sync.Mutex
	batches  [][]string
	released []string
	stacks   []string // the goroutine stack of each ClaimRuns
}

func newClaimRecorder() *claimRecorder {
	r := &claimRecorder{}
	r.ClaimRunsFn = func(_ context.Context, ids []string, _ string, _ time.Time) ([]orcheo.RunClaim, error) {
		buf := make([]byte, 16<<10)
		stack := string(buf[:runtime.Stack(buf, false)])
		r.mu.Lock()
		r.batches = append(r.batches, append([]string(nil), ids...))
		r.stacks = append(r.stacks, stack)
		r.mu.Unlock()
		out := make([]orcheo.RunClaim, len(ids))
		for i, id := range ids {
			out[i] = orcheo.RunClaim{ID: id, Run: &orcheo.Run{ID: id, Attempt: 1, Status: orcheo.RunRunning}}
		}
		return out, nil
	}
	r.ReleaseRunFn = func(_ context.Context, id string, attempt int) (*orcheo.Run, error) {
		r.mu.Lock()
		r.released = append(r.released, id)
		r.mu.Unlock()
		return &orcheo.Run{ID: id, Attempt: attempt, Status: orcheo.RunPending}, nil
	}
	return r
}

func (r *claimRecorder) get() (batches [][]string, released, stacks []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.batches...), append([]string(nil), r.released...), append([]string(nil), r.stacks...)
}

// TestClaimer_LoneClaimOnItsCallersGoroutine: a claim with no batch in
// flight is written by the claiming goroutine itself, with no hand-off to
// the claimer's goroutine and back.
func TestClaimer_LoneClaimOnItsCallersGoroutine(t *testing.T) {
	t.Parallel()
	runs := newClaimRecorder()
	c := newClaimer(runs, "w", time.Minute)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	for i := range 3 {
		run, err := c.claim("run-" + string(rune('a'+i)))
		if err != nil || run == nil {
			t.Fatalf("claim: %v, %v", run, err)
		}
	}
	batches, _, stacks := runs.get()
	if len(batches) != 3 {
		t.Fatalf("batches = %v, want three of one", batches)
	}
	for i, st := range stacks {
		if !strings.Contains(st, "(*claimer).claimFor") || strings.Contains(st, "tasks.batchLoop") {
			t.Fatalf("ClaimRuns %d ran off the claiming goroutine:\n%s", i, st)
		}
	}
}

// TestClaimer_ExpectedClaimsGoTogether: the runs the fetcher announced
// (expect) are claimed in one batch by the first task to ask; the others
// find theirs made and claim nothing more.
func TestClaimer_ExpectedClaimsGoTogether(t *testing.T) {
	t.Parallel()
	runs := newClaimRecorder()
	c := newClaimer(runs, "w", time.Minute)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	sigs := make([]*mtasks.Signature, 5)
	for i := range sigs {
		sigs[i] = &mtasks.Signature{UUID: orcheo.NewID()}
		c.expect(sigs[i], "run-"+sigs[i].UUID)
	}
	if batches, _, _ := runs.get(); len(batches) != 0 {
		t.Fatalf("expect started a batch: %v", batches)
	}
	for i, sig := range sigs {
		run, err := c.claimFor(sig, "run-"+sig.UUID)
		if err != nil || run == nil || run.ID != "run-"+sig.UUID {
			t.Fatalf("claim %d: %v, %v", i, run, err)
		}
		c.forget(sig)
	}
	batches, released, _ := runs.get()
	if len(batches) != 1 || len(batches[0]) != 5 || len(released) != 0 {
		t.Fatalf("batches %v, released %v; want the five in one batch, none released", batches, released)
	}
}

// TestClaimer_ForgetHandsBackAnUnaskedClaim: a run announced for a task
// that never asked for it is handed back (ReleaseRun) when it was claimed
// with its siblings, and never claimed when no batch took it yet.
func TestClaimer_ForgetHandsBackAnUnaskedClaim(t *testing.T) {
	t.Parallel()
	runs := newClaimRecorder()
	c := newClaimer(runs, "w", time.Minute)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	a, b := &mtasks.Signature{UUID: "a"}, &mtasks.Signature{UUID: "b"}
	c.expect(a, "run-a")
	c.expect(b, "run-b")
	if _, err := c.claimFor(a, "run-a"); err != nil {
		t.Fatal(err)
	}
	c.forget(a)
	c.forget(b) // b's task never asked: its run, claimed with a's, goes back
	batches, released, _ := runs.get()
	if len(batches) != 1 || len(batches[0]) != 2 || len(released) != 1 || released[0] != "run-b" {
		t.Fatalf("batches %v, released %v; want one batch of two and run-b released", batches, released)
	}
	// Announced and forgotten before any batch: never claimed.
	d := &mtasks.Signature{UUID: "d"}
	c.expect(d, "run-d")
	c.forget(d)
	if _, err := c.claim("run-e"); err != nil {
		t.Fatal(err)
	}
	batches, released, _ = runs.get()
	if len(batches) != 2 || len(batches[1]) != 1 || batches[1][0] != "run-e" || len(released) != 1 {
		t.Fatalf("batches %v, released %v; want run-e alone after run-d was forgotten", batches, released)
	}
}

// claimCounter wraps a store's RunService and records the size of each
// ClaimRuns batch.
type claimCounter struct {
	orcheo.RunService
	mu    sync.Mutex
	sizes []int
}

func (c *claimCounter) ClaimRuns(ctx context.Context, ids []string, workerID string, leaseUntil time.Time) ([]orcheo.RunClaim, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(ids))
	c.mu.Unlock()
	return c.RunService.ClaimRuns(ctx, ids, workerID, leaseUntil)
}

// TestWorker_OneTakeOneClaim: the runs of messages taken together are
// claimed in one ClaimRuns (the fetcher announces them before their tasks
// start), on a real store and Redis.
func TestWorker_OneTakeOneClaim(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	f := newFixture(t, store, testenv.StartRedis(t).URL(), func(cfg *Config, _ *engine.Options) { cfg.Concurrency = 8 })
	counter := &claimCounter{RunService: store.Runs}
	f.worker.Runs = counter
	ctx := context.Background()
	var runs []*orcheo.Run
	for range 8 {
		runs = append(runs, f.createRun(t, okDefinition, `{"n":1}`))
	}
	for _, err := range f.queue.EnqueueRuns(ctx, runs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.start(t) // the eight wait in the queue: the first take gets them all
	for _, r := range runs {
		if got := f.waitTerminal(t, r.ID); got.Status != orcheo.RunSucceeded {
			t.Fatalf("run %s: %s", r.ID, got.Status)
		}
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if len(counter.sizes) != 1 || counter.sizes[0] != 8 {
		t.Fatalf("ClaimRuns batches %v, want one of 8", counter.sizes)
	}
}
