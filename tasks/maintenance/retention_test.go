package maintenance

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// retentionStore is a store on a database of its own (a purge deletes
// across workflows) with a clock the test sets, and a workflow to run.
type retentionStore struct {
	*db.Store
	wf *orcheo.Workflow

	mu  sync.Mutex
	now time.Time
}

func newRetentionStore(tb testing.TB, backend string) *retentionStore {
	tb.Helper()
	s := &retentionStore{Store: openStore(tb, backend, "maintenance_retention"), now: time.Now()}
	s.SetNow(s.clock)
	s.wf = &orcheo.Workflow{Handle: "wf-" + strings.ToLower(orcheo.NewID()[24:]), Name: "test"}
	_, err := s.Workflows.CreateWorkflow(context.Background(), s.wf, json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`))
	must(tb, err)
	return s
}

func (s *retentionStore) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *retentionStore) set(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t
}

// run stores a run of s.wf; finished ends it with status at the store's
// clock, with a step.
func (s *retentionStore) run(tb testing.TB, finished orcheo.RunStatus) *orcheo.Run {
	tb.Helper()
	ctx := context.Background()
	run, _, err := s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: s.wf.ID, VersionID: s.wf.LatestVersionID,
		TriggeredBy: orcheo.TriggerManual, Input: json.RawMessage(`{}`)})
	must(tb, err)
	if finished == "" {
		return run
	}
	claimed, err := s.Runs.ClaimRun(ctx, run.ID, "w1", s.clock().Add(time.Minute))
	must(tb, err)
	at := *claimed.StartedAt
	_, err = s.Runs.CompleteRun(ctx, run.ID, claimed.Attempt, orcheo.RunCompletion{Status: finished, Steps: []*orcheo.RunStep{
		{Seq: 1, Node: "a", NodeType: "log", Status: orcheo.StepSucceeded, StartedAt: at, CompletedAt: &at}}})
	must(tb, err)
	return run
}

// exists reports whether run id is still stored.
func (s *retentionStore) exists(tb testing.TB, id string) bool {
	tb.Helper()
	_, err := s.Runs.FindRunByID(context.Background(), id)
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return false
	}
	must(tb, err)
	return true
}

// TestRetention_DeletesOldFinishedRuns: a pass deletes, in batches, the
// runs that finished more than Retention ago by the service's clock, and
// counts them; unfinished and newer runs stay.
func TestRetention_DeletesOldFinishedRuns(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{db.BackendSQLite, db.BackendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newRetentionStore(t, backend)
			t0 := time.Now()
			s.set(t0.Add(-40 * 24 * time.Hour))
			old := []*orcheo.Run{s.run(t, orcheo.RunSucceeded), s.run(t, orcheo.RunFailed), s.run(t, orcheo.RunSucceeded)}
			pending, running := s.run(t, ""), s.run(t, "")
			_, err := s.Runs.ClaimRun(ctx, running.ID, "w1", t0.Add(time.Hour))
			must(t, err)
			s.set(t0)
			recent := s.run(t, orcheo.RunSucceeded)

			var now time.Time
			r := NewRetention(RetentionConfig{Runs: s.Runs, Retention: 30 * 24 * time.Hour, BatchSize: 2,
				BatchPause: time.Millisecond, Logger: testLogger(), Now: func() time.Time { return now }})
			now = t0.Add(15 * 24 * time.Hour)
			n, err := r.runOnce(ctx)
			must(t, err)
			if n != 3 {
				t.Fatalf("pass deleted %d runs, want the 3 old finished ones (in two batches of 2)", n)
			}
			for _, run := range old {
				if s.exists(t, run.ID) {
					t.Fatalf("old finished run %s kept", run.ID)
				}
			}
			for _, run := range []*orcheo.Run{pending, running, recent} {
				if !s.exists(t, run.ID) {
					t.Fatalf("run %s (unfinished or newer) deleted", run.ID)
				}
			}
			// A month after the recent run finished, it goes too; the
			// unfinished ones never do.
			now = t0.Add(31 * 24 * time.Hour)
			if n, err := r.runOnce(ctx); err != nil || n != 1 || s.exists(t, recent.ID) {
				t.Fatalf("second pass deleted %d (err %v), want the recent run", n, err)
			}
			if st := r.Stats(); st.Deleted != 4 || st.Passes != 2 {
				t.Fatalf("stats = %+v, want 4 deleted in 2 passes", st)
			}
			if !s.exists(t, pending.ID) || !s.exists(t, running.ID) {
				t.Fatal("an unfinished run was deleted")
			}
		})
	}
}

// TestRetention_StartStop: Start makes a pass at once; Stop is idempotent
// and safe without Start; a stopped service starts again.
func TestRetention_StartStop(t *testing.T) {
	t.Parallel()
	s := newRetentionStore(t, db.BackendSQLite)
	s.set(time.Now().Add(-2 * time.Hour))
	old := s.run(t, orcheo.RunCancelled)
	r := NewRetention(RetentionConfig{Runs: s.Runs, Retention: time.Hour, Interval: time.Hour, Logger: testLogger()})
	r.Stop() // never started
	r.passDone = make(chan int)
	r.Start(context.Background())
	r.Start(context.Background()) // already started: nothing
	if n := <-r.passDone; n != 1 || s.exists(t, old.ID) {
		t.Fatalf("first pass deleted %d, want the run finished two hours ago", n)
	}
	r.Stop()
	r.Stop()
	r.Start(context.Background())
	if n := <-r.passDone; n != 0 {
		t.Fatalf("pass after restart deleted %d, want 0", n)
	}
	r.Stop()
}

func TestRetention_Defaults(t *testing.T) {
	t.Parallel()
	runs, _, _ := idleDeps(t)
	r := NewRetention(RetentionConfig{Runs: runs, Retention: RetentionDefault})
	if c := r.cfg; c.Interval != RetentionIntervalDefault || c.BatchSize != RetentionBatchSizeDefault ||
		c.BatchPause != RetentionBatchPauseDefault || c.Now == nil || c.Logger == nil || c.Retention != 30*24*time.Hour {
		t.Errorf("retention config = %+v, want the defaults", c)
	}
	for name, cfg := range map[string]RetentionConfig{
		"WithoutRuns":      {Retention: time.Hour},
		"WithoutRetention": {Runs: runs},
		"Negative":         {Runs: runs, Retention: time.Hour, BatchSize: -1},
		"RunningStatus":    {Runs: runs, Retention: time.Hour, Statuses: []orcheo.RunStatus{orcheo.RunRunning}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			NewRetention(cfg)
		})
	}
}
