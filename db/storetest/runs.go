package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func exerciseRuns(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("CreateAndFind", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now().In(time.FixedZone("Y", -7*3600))}
		s.SetNow(clock.Now)
		wf, v1 := MustWorkflow(t, s)
		notBefore := clock.Now().Add(-time.Minute)
		r := &orcheo.Run{WorkflowID: wf.ID, VersionID: v1.ID, TriggeredBy: orcheo.TriggerWebhook,
			Input: json.RawMessage(`{"body": {"a": [1, 2]}}`), IdempotencyKey: "key-1", MaxAttempts: 3,
			NotBefore: &notBefore}
		got, created, err := s.Runs.CreateRun(ctx, r)
		if err != nil || !created {
			t.Fatalf("create = %v, %v", created, err)
		}
		now := clock.Now().UTC().Truncate(time.Microsecond)
		if got != r || !orcheo.IsID(r.ID) || r.Status != orcheo.RunPending || r.Attempt != 0 ||
			r.Queue != orcheo.DefaultQueue || r.Version != 1 || !r.CreatedAt.Equal(now) ||
			r.EnqueuedAt == nil || !r.EnqueuedAt.Equal(now) {
			t.Fatalf("created run = %+v", r)
		}

		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.WorkflowID != wf.ID || found.VersionID != v1.ID || found.Version != 1 ||
			found.Status != orcheo.RunPending || found.TriggeredBy != orcheo.TriggerWebhook ||
			found.IdempotencyKey != "key-1" || found.MaxAttempts != 3 || found.Attempt != 0 ||
			found.Queue != orcheo.DefaultQueue || found.WorkerID != "" || found.LeaseUntil != nil ||
			found.StartedAt != nil || found.CompletedAt != nil || found.Output != nil || len(found.Steps) != 0 {
			t.Fatalf("found run = %+v", found)
		}
		if found.CreatedAt != now || found.EnqueuedAt == nil || *found.EnqueuedAt != now {
			t.Fatalf("times = %v %v, want %v in UTC", found.CreatedAt, found.EnqueuedAt, now)
		}
		if found.NotBefore == nil || !found.NotBefore.Equal(notBefore.Truncate(time.Microsecond)) {
			t.Fatalf("not_before = %v, want %v", found.NotBefore, notBefore)
		}
		if !jsonEqual(t, found.Input, r.Input) {
			t.Fatalf("input = %s, want %s", found.Input, r.Input)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.Input, r.Queue = nil, "" })
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.MaxAttempts != 1 || found.Queue != orcheo.DefaultQueue || !jsonEqual(t, found.Input, json.RawMessage(`{}`)) {
			t.Fatalf("defaults: max_attempts %d, queue %q, input %s", found.MaxAttempts, found.Queue, found.Input)
		}
	})

	t.Run("IdempotencyKey", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		first := MustRun(t, s, wf, func(r *orcheo.Run) { r.IdempotencyKey = "same" })
		again := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual,
			IdempotencyKey: "same", Input: json.RawMessage(`{"other":true}`)}
		got, created, err := s.Runs.CreateRun(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		if created || got.ID != first.ID || got.Version != 1 || !jsonEqual(t, got.Input, first.Input) {
			t.Fatalf("second create = %+v, created %v; want run %s", got, created, first.ID)
		}
		// The key is per workflow.
		other, _ := MustWorkflow(t, s)
		MustRun(t, s, other, func(r *orcheo.Run) { r.IdempotencyKey = "same" })
		list, n, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID})
		if err != nil || n != 1 || len(list) != 1 {
			t.Fatalf("runs of workflow: %d, %v; want 1", n, err)
		}
	})

	t.Run("IdempotencyKeyRace", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		const n = 20
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]*orcheo.Run, n)
			created = make([]bool, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], created[i], errs[i] = s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID,
					VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWebhook, IdempotencyKey: "race"})
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			if created[i] {
				wins++
			}
			if results[i].ID != results[0].ID {
				t.Fatalf("create %d returned run %s, create 0 run %s", i, results[i].ID, results[0].ID)
			}
		}
		if wins != 1 {
			t.Fatalf("%d creates report created=true, want 1", wins)
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID}); err != nil || total != 1 {
			t.Fatalf("stored %d runs (%v), want 1", total, err)
		}
	})

	t.Run("ScheduledForSlot", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		slot := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
		first := MustRun(t, s, wf, func(r *orcheo.Run) { r.TriggeredBy, r.ScheduledFor = orcheo.TriggerCron, &slot })
		got, created, err := s.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID,
			TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot})
		if err != nil || created || got.ID != first.ID {
			t.Fatalf("second run for slot: %+v, created %v, err %v; want run %s", got, created, err, first.ID)
		}
		if got.ScheduledFor == nil || !got.ScheduledFor.Equal(slot) {
			t.Fatalf("scheduled_for = %v, want %v", got.ScheduledFor, slot)
		}
		next := slot.Add(time.Minute)
		second := MustRun(t, s, wf, func(r *orcheo.Run) { r.TriggeredBy, r.ScheduledFor = orcheo.TriggerCron, &next })

		// The trigger filter (runs list --trigger cron).
		MustRun(t, s, wf)
		cron, webhook := orcheo.TriggerCron, orcheo.TriggerWebhook
		list, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, TriggeredBy: &cron})
		if err != nil || total != 2 || len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
			t.Fatalf("cron runs: %d of %d (%v), want runs %s and %s", len(list), total, err, second.ID, first.ID)
		}
		if _, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, TriggeredBy: &webhook}); err != nil || total != 0 {
			t.Fatalf("webhook runs: %d (%v), want 0", total, err)
		}
	})

	t.Run("ErrCreate", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		other, otherV := MustWorkflow(t, s)
		_ = other
		cases := []struct {
			name string
			run  orcheo.Run
			code string
		}{
			{"UnknownTrigger", orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: "nope"}, orcheo.EINVALID},
			{"BadInput", orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual,
				Input: json.RawMessage(`{`)}, orcheo.EINVALID},
			{"MissingVersion", orcheo.Run{WorkflowID: wf.ID, VersionID: orcheo.NewID(), TriggeredBy: orcheo.TriggerManual}, orcheo.ENOTFOUND},
			{"MissingWorkflow", orcheo.Run{WorkflowID: orcheo.NewID(), VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerManual}, orcheo.ENOTFOUND},
			{"VersionOfOtherWorkflow", orcheo.Run{WorkflowID: wf.ID, VersionID: otherV.ID, TriggeredBy: orcheo.TriggerManual}, orcheo.ENOTFOUND},
			{"NotAnID", orcheo.Run{WorkflowID: "x", VersionID: "y", TriggeredBy: orcheo.TriggerManual}, orcheo.ENOTFOUND},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.run
				_, _, err := s.Runs.CreateRun(ctx, &r)
				wantCode(t, err, tc.code)
			})
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		for _, id := range []string{orcheo.NewID(), "not-an-id"} {
			_, err := s.Runs.FindRunByID(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			wantMessageContains(t, err, id)
			_, err = s.Runs.ClaimRun(ctx, id, "w", time.Now().Add(time.Minute))
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.CompleteRun(ctx, id, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded})
			wantCode(t, err, orcheo.ENOTFOUND)
			_, err = s.Runs.CancelRun(ctx, id)
			wantCode(t, err, orcheo.ENOTFOUND)
			wantCode(t, s.Runs.MarkRunUnenqueued(ctx, id), orcheo.ENOTFOUND)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		clock.Advance(time.Second)
		got, err := s.Runs.CancelRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := clock.Now().UTC().Truncate(time.Microsecond)
		if got.Status != orcheo.RunCancelled || got.CompletedAt == nil || !got.CompletedAt.Equal(want) || got.Version != 1 {
			t.Fatalf("cancelled run = %+v", got)
		}
		_, err = s.Runs.CancelRun(ctx, r.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "cancelled")
		_, err = s.Runs.ClaimRun(ctx, r.ID, "w", time.Now().Add(time.Minute))
		wantCode(t, err, orcheo.ECONFLICT)

		// A running run is only flagged (retry.go covers the rest).
		running := MustRun(t, s, wf)
		MustClaim(t, s, running.ID)
		flagged, err := s.Runs.CancelRun(ctx, running.ID)
		if err != nil {
			t.Fatal(err)
		}
		if flagged.Status != orcheo.RunRunning || !flagged.CancelRequested || flagged.CompletedAt != nil {
			t.Fatalf("cancel of a running run = %+v", flagged)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		a, _ := MustWorkflow(t, s)
		b, _ := MustWorkflow(t, s)
		var aRuns, bRuns []*orcheo.Run
		for i := range 6 {
			clock.Advance(time.Second)
			aRuns = append(aRuns, MustRun(t, s, a))
			clock.Advance(time.Second)
			bRuns = append(bRuns, MustRun(t, s, b))
			if i%2 == 1 {
				if _, err := s.Runs.CancelRun(ctx, aRuns[i].ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		MustClaim(t, s, bRuns[0].ID)
		pending, cancelled, running, bogus := orcheo.RunPending, orcheo.RunCancelled, orcheo.RunRunning, orcheo.RunStatus("bogus")
		missing := orcheo.NewID()
		notID := "not-an-id"

		cases := []struct {
			name   string
			filter orcheo.RunFilter
			want   []*orcheo.Run // newest first
			total  int
		}{
			{"All", orcheo.RunFilter{Limit: 3}, []*orcheo.Run{bRuns[5], aRuns[5], bRuns[4]}, 12},
			{"Workflow", orcheo.RunFilter{WorkflowID: &a.ID}, reversed(aRuns), 6},
			{"Status", orcheo.RunFilter{Status: &cancelled}, []*orcheo.Run{aRuns[5], aRuns[3], aRuns[1]}, 3},
			{"WorkflowAndStatus", orcheo.RunFilter{WorkflowID: &b.ID, Status: &pending, Offset: 3},
				[]*orcheo.Run{bRuns[2], bRuns[1]}, 5},
			{"Running", orcheo.RunFilter{Status: &running}, []*orcheo.Run{bRuns[0]}, 1},
			{"PastTheEnd", orcheo.RunFilter{WorkflowID: &a.ID, Offset: 100}, nil, 6},
			{"MissingWorkflow", orcheo.RunFilter{WorkflowID: &missing}, nil, 0},
			{"NotAnID", orcheo.RunFilter{WorkflowID: &notID}, nil, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, total, err := s.Runs.FindRuns(ctx, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if total != tc.total || len(got) != len(tc.want) {
					t.Fatalf("got %d runs of %d, want %d of %d", len(got), total, len(tc.want), tc.total)
				}
				for i := range got {
					if got[i].ID != tc.want[i].ID {
						t.Fatalf("run %d = %s, want %s", i, got[i].ID, tc.want[i].ID)
					}
					if got[i].Steps != nil {
						t.Fatalf("FindRuns filled steps")
					}
				}
			})
		}
		_, _, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{Status: &bogus})
		wantCode(t, err, orcheo.EINVALID)
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		for range 55 {
			MustRun(t, s, wf)
		}
		got, total, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID})
		if err != nil || len(got) != 50 || total != 55 {
			t.Fatalf("default page: %d of %d (%v), want 50 of 55", len(got), total, err)
		}
		got, _, err = s.Runs.FindRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 5000})
		if err != nil || len(got) != 55 {
			t.Fatalf("large limit: %d (%v), want 55", len(got), err)
		}
	})
}

func reversed(runs []*orcheo.Run) []*orcheo.Run {
	out := make([]*orcheo.Run, len(runs))
	for i, r := range runs {
		out[len(runs)-1-i] = r
	}
	return out
}
