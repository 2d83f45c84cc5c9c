package test

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/maintenance"
)

// defaultTimings undoes faultEnv: the reliability timings production runs
// with, for the tests that check the promises at those timings.
var defaultTimings = []string{
	"ORCHEO_LEASE_DURATION=" + tasks.LeaseDurationDefault.String(),
	"ORCHEO_HEARTBEAT_INTERVAL=" + tasks.HeartbeatIntervalDefault.String(),
	"ORCHEO_CONSUMER_TTL=" + tasks.ConsumerTTLDefault.String(),
	"ORCHEO_RESCUE_INTERVAL=" + tasks.RescueIntervalDefault.String(),
	"ORCHEO_REENQUEUE_AFTER=" + tasks.ReenqueueAfterDefault.String(),
	"ORCHEO_REQUEUE_INTERVAL=" + maintenance.RequeuerIntervalDefault.String(),
	"ORCHEO_WORKER_DRAIN_TIMEOUT=" + tasks.WorkerDrainTimeoutDefault.String(),
}

// backlogWork takes 400 ms a run, so 300 of them keep one slot busy for
// two minutes: longer than the 60 s promise.
const backlogWork = `
nodes:
  - id: wait
    type: delay
    duration: 400ms
`

// TestFaultOrphanBehindBacklog checks the promise at the default timings
// (issue #10): a run orphaned by a worker killed with SIGKILL is running
// again within 60 s, although 300 messages were queued after it was taken.
// The rescuer puts it back at the front of its queue; at the end it would
// wait for the backlog (about two minutes here).
//
// The victim's consumer TTL is long so that its message is not reaped
// during the test: the reaper's copy also goes to the front, but it
// arrives before or after the lease expires depending on the phase of two
// 10 s tickers, and a copy that arrives first is skipped by the claim. The
// test checks the rescuer's path, the one that must hold then.
func TestFaultOrphanBehindBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startFaultStackEnv(t, "fault_orphan", defaultTimings...)
	s.createWorkflow("slow", slowFirstAttempt)
	s.createWorkflow("backlog", backlogWork)
	victim := s.startWorker(1, "ORCHEO_CONSUMER_TTL=10m")
	orphan := s.startRuns("slow", 1)[0]
	waitFor(t, 30*time.Second, "the orphan-to-be to run", func() bool {
		run, err := s.client.FindRunByID(ctx, orphan)
		return err == nil && run.Status == orcheo.RunRunning
	})
	// The victim's one slot is taken, so the backlog stays queued.
	s.startRuns("backlog", 300)
	queue := s.prefix + ":{" + orcheo.DefaultQueue + "}:queue" // tasks/rdb/keys.go
	rc := s.redisClient()
	waitFor(t, 30*time.Second, "300 messages queued", func() bool {
		n, err := rc.LLen(ctx, queue).Result()
		return err == nil && n == 300
	})

	kill9(victim)
	killed := time.Now()
	s.startWorker(1)
	waitFor(t, 60*time.Second, "the orphan's second attempt to be claimed within 60 s of the kill", func() bool {
		var attempt int
		err := s.db.QueryRow(ctx, `SELECT attempt FROM runs WHERE id = $1`, orphan).Scan(&attempt)
		return err == nil && attempt >= 2
	})
	var claimedAt, rescuedAt time.Time
	if err := s.db.QueryRow(ctx, `SELECT at FROM run_events WHERE run_id = $1 AND kind = 'claimed'
		AND message LIKE 'attempt 2 %'`, orphan).Scan(&claimedAt); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(ctx, `SELECT at FROM run_events WHERE run_id = $1 AND kind = 'rescued'`, orphan).Scan(&rescuedAt); err != nil {
		t.Fatal(err)
	}
	var ahead int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM runs WHERE id <> $1 AND (status = 'pending'
		OR started_at > $2)`, orphan, claimedAt).Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill → rescued %s, → claimed again %s; %d backlog runs had not started by then",
		rescuedAt.Sub(killed).Round(100*time.Millisecond), claimedAt.Sub(killed).Round(100*time.Millisecond), ahead)
	if ahead < 100 {
		t.Fatalf("only %d backlog runs were left when the orphan was claimed: the backlog was not ahead of it", ahead)
	}
	if d := claimedAt.Sub(killed); d > 60*time.Second {
		t.Fatalf("orphan claimed again %s after the kill, want within 60 s", d)
	}
}
