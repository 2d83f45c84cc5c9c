package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// exerciseLease covers the lease methods: release, heartbeat, rescue of
// expired leases and the search for runs whose message was lost. Rescue and
// stale searches look at every run, so those tests use a database of their
// own.
func exerciseLease(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 1 })
		first := MustClaim(t, s, r.ID)

		_, err := s.Runs.ReleaseRun(ctx, r.ID, 2)
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "attempt 1")

		released, err := s.Runs.ReleaseRun(ctx, r.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if released.Status != orcheo.RunPending || released.Attempt != 1 || released.ReleasedAttempts != 1 ||
			released.LeaseUntil != nil || released.EnqueuedAt == nil {
			t.Fatalf("released run = %+v", released)
		}
		_, err = s.Runs.ReleaseRun(ctx, r.ID, 1)
		wantCode(t, err, orcheo.ECONFLICT)
		wantMessageContains(t, err, "pending")

		// The next claim gets a number of its own, and the released attempt
		// did not use up the only attempt: a lost lease still gets rescued
		// as failed only once attempt 2 is used.
		again, err := s.Runs.ClaimRun(ctx, r.ID, "w2", time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if again.Attempt != 2 || again.ReleasedAttempts != 1 {
			t.Fatalf("claim after release = %+v", again)
		}
		// started_at is the run's first start, so its duration spans every
		// attempt and suspension.
		if again.StartedAt == nil || !again.StartedAt.Equal(*first.StartedAt) {
			t.Fatalf("started_at after a release = %v, want the first claim's %v", again.StartedAt, first.StartedAt)
		}
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 2, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
		_, err = s.Runs.ReleaseRun(ctx, orcheo.NewID(), 1)
		wantCode(t, err, orcheo.ENOTFOUND)
	})

	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wf, _ := MustWorkflow(t, s)
		a, b, c, pending := MustRun(t, s, wf), MustRun(t, s, wf), MustRun(t, s, wf), MustRun(t, s, wf)
		MustClaim(t, s, a.ID)
		MustClaim(t, s, b.ID)
		if _, err := s.Runs.ClaimRun(ctx, c.ID, "w2", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		until := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		got, err := s.Runs.HeartbeatRuns(ctx, "w1", []string{a.ID, b.ID, c.ID, pending.ID, orcheo.NewID(), "not-an-id"}, until)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		want := []string{a.ID, b.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("extended %v, want %v", got, want)
		}
		for _, id := range []string{a.ID, c.ID} {
			r, err := s.Runs.FindRunByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if extended := r.LeaseUntil != nil && r.LeaseUntil.Equal(until); extended != (id == a.ID) {
				t.Fatalf("run %s lease = %v", id, r.LeaseUntil)
			}
		}
		if got, err := s.Runs.HeartbeatRuns(ctx, "w1", nil, until); err != nil || len(got) != 0 {
			t.Fatalf("empty heartbeat = %v, %v", got, err)
		}
	})

	t.Run("RescueExpired", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		retry := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		last := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 1 })
		live := MustRun(t, s, wf)
		for _, r := range []*orcheo.Run{retry, last} {
			if _, err := s.Runs.ClaimRun(ctx, r.ID, "dead", clock.Now().Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Runs.ClaimRun(ctx, live.ID, "alive", clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Runs.RescueExpiredRuns(ctx, clock.Now().Add(5*time.Second), 0); err != nil || len(got) != 0 {
			t.Fatalf("rescue before expiry = %v, %v", got, err)
		}

		clock.Advance(11 * time.Second)
		got, err := s.Runs.RescueExpiredRuns(ctx, clock.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != retry.ID || got[1].ID != last.ID {
			t.Fatalf("rescued %+v, want %s and %s", got, retry.ID, last.ID)
		}
		if got[0].Status != orcheo.RunPending || got[0].Attempt != 1 || got[0].WorkerID != "dead" || got[0].Queue != wf.Queue ||
			got[1].Status != orcheo.RunFailed || got[1].MaxAttempts != 1 {
			t.Fatalf("rescued = %+v, %+v", got[0], got[1])
		}
		r, err := s.Runs.FindRunByID(ctx, retry.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != orcheo.RunPending || r.LeaseUntil != nil || r.EnqueuedAt == nil || r.CompletedAt != nil {
			t.Fatalf("rescued run = %+v", r)
		}
		r, err = s.Runs.FindRunByID(ctx, last.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != orcheo.RunFailed || r.Error != "worker lost" || r.CompletedAt == nil || r.LeaseUntil != nil {
			t.Fatalf("failed run = %+v", r)
		}
		// A zombie holding the lost attempt cannot complete it.
		_, err = s.Runs.CompleteRun(ctx, retry.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded})
		wantCode(t, err, orcheo.ECONFLICT)

		// The second attempt of retry is its last.
		if _, err := s.Runs.ClaimRun(ctx, retry.ID, "dead2", clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
		got, err = s.Runs.RescueExpiredRuns(ctx, clock.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Status != orcheo.RunFailed || got[0].Attempt != 2 {
			t.Fatalf("second rescue = %+v", got)
		}
	})

	t.Run("RescueIgnoresReleasedAttempts", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		for attempt := 1; attempt <= 2; attempt++ {
			if _, err := s.Runs.ClaimRun(ctx, r.ID, "w", clock.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if attempt == 1 {
				if _, err := s.Runs.ReleaseRun(ctx, r.ID, 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		clock.Advance(2 * time.Second)
		got, err := s.Runs.RescueExpiredRuns(ctx, clock.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		// Attempt 2 is the first one used: one is left.
		if len(got) != 1 || got[0].Status != orcheo.RunPending || got[0].Attempt != 2 {
			t.Fatalf("rescued = %+v", got)
		}
	})

	t.Run("RescueLimit", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		wf, _ := MustWorkflow(t, s)
		for range 5 {
			r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 3 })
			if _, err := s.Runs.ClaimRun(ctx, r.ID, "w", time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		first, err := s.Runs.RescueExpiredRuns(ctx, time.Now(), 3)
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.Runs.RescueExpiredRuns(ctx, time.Now(), 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) != 3 || len(second) != 2 {
			t.Fatalf("rescued %d then %d, want 3 then 2", len(first), len(second))
		}
	})

	t.Run("ClaimStale", func(t *testing.T) {
		t.Parallel()
		s := openFresh(t, backend)
		clock := &fixedClock{t: time.Now()}
		s.SetNow(clock.Now)
		wf, _ := MustWorkflow(t, s)
		old := MustRun(t, s, wf)
		lost := MustRun(t, s, wf)
		if err := s.Runs.MarkRunUnenqueued(ctx, lost.ID); err != nil {
			t.Fatal(err)
		}
		running := MustRun(t, s, wf)
		MustClaim(t, s, running.ID)
		clock.Advance(time.Minute)
		fresh := MustRun(t, s, wf)

		got, err := s.Runs.ClaimStaleRuns(ctx, clock.Now().Add(-30*time.Second), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != old.ID || got[1].ID != lost.ID || got[0].Queue != wf.Queue {
			t.Fatalf("stale = %+v, want %s and %s", got, old.ID, lost.ID)
		}
		// They are stamped now, so they are not stale any more.
		got, err = s.Runs.ClaimStaleRuns(ctx, clock.Now().Add(-30*time.Second), 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("second pass = %+v, %v", got, err)
		}
		clock.Advance(time.Minute)
		got, err = s.Runs.ClaimStaleRuns(ctx, clock.Now().Add(-30*time.Second), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != old.ID || got[1].ID != lost.ID {
			t.Fatalf("limited pass = %+v", got)
		}
		got, err = s.Runs.ClaimStaleRuns(ctx, clock.Now().Add(time.Second), 0)
		if err != nil || len(got) != 3 || got[2].ID != fresh.ID {
			t.Fatalf("everything pending = %+v, %v", got, err)
		}
	})
}
