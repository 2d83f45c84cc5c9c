package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
	"github.com/orcheo/orcheo/submit"
)

// startSubmitter returns a started run submitter on runs and q, stopped
// when the test ends.
func startSubmitter(tb testing.TB, runs orcheo.RunService, q orcheo.RunQueue) *submit.Submitter {
	tb.Helper()
	s := submit.New(submit.Config{Runs: runs, Queue: q, Logger: quietLogger()})
	s.Start(context.Background())
	tb.Cleanup(s.Stop)
	return s
}

// newRun is a pending manual run of wf's latest version with the options
// applied, not yet stored.
func newRun(wf *orcheo.Workflow, opts ...func(*orcheo.Run)) *orcheo.Run {
	r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual,
		Input: json.RawMessage(`{"n":1}`)}
	for _, o := range opts {
		o(r)
	}
	return r
}

func withKey(key string) func(*orcheo.Run) { return func(r *orcheo.Run) { r.IdempotencyKey = key } }

// wantCreated fails unless res is a run created without error.
func wantCreated(tb testing.TB, i int, res orcheo.RunCreated) *orcheo.Run {
	tb.Helper()
	if res.Err != nil || !res.Created || res.Run == nil || res.Run.ID == "" {
		tb.Fatalf("run %d: created %v, run %+v, err %v; want a created run", i, res.Created, res.Run, res.Err)
	}
	return res.Run
}

// exerciseCreateBatch covers CreateRuns: many runs in one call, each with
// its own outcome, the way the submit package's batches use it.
func exerciseCreateBatch(t *testing.T, backend Backend) {
	ctx := context.Background()

	// Fields: every created run is filled in and stored as CreateRun
	// would, and each has its "created" event.
	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		now := clock.Now()
		wf, v := MustWorkflow(t, s)
		// A version whose definition sets a retry budget gives its runs
		// that budget.
		budget, err := s.Workflows.CreateWorkflowVersion(ctx, wf.ID, json.RawMessage(`{"retry":{"max_attempts":4},"nodes":[{"id":"a","type":"log"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		parent := MustRun(t, s, wf)
		slot := now.Add(-time.Minute)
		runs := []*orcheo.Run{
			newRun(wf, func(r *orcheo.Run) { r.VersionID = v.ID; r.Queue = "reports"; r.MaxAttempts = 2 }),
			newRun(wf, func(r *orcheo.Run) { r.VersionID = budget.ID; r.TriggeredBy = orcheo.TriggerWebhook }),
			newRun(wf, func(r *orcheo.Run) {
				r.VersionID = budget.ID
				r.TriggeredBy = orcheo.TriggerWorkflow
				r.ParentRunID, r.RootRunID, r.Depth = parent.ID, parent.ID, 1
				r.IdempotencyKey = "parent:" + parent.ID + ":1:a"
			}),
			newRun(wf, func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerCron; r.ScheduledFor = &slot; r.Input = nil }),
		}
		results := s.Runs.CreateRuns(ctx, runs)
		if len(results) != len(runs) {
			t.Fatalf("%d results for %d runs", len(results), len(runs))
		}
		want := []struct {
			version, maxAttempts int
			queue, trigger       string
		}{
			{1, 2, "reports", orcheo.TriggerManual},
			{2, 4, orcheo.DefaultQueue, orcheo.TriggerWebhook},
			{2, 4, orcheo.DefaultQueue, orcheo.TriggerWorkflow},
			{1, 1, orcheo.DefaultQueue, orcheo.TriggerCron},
		}
		seen := map[string]bool{}
		for i, res := range results {
			got := wantCreated(t, i, res)
			if got != runs[i] {
				t.Fatalf("run %d: the result is not the run passed in, filled in", i)
			}
			if seen[got.ID] || !orcheo.IsID(got.ID) {
				t.Fatalf("run %d: id %q repeated or not an id", i, got.ID)
			}
			seen[got.ID] = true
			w := want[i]
			if got.Status != orcheo.RunPending || got.Attempt != 0 || got.Version != w.version || got.MaxAttempts != w.maxAttempts ||
				got.Queue != w.queue || !got.CreatedAt.Equal(now) || got.EnqueuedAt == nil || !got.EnqueuedAt.Equal(now) {
				t.Fatalf("run %d returned %+v, want version %d, max_attempts %d, queue %s, created and enqueued at %s",
					i, got, w.version, w.maxAttempts, w.queue, now)
			}
			found, err := s.Runs.FindRunByID(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if found.Status != orcheo.RunPending || found.Version != w.version || found.MaxAttempts != w.maxAttempts ||
				found.Queue != w.queue || found.TriggeredBy != w.trigger || !found.CreatedAt.Equal(now) ||
				found.EnqueuedAt == nil || !found.EnqueuedAt.Equal(now) || !jsonEqual(t, found.Input, got.Input) {
				t.Fatalf("run %d stored as %+v", i, found)
			}
			wantEvents(t, s, got.ID, rules.Event{At: now, Kind: "created", Message: "triggered by " + w.trigger})
		}
		child, _ := s.Runs.FindRunByID(ctx, results[2].Run.ID)
		if child.ParentRunID != parent.ID || child.RootRunID != parent.ID || child.Depth != 1 || child.IdempotencyKey == "" {
			t.Fatalf("child stored as parent %q root %q depth %d key %q", child.ParentRunID, child.RootRunID, child.Depth, child.IdempotencyKey)
		}
		cron, _ := s.Runs.FindRunByID(ctx, results[3].Run.ID)
		if cron.ScheduledFor == nil || !cron.ScheduledFor.Equal(rules.Time(slot)) || !jsonEqual(t, cron.Input, json.RawMessage(`{}`)) {
			t.Fatalf("cron run stored with slot %v input %s", cron.ScheduledFor, cron.Input)
		}
		if got := s.Runs.CreateRuns(ctx, nil); len(got) != 0 {
			t.Fatalf("no runs: %d results", len(got))
		}
	})

	// IdempotencyConflict: one run of the batch reuses a key already
	// stored; it gets the stored run with created=false and the others
	// commit, each with its event.
	t.Run("IdempotencyConflict", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		first := MustRun(t, s, wf, withKey("taken"))
		runs := []*orcheo.Run{newRun(wf, withKey("a")), newRun(wf, withKey("taken")), newRun(wf), newRun(wf, withKey("b"))}
		results := s.Runs.CreateRuns(ctx, runs)
		for _, i := range []int{0, 2, 3} {
			r := wantCreated(t, i, results[i])
			if _, err := s.Runs.FindRunByID(ctx, r.ID); err != nil {
				t.Fatalf("run %d not stored: %v", i, err)
			}
			wantEvents(t, s, r.ID, rules.Event{At: r.CreatedAt, Kind: "created", Message: "triggered by manual"})
		}
		dup := results[1]
		if dup.Err != nil || dup.Created || dup.Run == nil || dup.Run.ID != first.ID || dup.Run.IdempotencyKey != "taken" {
			t.Fatalf("conflicting run: %+v", dup)
		}
		if runs[1].ID != "" {
			t.Fatalf("the conflicting run was given id %s", runs[1].ID)
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 4 {
			t.Fatalf("%d runs stored, want 4 (%v)", total, err)
		}
		// The same key of another trigger is another key.
		other := s.Runs.CreateRuns(ctx, []*orcheo.Run{newRun(wf, withKey("taken"), func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerWebhook })})
		wantCreated(t, 0, other[0])
	})

	// DuplicateKeysInBatch: two runs with one key in one call yield one
	// run; the other gets it with created=false. So do two runs of one
	// cron slot.
	t.Run("DuplicateKeysInBatch", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		slot := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		cron := func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerCron; r.ScheduledFor = &slot }
		runs := []*orcheo.Run{newRun(wf, withKey("k")), newRun(wf), newRun(wf, withKey("k")), newRun(wf, cron), newRun(wf, cron)}
		results := s.Runs.CreateRuns(ctx, runs)
		wantCreated(t, 1, results[1])
		for _, pair := range [][2]int{{0, 2}, {3, 4}} {
			a, b := results[pair[0]], results[pair[1]]
			if a.Err != nil || b.Err != nil || a.Run == nil || b.Run == nil {
				t.Fatalf("runs %v: %+v, %+v", pair, a, b)
			}
			if a.Created == b.Created || a.Run.ID != b.Run.ID {
				t.Fatalf("runs %v: created %v and %v, ids %s and %s; want one run, created once", pair, a.Created, b.Created, a.Run.ID, b.Run.ID)
			}
			wantEvents(t, s, a.Run.ID, rules.Event{At: a.Run.CreatedAt, Kind: "created", Message: "triggered by " + a.Run.TriggeredBy})
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 3 {
			t.Fatalf("%d runs stored, want 3 (%v)", total, err)
		}
	})

	// CronSlotConflict: a slot already taken yields its run, the rest of
	// the batch commits.
	t.Run("CronSlotConflict", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		slot := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		next := slot.Add(time.Hour)
		taken := MustRun(t, s, wf, func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerCron; r.ScheduledFor = &slot })
		results := s.Runs.CreateRuns(ctx, []*orcheo.Run{
			newRun(wf, func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerCron; r.ScheduledFor = &slot }),
			newRun(wf, func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerCron; r.ScheduledFor = &next }),
		})
		if r := results[0]; r.Err != nil || r.Created || r.Run == nil || r.Run.ID != taken.ID {
			t.Fatalf("taken slot: %+v", r)
		}
		wantCreated(t, 1, results[1])
	})

	// BadRowsFailAlone: an unknown version, input that cannot be stored
	// and a version whose definition the database cannot read each fail
	// their own run; the others commit.
	t.Run("BadRowsFailAlone", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		other, _ := MustWorkflow(t, s)
		// retry.max_attempts that is not a number: PostgreSQL refuses the
		// cast, which fails the statement the whole batch shares.
		bad, err := s.Workflows.CreateWorkflowVersion(ctx, wf.ID, json.RawMessage(`{"retry":{"max_attempts":"many"},"nodes":[{"id":"a","type":"log"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		runs := []*orcheo.Run{
			newRun(wf, withKey("ok-1")),
			newRun(wf, func(r *orcheo.Run) { r.VersionID = orcheo.NewID() }),                  // unknown version
			newRun(wf, func(r *orcheo.Run) { r.VersionID = other.LatestVersionID }),           // another workflow's version
			newRun(wf, func(r *orcheo.Run) { r.Input = json.RawMessage(`{"x":"a\u0000b"}`) }), // unstorable input
			newRun(wf, func(r *orcheo.Run) { r.VersionID = bad.ID }),                          // unreadable definition
			newRun(wf, func(r *orcheo.Run) { r.WorkflowID = "not-an-id" }),
			newRun(wf, withKey("ok-2")),
		}
		results := s.Runs.CreateRuns(ctx, runs)
		for _, i := range []int{0, 6} {
			r := wantCreated(t, i, results[i])
			if _, err := s.Runs.FindRunByID(ctx, r.ID); err != nil {
				t.Fatalf("run %d not stored: %v", i, err)
			}
		}
		wantCode(t, results[1].Err, orcheo.ENOTFOUND)
		wantCode(t, results[2].Err, orcheo.ENOTFOUND)
		wantCode(t, results[3].Err, orcheo.EINVALID)
		if results[4].Err == nil {
			t.Fatalf("run of the unreadable version: %+v, want an error", results[4])
		}
		wantCode(t, results[5].Err, orcheo.ENOTFOUND)
		for _, i := range []int{1, 2, 3, 4, 5} {
			if results[i].Run != nil || results[i].Created {
				t.Fatalf("failed run %d: %+v", i, results[i])
			}
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 2 {
			t.Fatalf("%d runs stored, want 2 (%v)", total, err)
		}
	})

	// ManyConcurrent: batches from many goroutines at once, sharing keys,
	// store each key once and every other run once.
	t.Run("ManyConcurrent", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		const goroutines, per = 8, 20
		ids := make(chan map[string]bool, goroutines)
		for g := 0; g < goroutines; g++ {
			go func() {
				runs := make([]*orcheo.Run, per)
				for i := range runs {
					runs[i] = newRun(wf, withKey(fmt.Sprintf("k%d", i%10)))
				}
				got := map[string]bool{}
				for i, res := range s.Runs.CreateRuns(ctx, runs) {
					if res.Err != nil {
						t.Errorf("run %d: %v", i, res.Err)
						continue
					}
					got[res.Run.ID] = true
				}
				ids <- got
			}()
		}
		all := map[string]bool{}
		for g := 0; g < goroutines; g++ {
			for id := range <-ids {
				all[id] = true
			}
		}
		if len(all) != 10 {
			t.Fatalf("%d distinct runs for 10 keys", len(all))
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 10 {
			t.Fatalf("%d runs stored, want 10 (%v)", total, err)
		}
	})
}
