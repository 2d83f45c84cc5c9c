package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// exercisePurge covers DeleteFinishedRuns. Each case has a database of its
// own, since a purge deletes across workflows, and a store clock it moves:
// runs finish "long ago" or "now" at explicit times.
func exercisePurge(t *testing.T, backend Backend) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	longAgo := now.Add(-40 * 24 * time.Hour)
	cutoff := now.Add(-30 * 24 * time.Hour)

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s, clock := purgeStore(t, backend, longAgo)
		wf, _ := MustWorkflow(t, s)
		succeeded := finishRun(t, s, wf, orcheo.RunSucceeded)
		failed := finishRun(t, s, wf, orcheo.RunFailed)
		cancelled := MustRun(t, s, wf)
		if _, err := s.Runs.CancelRun(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		slot := longAgo.Add(-time.Minute)
		skipped, _, err := s.Cron.CreateSkippedRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
			TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}, "skipped: busy")
		if err != nil {
			t.Fatal(err)
		}
		oldPending := MustRun(t, s, wf)
		oldRunning := MustClaim(t, s, MustRun(t, s, wf).ID)
		clock.set(now)
		recent := finishRun(t, s, wf, orcheo.RunSucceeded)

		if n := purge(t, s, orcheo.RunPurge{Before: cutoff, DryRun: true}); n != 4 {
			t.Fatalf("dry run counted %d, want 4", n)
		}
		wantRuns(t, s, succeeded.ID, failed.ID, cancelled.ID, skipped.ID, oldPending.ID, oldRunning.ID, recent.ID) // the dry run deleted nothing
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff}); n != 4 {
			t.Fatalf("purged %d, want 4", n)
		}
		for _, id := range []string{succeeded.ID, failed.ID, cancelled.ID, skipped.ID} {
			_, err := s.Runs.FindRunByID(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			wantEvents(t, s, id) // the audit trail went with the run
		}
		wantRuns(t, s, oldPending.ID, oldRunning.ID, recent.ID)
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff}); n != 0 {
			t.Fatalf("second purge deleted %d, want 0", n)
		}
		// The recent run goes once the cutoff passes it; the unfinished
		// ones never do.
		if n := purge(t, s, orcheo.RunPurge{Before: now.Add(time.Second)}); n != 1 {
			t.Fatalf("purge of everything finished deleted %d, want 1", n)
		}
		wantRuns(t, s, oldPending.ID, oldRunning.ID)
	})

	t.Run("Statuses", func(t *testing.T) {
		t.Parallel()
		s, _ := purgeStore(t, backend, longAgo)
		wf, _ := MustWorkflow(t, s)
		succeeded := finishRun(t, s, wf, orcheo.RunSucceeded)
		failed := finishRun(t, s, wf, orcheo.RunFailed)
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff, Statuses: []orcheo.RunStatus{orcheo.RunFailed}}); n != 1 {
			t.Fatalf("purged %d failed runs, want 1", n)
		}
		_, err := s.Runs.FindRunByID(ctx, failed.ID)
		wantCode(t, err, orcheo.ENOTFOUND)
		wantRuns(t, s, succeeded.ID)
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		s, clock := purgeStore(t, backend, longAgo)
		wf, _ := MustWorkflow(t, s)
		var ids []string
		for range 5 {
			ids = append(ids, finishRun(t, s, wf, orcheo.RunSucceeded).ID)
			clock.set(clock.Now().Add(time.Second))
		}
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff, Limit: 2, DryRun: true}); n != 2 {
			t.Fatalf("dry run with limit 2 counted %d", n)
		}
		for i, want := range []int{2, 2, 1, 0} {
			if n := purge(t, s, orcheo.RunPurge{Before: cutoff, Limit: 2}); n != want {
				t.Fatalf("batch %d deleted %d, want %d", i+1, n, want)
			}
			if i == 0 { // oldest first
				wantRuns(t, s, ids[2:]...)
			}
		}
	})

	t.Run("ChildOfUnfinishedParent", func(t *testing.T) {
		t.Parallel()
		s, clock := purgeStore(t, backend, longAgo)
		wf, _ := MustWorkflow(t, s)
		parent := MustClaim(t, s, MustRun(t, s, wf).ID)
		child := finishRun(t, s, wf, orcheo.RunSucceeded, func(r *orcheo.Run) {
			r.TriggeredBy, r.ParentRunID, r.RootRunID, r.Depth = orcheo.TriggerWorkflow, parent.ID, parent.ID, 1
			r.IdempotencyKey = "parent:" + parent.ID + ":1:call"
		})
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff}); n != 0 {
			t.Fatalf("purged %d runs while the parent runs, want 0", n)
		}
		wantRuns(t, s, parent.ID, child.ID)
		clock.set(now)
		if _, err := s.Runs.CompleteRun(ctx, parent.ID, parent.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
		if n := purge(t, s, orcheo.RunPurge{Before: cutoff}); n != 1 {
			t.Fatalf("purged %d once the parent finished (recently), want the child", n)
		}
		wantRuns(t, s, parent.ID)
	})

	t.Run("EINVALID", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, p := range []orcheo.RunPurge{
			{},
			{Before: cutoff, Statuses: []orcheo.RunStatus{orcheo.RunRunning}},
			{Before: cutoff, Statuses: []orcheo.RunStatus{orcheo.RunSucceeded, orcheo.RunPending}},
			{Before: cutoff, Statuses: []orcheo.RunStatus{"done"}},
		} {
			_, err := s.Runs.DeleteFinishedRuns(ctx, p)
			wantCode(t, err, orcheo.EINVALID)
		}
	})
}

// purgeClock is a store clock a test sets.
type purgeClock struct{ fixedClock }

func (c *purgeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// purgeStore is a store on a database of its own whose clock reads at.
func purgeStore(tb testing.TB, backend Backend, at time.Time) (*db.Store, *purgeClock) {
	tb.Helper()
	s := openFresh(tb, backend)
	clock := &purgeClock{fixedClock{t: at}}
	s.SetNow(clock.Now)
	return s, clock
}

// finishRun creates, claims and completes a run with status (succeeded or
// failed) and two steps, at the store's clock.
func finishRun(tb testing.TB, s *db.Store, wf *orcheo.Workflow, status orcheo.RunStatus, opts ...func(*orcheo.Run)) *orcheo.Run {
	tb.Helper()
	r := MustClaim(tb, s, MustRun(tb, s, wf, opts...).ID)
	at := r.StartedAt
	steps := []*orcheo.RunStep{
		{Seq: 1, Node: "a", NodeType: "log", Status: orcheo.StepSucceeded, Output: json.RawMessage(`{}`), StartedAt: *at, CompletedAt: at},
		{Seq: 2, Node: "b", NodeType: "log", Status: orcheo.StepSucceeded, StartedAt: *at, CompletedAt: at},
	}
	done, err := s.Runs.CompleteRun(context.Background(), r.ID, r.Attempt, orcheo.RunCompletion{Status: status, Error: "x", Steps: steps})
	if err != nil {
		tb.Fatalf("complete run: %v", err)
	}
	return done
}

// purge calls DeleteFinishedRuns and fails the test on an error.
func purge(tb testing.TB, s *db.Store, p orcheo.RunPurge) int {
	tb.Helper()
	n, err := s.Runs.DeleteFinishedRuns(context.Background(), p)
	if err != nil {
		tb.Fatalf("delete finished runs %+v: %v", p, err)
	}
	return n
}

// wantRuns fails unless the store holds exactly the runs ids.
func wantRuns(tb testing.TB, s *db.Store, ids ...string) {
	tb.Helper()
	runs, _, err := s.Runs.FindRuns(context.Background(), orcheo.RunFilter{Limit: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range runs {
		got[r.ID] = true
	}
	for _, id := range ids {
		if !got[id] {
			tb.Fatalf("run %s is gone; want it kept (have %d runs)", id, len(runs))
		}
	}
	if len(runs) != len(ids) {
		tb.Fatalf("store holds %d runs, want %d", len(runs), len(ids))
	}
}

// PurgeCascade checks that DeleteFinishedRuns takes a run's steps and
// events with it. The root interfaces cannot see the rows of a deleted run,
// so the backend's test counts them: rows returns how many rows of table
// (run_steps or run_events) belong to runID. dsn names a database of its
// own (the purge deletes across workflows).
func PurgeCascade(t *testing.T, dsn string, rows func(tb testing.TB, table, runID string) int) {
	s, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now()
	clock := &purgeClock{fixedClock{t: now.Add(-40 * 24 * time.Hour)}}
	s.SetNow(clock.Now)
	wf, _ := MustWorkflow(t, s)
	old := finishRun(t, s, wf, orcheo.RunSucceeded)
	clock.set(now)
	kept := finishRun(t, s, wf, orcheo.RunSucceeded)
	for _, id := range []string{old.ID, kept.ID} {
		if rows(t, "run_steps", id) != 2 || rows(t, "run_events", id) == 0 {
			t.Fatalf("run %s has %d steps and %d events before the purge, want 2 and some", id,
				rows(t, "run_steps", id), rows(t, "run_events", id))
		}
	}
	if n := purge(t, s, orcheo.RunPurge{Before: now.Add(-30 * 24 * time.Hour)}); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	if st, ev := rows(t, "run_steps", old.ID), rows(t, "run_events", old.ID); st != 0 || ev != 0 {
		t.Fatalf("purged run left %d steps and %d events", st, ev)
	}
	if rows(t, "run_steps", kept.ID) != 2 || rows(t, "run_events", kept.ID) == 0 {
		t.Fatal("the purge took the kept run's steps or events")
	}
}
