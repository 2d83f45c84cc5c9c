package storetest

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/schedule"
)

// countingQueue is a RunQueue that counts what it is given.
type countingQueue struct{ n atomic.Int64 }

func (q *countingQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	q.n.Add(1)
	return nil
}

// finishingQueue is a RunQueue whose "worker" claims and completes each
// run the moment it is enqueued: the fastest worker there can be.
func (q *countingQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRun)
}

type finishingQueue struct {
	tb   testing.TB
	runs orcheo.RunService
}

func (q *finishingQueue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	claimed, err := q.runs.ClaimRun(ctx, run.ID, "fast", time.Now().Add(time.Minute))
	if err != nil {
		q.tb.Errorf("claim %s: %v", run.ID, err)
		return nil
	}
	if _, err := q.runs.CompleteRun(ctx, run.ID, claimed.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
		q.tb.Errorf("complete %s: %v", run.ID, err)
	}
	return nil
}

func (q *finishingQueue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRun)
}

// cronStore opens a store whose clock is stuck at t0 (the trigger's
// UpdatedAt comes from it), and a dispatcher on it.
func cronStore(t *testing.T, backend Backend, t0 time.Time) (*db.Store, *schedule.Dispatcher, *countingQueue) {
	t.Helper()
	// A database of its own: a dispatch handles every trigger it finds, so
	// parallel tests must not see each other's.
	s := openFresh(t, backend)
	clock := &fixedClock{t: t0}
	s.SetNow(clock.Now)
	q := &countingQueue{}
	// The dispatcher's own clock is two hours on: tests pass each dispatch
	// its now, which may not be ahead of that clock.
	later := &fixedClock{t: t0.Add(2 * time.Hour)}
	d := &schedule.Dispatcher{Cron: s.Cron, Workflows: s.Workflows, Submitter: startSubmitter(t, s.Runs, q), Now: later.Now,
		Logger: quietLogger()}
	return s, d, q
}

func exerciseCron(t *testing.T, backend Backend) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)

	t.Run("SetFindDelete", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		_, err := s.Cron.FindCronTrigger(ctx, wf.ID)
		wantCode(t, err, orcheo.ENOTFOUND)
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		in := &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "0 9 * * *", Timezone: "Europe/Paris",
			AllowOverlapping: true, StartAt: &start, Catchup: orcheo.CatchupAll, CatchupLimit: 3}
		if err := s.Cron.SetCronTrigger(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Cron.FindCronTrigger(ctx, wf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Expression != "0 9 * * *" || got.Timezone != "Europe/Paris" || !got.AllowOverlapping ||
			got.StartAt == nil || !got.StartAt.Equal(start) || got.EndAt != nil || got.Catchup != orcheo.CatchupAll ||
			got.CatchupLimit != 3 || got.LastDispatchedAt != nil || !got.UpdatedAt.Equal(in.UpdatedAt) {
			t.Fatalf("stored %+v\nfrom %+v", got, in)
		}
		slot := time.Date(2025, 1, 2, 8, 0, 0, 0, time.UTC)
		if err := s.Cron.MarkCronDispatched(ctx, wf.ID, slot); err != nil {
			t.Fatal(err)
		}
		// Never backwards.
		if err := s.Cron.MarkCronDispatched(ctx, wf.ID, slot.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Replacing the config keeps the cursor.
		if err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "@hourly"}); err != nil {
			t.Fatal(err)
		}
		got, err = s.Cron.FindCronTrigger(ctx, wf.ID)
		if err != nil || got.Expression != "@hourly" || got.Timezone != "UTC" || got.AllowOverlapping || got.StartAt != nil ||
			got.Catchup != orcheo.CatchupNone || got.LastDispatchedAt == nil || !got.LastDispatchedAt.Equal(slot) {
			t.Fatalf("replaced: %+v (%v)", got, err)
		}
		list, err := s.Cron.FindCronTriggers(ctx)
		if err != nil || !containsTrigger(list, wf.ID) {
			t.Fatalf("FindCronTriggers misses %s: %v", wf.ID, err)
		}
		if err := s.Cron.DeleteCronTrigger(ctx, wf.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.Cron.DeleteCronTrigger(ctx, wf.ID), orcheo.ENOTFOUND)
		_, err = s.Cron.FindCronTrigger(ctx, wf.ID)
		wantCode(t, err, orcheo.ENOTFOUND)
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		wantCode(t, s.Cron.SetCronTrigger(ctx, nil), orcheo.EINVALID)
		err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "* * * * *", Timezone: "Nowhere/Land"})
		wantCode(t, err, orcheo.EINVALID)
		wantMessageContains(t, err, "timezone")
		missing := orcheo.NewID()
		err = s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: missing, Expression: "* * * * *"})
		wantCode(t, err, orcheo.ENOTFOUND)
		wantCode(t, s.Cron.DeleteCronTrigger(ctx, missing), orcheo.ENOTFOUND)
		if err := s.Cron.MarkCronDispatched(ctx, missing, t0); err != nil {
			t.Fatalf("mark a missing trigger: %v", err)
		}
	})

	t.Run("ArchivedNotListed", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		if err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "* * * * *"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Workflows.ArchiveWorkflow(ctx, wf.ID); err != nil {
			t.Fatal(err)
		}
		list, err := s.Cron.FindCronTriggers(ctx)
		if err != nil || containsTrigger(list, wf.ID) {
			t.Fatalf("archived workflow's trigger listed (%v)", err)
		}
	})

	t.Run("SkippedRun", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		slot := t0
		r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}
		got, created, err := s.Cron.CreateSkippedRun(ctx, r, "skipped: busy")
		if err != nil || !created {
			t.Fatalf("create skipped: %v created=%t", err, created)
		}
		if got.Status != orcheo.RunSkipped || got.Error != "skipped: busy" || got.EnqueuedAt != nil || got.CompletedAt == nil {
			t.Fatalf("skipped run = %+v", got)
		}
		st := orcheo.RunSkipped
		list, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Status: &st})
		if err != nil || total != 1 || list[0].ID != got.ID || !list[0].ScheduledFor.Equal(slot) {
			t.Fatalf("FindRuns(skipped) = %d runs (%v)", total, err)
		}
		// The slot is taken: a pending run for it is not created.
		again := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}
		existing, created, err := s.Runs.CreateRun(ctx, again)
		if err != nil || created || existing.ID != got.ID {
			t.Fatalf("CreateRun on a skipped slot: created=%t %v", created, err)
		}
		_, err = s.Runs.ClaimRun(ctx, got.ID, "w", time.Now().Add(time.Minute))
		wantCode(t, err, orcheo.ECONFLICT)
		active, err := s.Cron.FindActiveCronRun(ctx, wf.ID, slot.Add(time.Hour))
		if err != nil || active != nil {
			t.Fatalf("a skipped run counts as active: %v %v", active, err)
		}
	})

	// TwentyDispatchers: 20 concurrent dispatches for the same now create
	// exactly one run per due slot, enqueue each once, and every created
	// run is reported by exactly one caller.
	t.Run("TwentyDispatchers", func(t *testing.T) {
		t.Parallel()
		s, d, q := cronStore(t, backend, t0)
		overlap, _ := MustWorkflow(t, s)
		serial, _ := MustWorkflow(t, s)
		for _, tr := range []*orcheo.CronTrigger{
			{WorkflowID: overlap.ID, Expression: "*/10 * * * *", AllowOverlapping: true, Catchup: orcheo.CatchupAll},
			{WorkflowID: serial.ID, Expression: "*/10 * * * *", Catchup: orcheo.CatchupAll},
		} {
			if err := s.Cron.SetCronTrigger(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(time.Hour + time.Minute) // slots 10:10 … 11:00
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created = map[string]int{}
		)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := d.DispatchCron(ctx, &now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range res.Runs {
					if r.WorkflowID == overlap.ID || r.WorkflowID == serial.ID {
						created[r.ID]++
					}
				}
			}()
		}
		wg.Wait()
		for id, n := range created {
			if n != 1 {
				t.Errorf("run %s reported by %d dispatchers", id, n)
			}
		}
		counts := func(wf *orcheo.Workflow) map[orcheo.RunStatus]int {
			runs, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			slots := map[time.Time]bool{}
			out := map[orcheo.RunStatus]int{}
			for _, r := range runs {
				if r.ScheduledFor == nil || slots[*r.ScheduledFor] || r.TriggeredBy != orcheo.TriggerCron {
					t.Fatalf("run %s: slot %v repeated or missing", r.ID, r.ScheduledFor)
				}
				slots[*r.ScheduledFor] = true
				out[r.Status]++
			}
			if total != 6 {
				t.Fatalf("workflow %s has %d runs, want one per slot (6)", wf.Handle, total)
			}
			return out
		}
		if c := counts(overlap); c[orcheo.RunPending] != 6 {
			t.Fatalf("overlapping workflow: %v, want 6 pending", c)
		}
		// Without overlapping, the first slot fires and the other five find
		// it pending.
		if c := counts(serial); c[orcheo.RunPending] != 1 || c[orcheo.RunSkipped] != 5 {
			t.Fatalf("serial workflow: %v, want 1 pending and 5 skipped", c)
		}
		if len(created) != 12 || q.n.Load() != 7 {
			t.Fatalf("created %d runs and enqueued %d, want 12 and 7", len(created), q.n.Load())
		}
		tr, err := s.Cron.FindCronTrigger(ctx, overlap.ID)
		if err != nil || tr.LastDispatchedAt == nil || !tr.LastDispatchedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("cursor = %v (%v)", tr.LastDispatchedAt, err)
		}
		// A second round for the same now finds nothing left to do.
		res, err := d.DispatchCron(ctx, &now)
		if err != nil || countOf(res.Runs, overlap.ID, serial.ID) != 0 {
			t.Fatalf("second dispatch: %v", err)
		}
	})

	// Overlap: a slow run skips the next slot; the slot after it finishes
	// fires.
	t.Run("OverlapSkipsThenFires", func(t *testing.T) {
		t.Parallel()
		s, d, _ := cronStore(t, backend, t0)
		wf, _ := MustWorkflow(t, s)
		if err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "*/10 * * * *"}); err != nil {
			t.Fatal(err)
		}
		dispatch := func(at time.Time) *orcheo.Run {
			t.Helper()
			res, err := d.DispatchCron(ctx, &at)
			if err != nil {
				t.Fatal(err)
			}
			var mine []*orcheo.Run
			for _, r := range res.Runs {
				if r.WorkflowID == wf.ID {
					mine = append(mine, r)
				}
			}
			if len(mine) != 1 {
				t.Fatalf("dispatch at %s created %d runs, want 1", at, len(mine))
			}
			return mine[0]
		}
		slow := dispatch(t0.Add(10*time.Minute + 5*time.Second))
		if slow.Status != orcheo.RunPending {
			t.Fatalf("first slot: %s", slow.Status)
		}
		MustClaim(t, s, slow.ID)
		skipped := dispatch(t0.Add(20*time.Minute + 5*time.Second))
		if skipped.Status != orcheo.RunSkipped || skipped.Error == "" {
			t.Fatalf("second slot: %s %q", skipped.Status, skipped.Error)
		}
		if _, err := s.Runs.CompleteRun(ctx, slow.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
		if third := dispatch(t0.Add(30*time.Minute + 5*time.Second)); third.Status != orcheo.RunPending {
			t.Fatalf("third slot: %s", third.Status)
		}
	})

	// CatchupWithFastWorker: the slots one dispatch catches up are decided
	// before any of their runs is enqueued, so a worker that finishes the
	// first run at once cannot let a later slot of the same call fire.
	t.Run("CatchupWithFastWorker", func(t *testing.T) {
		t.Parallel()
		s, d, _ := cronStore(t, backend, t0)
		d.Submitter = startSubmitter(t, s.Runs, &finishingQueue{tb: t, runs: s.Runs})
		wf, _ := MustWorkflow(t, s)
		if err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "*/10 * * * *",
			Catchup: orcheo.CatchupAll, CatchupLimit: 3}); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(50*time.Minute + 5*time.Second)
		if _, err := d.DispatchCron(ctx, &at); err != nil {
			t.Fatal(err)
		}
		st := orcheo.RunSucceeded
		done, _, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Status: &st})
		if err != nil {
			t.Fatal(err)
		}
		st = orcheo.RunSkipped
		skipped, _, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Status: &st})
		if err != nil {
			t.Fatal(err)
		}
		// Slots :10 to :40 were missed (three caught up: :20, :30, :40) and
		// :50 is on time: :20 fires, the rest find it still busy.
		if len(done) != 1 || len(skipped) != 3 {
			t.Fatalf("%d succeeded and %d skipped, want 1 and 3", len(done), len(skipped))
		}
	})

	t.Run("DispatchRules", func(t *testing.T) {
		t.Parallel()
		s, d, _ := cronStore(t, backend, t0)
		wf, _ := MustWorkflow(t, s)
		end := t0.Add(30 * time.Minute)
		if err := s.Cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: wf.ID, Expression: "*/10 * * * *",
			Timezone: "Asia/Tokyo", AllowOverlapping: true, EndAt: &end}); err != nil {
			t.Fatal(err)
		}
		// Nothing far in the future.
		future := t0.Add(2*time.Hour + 2*time.Minute)
		_, err := d.DispatchCron(ctx, &future)
		wantCode(t, err, orcheo.EINVALID)
		// Catch-up none: beat was away from 10:00 to 10:45; only slots
		// within the grace fire, and end_at (10:30) caps them.
		at := t0.Add(31 * time.Minute)
		res, err := d.DispatchCron(ctx, &at)
		if err != nil {
			t.Fatal(err)
		}
		if n := countOf(res.Runs, wf.ID); n != 1 {
			t.Fatalf("fired %d, want the 10:30 slot only", n)
		}
		r := res.Runs[0]
		for _, x := range res.Runs {
			if x.WorkflowID == wf.ID {
				r = x
			}
		}
		if !r.ScheduledFor.Equal(end) || !jsonEqual(t, r.Input, []byte(`{"scheduled_for":"2025-01-01T19:30:00+09:00","timezone":"Asia/Tokyo"}`)) {
			t.Fatalf("run %v input %s", r.ScheduledFor, r.Input)
		}
		later := t0.Add(50 * time.Minute)
		if res, err := d.DispatchCron(ctx, &later); err != nil || countOf(res.Runs, wf.ID) != 0 {
			t.Fatalf("after end_at: %v", err)
		}
	})
}

// quietLogger discards the dispatcher's per-slot log lines.
func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func countOf(runs []*orcheo.Run, workflowIDs ...string) int {
	n := 0
	for _, r := range runs {
		for _, id := range workflowIDs {
			if r.WorkflowID == id {
				n++
			}
		}
	}
	return n
}

func containsTrigger(list []*orcheo.CronTrigger, workflowID string) bool {
	for _, t := range list {
		if t.WorkflowID == workflowID {
			return true
		}
	}
	return false
}
