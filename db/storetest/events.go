package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// eventFinder is what a backend's run service offers beyond
// orcheo.RunService: the audit trail the root interface does not expose.
type eventFinder interface {
	FindRunEvents(ctx context.Context, id string) ([]rules.Event, error)
}

// exerciseEvents covers run_events: every transition writes one event with
// the same kind and message on every backend, at the store's clock, and a
// refused transition writes none. The kinds and messages are spelled out
// here rather than taken from rules, so a change to them shows up as a
// failing test.
func exerciseEvents(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		s := backend.Open(t)
		wantEvents(t, s, orcheo.NewID())
		wantEvents(t, s, "not-an-id")
	})

	t.Run("Succeeded", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		t0 := clock.Now()
		MustClaim(t, s, r.ID)
		clock.Advance(time.Second)
		// A success keeps no error in its event.
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded, Error: "ignored"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded})
		wantCode(t, err, orcheo.ECONFLICT)
		_, err = s.Runs.ClaimRun(ctx, r.ID, "w1", t0.Add(time.Minute))
		wantCode(t, err, orcheo.ECONFLICT)
		wantEvents(t, s, r.ID,
			rules.Event{At: t0, Kind: "created", Message: "triggered by manual"},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by w1"},
			rules.Event{At: t0.Add(time.Second), Kind: "succeeded", Message: "attempt 1: "})
	})

	t.Run("FailRetryCancel", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		t0 := clock.Now()
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 3 })
		retryAt := t0.Add(-time.Second)
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom", RetryAt: &retryAt}); err != nil {
			t.Fatal(err)
		}
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.CancelRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		// A requested cancel wins over the retry the worker asks for.
		if _, err := s.Runs.CompleteRun(ctx, r.ID, 2, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "late", RetryAt: &retryAt}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Runs.CancelRun(ctx, r.ID)
		wantCode(t, err, orcheo.ECONFLICT)
		if _, err := s.Runs.RetryRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		MustClaim(t, s, r.ID)
		// The event keeps the first 1000 bytes of the error, cut back to a
		// rune boundary: "é" would straddle byte 1000.
		long := strings.Repeat("a", 999) + "é" + strings.Repeat("b", 500)
		done, err := s.Runs.CompleteRun(ctx, r.ID, 3, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: long})
		if err != nil {
			t.Fatal(err)
		}
		if done.Error != long {
			t.Fatalf("run error is %d bytes, want all %d", len(done.Error), len(long))
		}
		_, err = s.Runs.RetryRun(ctx, MustRun(t, s, wf).ID)
		wantCode(t, err, orcheo.ECONFLICT)
		wantEvents(t, s, r.ID,
			rules.Event{At: t0, Kind: "created", Message: "triggered by manual"},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by w1"},
			rules.Event{At: t0, Kind: "retry_scheduled", Message: "attempt 1: boom"},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 2 by w1"},
			rules.Event{At: t0, Kind: "cancel_requested", Message: "cancel requested while running"},
			rules.Event{At: t0, Kind: "cancelled", Message: "attempt 2: late"},
			rules.Event{At: t0, Kind: "retried", Message: "retry by hand after attempt 2"},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 3 by w1"},
			rules.Event{At: t0, Kind: "failed", Message: "attempt 3: " + strings.Repeat("a", 999)})
	})

	t.Run("CancelPending", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf, func(r *orcheo.Run) { r.TriggeredBy = orcheo.TriggerWebhook })
		if _, err := s.Runs.CancelRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		wantEvents(t, s, r.ID,
			rules.Event{At: clock.Now(), Kind: "created", Message: "triggered by webhook"},
			rules.Event{At: clock.Now(), Kind: "cancelled", Message: "cancelled while pending"})
	})

	t.Run("Released", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.ReleaseRun(ctx, r.ID, 1); err != nil {
			t.Fatal(err)
		}
		_, err := s.Runs.ReleaseRun(ctx, r.ID, 1)
		wantCode(t, err, orcheo.ECONFLICT)
		wantEvents(t, s, r.ID,
			rules.Event{At: clock.Now(), Kind: "created", Message: "triggered by manual"},
			rules.Event{At: clock.Now(), Kind: "claimed", Message: "attempt 1 by w1"},
			rules.Event{At: clock.Now(), Kind: "released", Message: "attempt 1 handed back by w1"})
	})

	t.Run("Suspended", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		t0 := clock.Now()
		wf, _ := MustWorkflow(t, s)
		r := MustRun(t, s, wf)
		cp := []byte(`{"v":1}`)
		// Due already (and given off the microsecond), so it can be
		// claimed again at once and the message shows it in whole seconds.
		notBefore := t0.Add(-90 * time.Second).Add(123 * time.Nanosecond)
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.SuspendRun(ctx, r.ID, 1, notBefore, cp); err != nil {
			t.Fatal(err)
		}
		MustClaim(t, s, r.ID)
		if _, err := s.Runs.CancelRun(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Runs.SuspendRun(ctx, r.ID, 2, notBefore, cp); err != nil {
			t.Fatal(err)
		}
		wantEvents(t, s, r.ID,
			rules.Event{At: t0, Kind: "created", Message: "triggered by manual"},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by w1"},
			rules.Event{At: t0, Kind: "suspended",
				Message: "attempt 1 suspended by w1 until " + notBefore.UTC().Format(time.RFC3339)},
			rules.Event{At: t0, Kind: "claimed", Message: "attempt 2 by w1"},
			rules.Event{At: t0, Kind: "cancel_requested", Message: "cancel requested while running"},
			rules.Event{At: t0, Kind: "cancelled", Message: "cancelled while suspended, attempt 2"})
	})

	t.Run("Rescued", func(t *testing.T) {
		t.Parallel()
		// A database of its own: a rescue takes every expired run.
		s, clock := clockedStore(t, openFresh(t, backend))
		t0 := clock.Now()
		wf, _ := MustWorkflow(t, s)
		again := MustRun(t, s, wf, func(r *orcheo.Run) { r.MaxAttempts = 2 })
		last := MustRun(t, s, wf)
		for _, r := range []*orcheo.Run{again, last} {
			if _, err := s.Runs.ClaimRun(ctx, r.ID, "dead", t0.Add(10*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		t1 := t0.Add(11 * time.Second)
		if got, err := s.Runs.RescueExpiredRuns(ctx, t1, 0); err != nil || len(got) != 2 {
			t.Fatalf("rescue = %d runs, %v", len(got), err)
		}
		for id, kind := range map[string]string{again.ID: "rescued", last.ID: "failed"} {
			wantEvents(t, s, id,
				rules.Event{At: t0, Kind: "created", Message: "triggered by manual"},
				rules.Event{At: t0, Kind: "claimed", Message: "attempt 1 by dead"},
				rules.Event{At: t1, Kind: kind, Message: "attempt 1: worker lost (lease of dead expired)"})
		}
	})

	t.Run("Skipped", func(t *testing.T) {
		t.Parallel()
		s, clock := clockedStore(t, backend.Open(t))
		wf, _ := MustWorkflow(t, s)
		slot := clock.Now().Add(-time.Minute)
		r := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}
		got, created, err := s.Cron.CreateSkippedRun(ctx, r, "skipped: busy")
		if err != nil || !created {
			t.Fatalf("create skipped: %v created=%t", err, created)
		}
		again := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerCron, ScheduledFor: &slot}
		if _, created, err := s.Cron.CreateSkippedRun(ctx, again, "skipped: again"); err != nil || created {
			t.Fatalf("create skipped twice: %v created=%t", err, created)
		}
		wantEvents(t, s, got.ID, rules.Event{At: clock.Now(), Kind: "skipped", Message: "skipped: busy"})
	})
}

// clockedStore stops s's clock at the current microsecond, so the times of
// events can be compared.
func clockedStore(tb testing.TB, s *db.Store) (*db.Store, *fixedClock) {
	tb.Helper()
	clock := &fixedClock{t: rules.Time(time.Now())}
	s.SetNow(clock.Now)
	return s, clock
}

// wantEvents fails unless run id's events are exactly want, in order.
func wantEvents(tb testing.TB, s *db.Store, id string, want ...rules.Event) {
	tb.Helper()
	f, ok := s.Runs.(eventFinder)
	if !ok {
		tb.Fatalf("%s run service %T has no FindRunEvents", s.Backend, s.Runs)
	}
	got, err := f.FindRunEvents(context.Background(), id)
	if err != nil {
		tb.Fatalf("find events of run %s: %v", id, err)
	}
	if len(got) != len(want) {
		tb.Fatalf("run %s has %d events, want %d:\n got %v\nwant %v", id, len(got), len(want), got, want)
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].Message != want[i].Message || !got[i].At.Equal(want[i].At) {
			tb.Fatalf("event %d of run %s = %s %q at %s, want %s %q at %s", i+1, id,
				got[i].Kind, got[i].Message, got[i].At, want[i].Kind, want[i].Message, want[i].At)
		}
	}
}
