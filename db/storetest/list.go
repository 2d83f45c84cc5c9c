package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// exerciseList checks ListRuns: keyset pages newest first by (created_at,
// id) that stay put while runs are inserted between them, and each filter.
func exerciseList(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("Pages", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now().Add(-time.Hour)}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		// Five runs share one created_at, so the order within them is the
		// id's alone; then three and two a second apart.
		var all []*orcheo.Run
		for _, n := range []int{5, 3, 2} {
			for i := 0; i < n; i++ {
				all = append(all, MustRun(t, s, wf))
			}
			clock.Advance(time.Second)
		}
		want := newestFirst(all)

		var got []string
		var cursor *orcheo.RunCursor
		for page := 1; ; page++ {
			runs, more, err := s.Runs.ListRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 3, Before: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) > 3 || (more && len(runs) != 3) {
				t.Fatalf("page %d: %d runs, more %v", page, len(runs), more)
			}
			for _, r := range runs {
				got = append(got, r.ID)
				if len(r.Steps) != 0 || r.WorkflowID != wf.ID {
					t.Fatalf("page %d: run %+v", page, r)
				}
			}
			if !more {
				if page != 4 {
					t.Fatalf("%d pages, want 4 (10 runs by 3)", page)
				}
				break
			}
			last := runs[len(runs)-1]
			cursor = &orcheo.RunCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			// Newer runs arriving between pages do not shift the next page.
			MustRun(t, s, wf)
			clock.Advance(time.Millisecond)
		}
		if !slices.Equal(got, ids(want)) {
			t.Fatalf("pages = %v\nwant    %v", got, ids(want))
		}

		// A page that ends exactly at the last run says there is no more.
		runs, more, err := s.Runs.ListRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 13})
		if err != nil || len(runs) != 13 || more {
			t.Fatalf("limit 13 of 13: %d runs, more %v, %v", len(runs), more, err)
		}
		runs, more, err = s.Runs.ListRuns(ctx, orcheo.RunFilter{WorkflowID: &wf.ID, Limit: 12})
		if err != nil || len(runs) != 12 || !more {
			t.Fatalf("limit 12 of 13: %d runs, more %v, %v", len(runs), more, err)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		clock := &fixedClock{t: start}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		other, _ := MustWorkflow(t, s)
		queue := strings.ToLower(uniqueHandle("q"))
		key := uniqueHandle("key")

		at := func(d time.Duration) { clock.t = start.Add(d) }
		at(0)
		manual := MustRun(t, s, wf)
		at(time.Minute)
		hook := MustRun(t, s, wf, func(r *orcheo.Run) { r.TriggeredBy, r.IdempotencyKey = orcheo.TriggerWebhook, key })
		at(2 * time.Minute)
		queued := MustRun(t, s, wf, func(r *orcheo.Run) { r.Queue = queue })
		at(3 * time.Minute)
		cancelled := MustRun(t, s, wf)
		if _, err := s.Runs.CancelRun(ctx, cancelled.ID); err != nil {
			t.Fatal(err)
		}
		at(4 * time.Minute)
		running := MustRun(t, s, wf, func(r *orcheo.Run) { r.Queue = queue })
		MustClaim(t, s, running.ID)
		// Another workflow's run with the same key and queue.
		otherRun := MustRun(t, s, other, func(r *orcheo.Run) { r.Queue, r.IdempotencyKey = queue, key })

		str := func(v string) *string { return &v }
		st := func(v orcheo.RunStatus) *orcheo.RunStatus { return &v }
		tm := func(d time.Duration) *time.Time { v := start.Add(d); return &v }
		for _, tc := range []struct {
			name   string
			filter orcheo.RunFilter
			want   []*orcheo.Run
		}{
			{"Workflow", orcheo.RunFilter{WorkflowID: &wf.ID}, []*orcheo.Run{running, cancelled, queued, hook, manual}},
			{"Status", orcheo.RunFilter{WorkflowID: &wf.ID, Status: st(orcheo.RunPending)}, []*orcheo.Run{queued, hook, manual}},
			{"StatusRunning", orcheo.RunFilter{WorkflowID: &wf.ID, Status: st(orcheo.RunRunning)}, []*orcheo.Run{running}},
			{"Trigger", orcheo.RunFilter{WorkflowID: &wf.ID, TriggeredBy: str(orcheo.TriggerWebhook)}, []*orcheo.Run{hook}},
			{"Queue", orcheo.RunFilter{Queue: &queue}, []*orcheo.Run{otherRun, running, queued}},
			{"QueueStatus", orcheo.RunFilter{Queue: &queue, Status: st(orcheo.RunPending)}, []*orcheo.Run{otherRun, queued}},
			{"Since", orcheo.RunFilter{WorkflowID: &wf.ID, CreatedSince: tm(2 * time.Minute)}, []*orcheo.Run{running, cancelled, queued}},
			{"Until", orcheo.RunFilter{WorkflowID: &wf.ID, CreatedUntil: tm(2 * time.Minute)}, []*orcheo.Run{hook, manual}},
			{"SinceUntil", orcheo.RunFilter{WorkflowID: &wf.ID, CreatedSince: tm(time.Minute), CreatedUntil: tm(3*time.Minute + time.Second)}, []*orcheo.Run{cancelled, queued, hook}},
			{"ID", orcheo.RunFilter{ID: &queued.ID}, []*orcheo.Run{queued}},
			{"IDOtherWorkflow", orcheo.RunFilter{ID: &queued.ID, WorkflowID: &other.ID}, nil},
			{"IdempotencyKey", orcheo.RunFilter{IdempotencyKey: &key}, []*orcheo.Run{otherRun, hook}},
			{"IdempotencyKeyWorkflow", orcheo.RunFilter{IdempotencyKey: &key, WorkflowID: &wf.ID}, []*orcheo.Run{hook}},
			{"WorkflowNotAnID", orcheo.RunFilter{WorkflowID: str("nope")}, nil},
			{"Nothing", orcheo.RunFilter{WorkflowID: &wf.ID, Status: st(orcheo.RunSucceeded)}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				runs, more, err := s.Runs.ListRuns(ctx, tc.filter)
				if err != nil || more {
					t.Fatalf("ListRuns: more %v, %v", more, err)
				}
				if got := ids(runs); !slices.Equal(got, ids(tc.want)) {
					t.Fatalf("ListRuns = %v, want %v", got, ids(tc.want))
				}
				// FindRuns takes the same filters.
				found, total, err := s.Runs.FindRuns(ctx, tc.filter)
				if err != nil || total != len(tc.want) || !slices.Equal(ids(found), ids(tc.want)) {
					t.Fatalf("FindRuns = %v (%d), %v, want %v", ids(found), total, err, ids(tc.want))
				}
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		str := func(v string) *string { return &v }
		now := time.Now()
		earlier := now.Add(-time.Hour)
		for name, f := range map[string]orcheo.RunFilter{
			"Queue":       {Queue: str("Not A Queue")},
			"SinceUntil":  {CreatedSince: &now, CreatedUntil: &earlier},
			"ID":          {ID: str("x")},
			"EmptyKey":    {IdempotencyKey: str("")},
			"LongKey":     {IdempotencyKey: str(strings.Repeat("k", 256))},
			"CursorID":    {Before: &orcheo.RunCursor{CreatedAt: now, ID: "x"}},
			"Trigger":     {TriggeredBy: str("beat")},
			"StatusValue": {Status: func() *orcheo.RunStatus { v := orcheo.RunStatus("done"); return &v }()},
		} {
			if _, _, err := s.Runs.ListRuns(ctx, f); orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Errorf("%s: ListRuns err = %v, want EINVALID", name, err)
			}
		}
	})
}

// newestFirst sorts a copy of runs as ListRuns orders them.
func newestFirst(runs []*orcheo.Run) []*orcheo.Run {
	out := slices.Clone(runs)
	slices.SortFunc(out, func(a, b *orcheo.Run) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

func ids(runs []*orcheo.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}
