package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// exerciseStats checks RunStats on a database of its own, since it counts
// every run.
func exerciseStats(t *testing.T, backend Backend) {
	ctx := context.Background()
	s := openFresh(t, backend)
	stats := func(tb testing.TB, s *db.Store, now time.Time) *orcheo.RunStats {
		tb.Helper()
		ss, ok := s.Runs.(orcheo.RunStatsService)
		if !ok {
			tb.Fatalf("%T does not implement orcheo.RunStatsService", s.Runs)
		}
		st, err := ss.RunStats(ctx, now)
		if err != nil {
			tb.Fatalf("run stats: %v", err)
		}
		return st
	}

	t.Run("Empty", func(t *testing.T) {
		if st := stats(t, s, time.Now()); st.Pending != 0 || st.Running != 0 || st.OldestDue != nil {
			t.Fatalf("stats = %+v, want zeros", st)
		}
	})

	t.Run("OK", func(t *testing.T) {
		wf, _ := MustWorkflow(t, s)
		due := MustRun(t, s, wf)
		later := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
		waiting := MustRun(t, s, wf, func(r *orcheo.Run) { r.NotBefore = &later })
		MustClaim(t, s, MustRun(t, s, wf).ID)
		finished := MustClaim(t, s, MustRun(t, s, wf).ID)
		if _, err := s.Runs.CompleteRun(ctx, finished.ID, finished.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}

		st := stats(t, s, time.Now())
		if st.Pending != 2 || st.Running != 1 {
			t.Fatalf("pending, running = %d, %d; want 2, 1", st.Pending, st.Running)
		}
		if st.OldestDue == nil || !st.OldestDue.Equal(due.CreatedAt) {
			t.Fatalf("oldest due = %v, want the due run's created_at %v", st.OldestDue, due.CreatedAt)
		}

		// Once the due run is taken, only the waiting one is pending: not
		// due now, due from its NotBefore later.
		MustClaim(t, s, due.ID)
		if st := stats(t, s, time.Now()); st.OldestDue != nil || st.Pending != 1 || st.Running != 2 {
			t.Fatalf("stats = %+v, want 1 pending (not due) and 2 running", st)
		}
		st = stats(t, s, later.Add(time.Minute))
		if st.OldestDue == nil || !st.OldestDue.Equal(*waiting.NotBefore) {
			t.Fatalf("oldest due after its not_before = %v, want %v", st.OldestDue, waiting.NotBefore)
		}
	})
}

// exerciseRunCounts checks CountRunsByStatus on a database of its own,
// since it counts every run in its range.
func exerciseRunCounts(t *testing.T, backend Backend) {
	ctx := context.Background()
	s := openFresh(t, backend)
	rc, ok := s.Runs.(orcheo.RunCounts)
	if !ok {
		t.Fatalf("%T does not implement orcheo.RunCounts", s.Runs)
	}
	now := time.Now()
	if got, err := rc.CountRunsByStatus(ctx, now.Add(-24*time.Hour), now); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v, %v; want no counts", got, err)
	}
	wf, _ := MustWorkflow(t, s)
	MustRun(t, s, wf)
	MustRun(t, s, wf)
	MustClaim(t, s, MustRun(t, s, wf).ID)
	done := MustClaim(t, s, MustRun(t, s, wf).ID)
	if _, err := s.Runs.CompleteRun(ctx, done.ID, done.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	got, err := rc.CountRunsByStatus(ctx, now.Add(-time.Hour), after)
	if err != nil {
		t.Fatal(err)
	}
	want := map[orcheo.RunStatus]int64{orcheo.RunPending: 2, orcheo.RunRunning: 1, orcheo.RunSucceeded: 1}
	if len(got) != len(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	for st, n := range want {
		if got[st] != n {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	}
	// The range is half open and bounds what is counted.
	if got, err := rc.CountRunsByStatus(ctx, after, after.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("a later range: %v, %v; want no counts", got, err)
	}
	if got, err := rc.CountRunsByStatus(ctx, now.Add(-2*time.Hour), now.Add(-time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("an earlier range: %v, %v; want no counts", got, err)
	}
	for name, r := range map[string][2]time.Time{
		"Empty":    {now, now},
		"Reversed": {now, now.Add(-time.Hour)},
		"TooLong":  {now.Add(-orcheo.RunCountsRangeMax - time.Hour), now},
	} {
		if _, err := rc.CountRunsByStatus(ctx, r[0], r[1]); orcheo.ErrorCode(err) != orcheo.EINVALID {
			t.Errorf("%s range: %v, want EINVALID", name, err)
		}
	}
}
