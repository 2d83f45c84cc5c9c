package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func exerciseClaim(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("ClaimAndComplete", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)

		clock.Advance(time.Second)
		lease := clock.Now().Add(30 * time.Second)
		claimed, err := s.Runs.ClaimRun(ctx, r.ID, "worker-7", lease)
		if err != nil {
			t.Fatal(err)
		}
		started := clock.Now().UTC().Truncate(time.Microsecond)
		if claimed.Status != orcheo.RunRunning || claimed.Attempt != 1 || claimed.WorkerID != "worker-7" ||
			claimed.LeaseUntil == nil || !claimed.LeaseUntil.Equal(lease.Truncate(time.Microsecond)) ||
			claimed.StartedAt == nil || !claimed.StartedAt.Equal(started) || claimed.Version != 1 ||
			!jsonEqual(t, claimed.Input, r.Input) {
			t.Fatalf("claimed run = %+v", claimed)
		}

		clock.Advance(time.Second)
		t0 := clock.Now().Add(-time.Second)
		steps := []*orcheo.RunStep{
			{Node: "fetch", NodeType: "http", Status: orcheo.StepSucceeded, Output: json.RawMessage(`{"status": 200}`),
				StartedAt: t0, CompletedAt: &t0},
			{Node: "branch", NodeType: "if", Status: orcheo.StepSkipped, StartedAt: t0},
			{Node: "log", NodeType: "log", Status: orcheo.StepSucceeded, Output: json.RawMessage(`"ok"`), StartedAt: t0, CompletedAt: &t0},
		}
		done, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded,
			Output: json.RawMessage(`{"result": [1, 2, 3]}`), Steps: steps})
		if err != nil {
			t.Fatal(err)
		}
		completed := clock.Now().UTC().Truncate(time.Microsecond)
		if done.Status != orcheo.RunSucceeded || done.CompletedAt == nil || !done.CompletedAt.Equal(completed) ||
			done.LeaseUntil != nil || done.Attempt != 1 {
			t.Fatalf("completed run = %+v", done)
		}

		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.Status != orcheo.RunSucceeded || !jsonEqual(t, found.Output, json.RawMessage(`{"result":[1,2,3]}`)) ||
			found.Error != "" || found.WorkerID != "worker-7" {
			t.Fatalf("found run = %+v", found)
		}
		if len(found.Steps) != 3 {
			t.Fatalf("%d steps, want 3", len(found.Steps))
		}
		for i, st := range found.Steps {
			if st.RunID != r.ID || st.Attempt != 1 || st.Seq != i+1 || st.Node != steps[i].Node ||
				st.NodeType != steps[i].NodeType || st.Status != steps[i].Status ||
				!jsonEqual(t, st.Output, steps[i].Output) || !st.StartedAt.Equal(t0.Truncate(time.Microsecond)) {
				t.Fatalf("step %d = %+v, want %+v", i, st, steps[i])
			}
		}
		if found.Steps[1].CompletedAt != nil || found.Steps[0].CompletedAt == nil {
			t.Fatalf("step completed_at not round-tripped")
		}

		_, err = s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "late"})
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "succeeded")
		_, err = s.Runs.ClaimRun(ctx, r.ID, "w2", lease)
		wantCode(t, err, orcheo.ECONFLICT)
	})

	t.Run("CompleteFailed", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		MustClaim(t, s, r.ID)
		done, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "node x: boom",
			Steps: []*orcheo.RunStep{{Seq: 1, Node: "x", NodeType: "fail", Status: orcheo.StepFailed, Error: "boom", StartedAt: time.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != orcheo.RunFailed || done.Error != "node x: boom" || done.Output != nil {
			t.Fatalf("failed run = %+v", done)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.Error != "node x: boom" || len(found.Steps) != 1 || found.Steps[0].Error != "boom" || found.Steps[0].Output != nil {
			t.Fatalf("found = %+v, steps %+v", found, found.Steps)
		}
	})

	t.Run("CompletionFencedByAttempt", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)

		_, err := s.Runs.CompleteRun(ctx, r.ID, 0, orcheo.RunCompletion{Status: orcheo.RunSucceeded})
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "pending")

		MustClaim(t, s, r.ID)
		// A worker holding another attempt must not overwrite this one, and
		// its steps must not be stored.
		_, err = s.Runs.CompleteRun(ctx, r.ID, 2, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "zombie",
			Steps: []*orcheo.RunStep{{Node: "z", NodeType: "log", Status: orcheo.StepFailed, StartedAt: time.Now()}}})
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "attempt 1")
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if found.Status != orcheo.RunRunning || found.Error != "" || len(found.Steps) != 0 {
			t.Fatalf("fenced completion changed the run: %+v, %d steps", found, len(found.Steps))
		}
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrCompleteInvalid", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		MustClaim(t, s, r.ID)
		for _, c := range []orcheo.RunCompletion{
			{Status: orcheo.RunRunning},
			{Status: orcheo.RunPending},
			{Status: orcheo.RunSucceeded, Output: json.RawMessage(`{`)},
			{Status: orcheo.RunSucceeded, Steps: []*orcheo.RunStep{{Seq: 1, Node: "a"}, {Seq: 1, Node: "b"}}},
		} {
			_, err := s.Runs.CompleteRun(ctx, r.ID, 1, c)
			wantCode(t, err, orcheo.EINVALID)
		}
	})

	t.Run("ConcurrentClaim", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		const n = 50
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, n)
			runs  = make([]*orcheo.Run, n)
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				runs[i], errs[i] = s.Runs.ClaimRun(ctx, r.ID, "worker", time.Now().Add(time.Minute))
			}()
		}
		close(start)
		wg.Wait()
		wins, conflicts := 0, 0
		for i := range n {
			switch orcheo.ErrorCode(errs[i]) {
			case "":
				wins++
				if runs[i].Attempt != 1 {
					t.Fatalf("winner got attempt %d, want 1", runs[i].Attempt)
				}
			case orcheo.ECONFLICT:
				conflicts++
			default:
				t.Fatalf("claim %d: %v", i, errs[i])
			}
		}
		if wins != 1 || conflicts != n-1 {
			t.Fatalf("%d wins and %d conflicts, want 1 and %d", wins, conflicts, n-1)
		}
		found, err := s.Runs.FindRunByID(ctx, r.ID)
		if err != nil || found.Attempt != 1 || found.Status != orcheo.RunRunning {
			t.Fatalf("after the race: %+v, %v", found, err)
		}
	})

	t.Run("NotBefore", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		due := clock.Now().Add(time.Hour)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.NotBefore = &due })
		_, err := s.Runs.ClaimRun(ctx, r.ID, "w", due.Add(time.Minute))
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "not due")
		clock.Advance(time.Hour)
		if _, err := s.Runs.ClaimRun(ctx, r.ID, "w", due.Add(time.Minute)); err != nil {
			t.Fatalf("claim once due: %v", err)
		}
	})

	t.Run("Unenqueued", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		var runs []*orcheo.Run
		for range 4 {
			clock.Advance(time.Second)
			runs = append(runs, MustRun(t, s, wf, func(r *orcheo.Run) { r.Queue = "q1" }))
		}
		got, err := s.Runs.ClaimUnenqueuedRuns(ctx, 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("runs are enqueued optimistically, yet got %v (%v)", got, err)
		}
		for _, i := range []int{2, 0, 3} {
			if err := s.Runs.MarkRunUnenqueued(ctx, runs[i].ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Runs.CancelRun(ctx, runs[3].ID); err != nil {
			t.Fatal(err)
		}
		// Not pending any more: nothing to enqueue, and not an error.
		if err := s.Runs.MarkRunUnenqueued(ctx, runs[3].ID); err != nil {
			t.Fatalf("mark a cancelled run: %v", err)
		}
		clock.Advance(time.Minute)
		got, err = s.Runs.ClaimUnenqueuedRuns(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != runs[0].ID || got[1].ID != runs[2].ID || got[0].Queue != "q1" {
			t.Fatalf("claimed %+v, want runs 0 and 2 oldest first on q1", got)
		}
		found, err := s.Runs.FindRunByID(ctx, runs[0].ID)
		if err != nil || found.EnqueuedAt == nil || !found.EnqueuedAt.Equal(clock.Now().UTC().Truncate(time.Microsecond)) {
			t.Fatalf("enqueued_at after claim = %v (%v)", found.EnqueuedAt, err)
		}
		if again, err := s.Runs.ClaimUnenqueuedRuns(ctx, 10); err != nil || len(again) != 0 {
			t.Fatalf("second claim got %v (%v), want none", again, err)
		}
	})

	t.Run("UnenqueuedConcurrent", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		wf, _ := MustWorkflow(t, s)
		const total, workers, batch = 60, 8, 4
		for range total {
			r := MustRun(t, s, wf)
			if err := s.Runs.MarkRunUnenqueued(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu    sync.Mutex
			seen  = map[string]int{}
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make(chan error, workers)
		)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					got, err := s.Runs.ClaimUnenqueuedRuns(ctx, batch)
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, r := range got {
						seen[r.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(seen) != total {
			t.Fatalf("claimed %d distinct runs, want %d", len(seen), total)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("run %s claimed %d times", id, n)
			}
		}
	})
}
