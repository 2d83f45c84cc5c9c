package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// The fault tests run real api and worker processes on a redis-server of
// their own and kill them (docs/architecture.md, "Delivery guarantees").
// Timings are shortened by faultEnv.

// TestFaultWorkerKill: two workers execute 500 runs while one of them is
// killed with SIGKILL every two seconds and restarted. Every run ends, and
// no attempt is executed twice.
func TestFaultWorkerKill(t *testing.T) {
	s := startFaultStack(t, "fault_kill")
	s.createWorkflow("short", shortWork)
	stable := s.startWorker(20)
	_ = stable
	victim := s.startWorker(20)
	ids := s.startRuns("short", 500)

	kills := 0
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c := s.statusCounts()
		if c[orcheo.RunSucceeded]+c[orcheo.RunFailed] == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs not all terminal: %v", c)
		}
		if kills < 4 && c[orcheo.RunRunning] > 0 {
			time.Sleep(2 * time.Second)
			kill9(victim)
			kills++
			victim = s.startWorker(20)
			continue
		}
		time.Sleep(250 * time.Millisecond)
	}
	c := s.statusCounts()
	retried := s.checkClaims()
	t.Logf("kills %d, counts %v, runs retried %d, rescued %d", kills, c, retried, s.eventCount("rescued"))
	if kills == 0 {
		t.Fatal("no worker was killed while runs were in flight")
	}
	var maxAttempts int
	if err := s.db.QueryRow(context.Background(), `SELECT min(max_attempts) FROM runs`).Scan(&maxAttempts); err != nil {
		t.Fatal(err)
	}
	// Every failed run is one whose worker died in its last attempt.
	var lost int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM runs WHERE status = 'failed'
		AND error = 'worker lost' AND attempt - released_attempts = max_attempts`).Scan(&lost); err != nil {
		t.Fatal(err)
	}
	if c[orcheo.RunFailed] != lost || c[orcheo.RunSucceeded] != len(ids)-lost {
		t.Fatalf("counts %v: want %d succeeded and %d failed as worker lost", c, len(ids)-lost, lost)
	}
	if maxAttempts >= 20 && lost != 0 {
		t.Fatalf("%d runs failed although each had %d attempts", lost, maxAttempts)
	}
	if s.eventCount("succeeded") != c[orcheo.RunSucceeded] {
		t.Fatalf("%d succeeded events for %d succeeded runs", s.eventCount("succeeded"), c[orcheo.RunSucceeded])
	}
	// Every interrupted attempt was recovered through a lease or a message
	// handed back: attempts beyond the first are rescues or retries.
	if retried > 0 && s.eventCount("rescued")+s.eventCount("failed") == 0 {
		t.Fatalf("%d runs took several attempts but none was rescued", retried)
	}
}

// TestFaultRedisRestartEmpty: Redis is killed and restarted without its
// data while 500 runs are queued or executing. The rescuer publishes the
// pending runs again; every run succeeds, each in one attempt.
func TestFaultRedisRestartEmpty(t *testing.T) {
	s := startFaultStack(t, "fault_redis_restart")
	s.createWorkflow("short", shortWork)
	s.startWorker(10)
	s.startWorker(10)
	ids := s.startRuns("short", 500)
	waitFor(t, time.Minute, "a first batch of runs to finish", func() bool {
		return s.statusCounts()[orcheo.RunSucceeded] >= 50
	})
	s.redis.Kill()
	time.Sleep(time.Second) // the outage: workers and api see errors
	s.redis.Start()
	c := s.waitTerminal(len(ids), 2*time.Minute)
	if c[orcheo.RunSucceeded] != len(ids) {
		t.Fatalf("counts %v, want %d succeeded", c, len(ids))
	}
	if retried := s.checkClaims(); retried != 0 {
		t.Fatalf("%d runs needed a second attempt; a Redis restart must not cost an attempt", retried)
	}
}

// TestFaultEnqueueFails: webhooks accepted while Redis is down answer 202
// and their runs finish once Redis is back.
func TestFaultEnqueueFails(t *testing.T) {
	s := startFaultStack(t, "fault_enqueue")
	s.createWorkflow("hook", shortWork)
	if _, err := s.client.SetWebhookConfig(context.Background(), "hook", &orcheo.WebhookConfig{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	s.startWorker(10)
	s.redis.Kill()
	cpuBefore := s.cpuTime(t)
	outageStart := time.Now()
	const n = 20
	for i := range n {
		resp, err := http.Post(s.url+"/api/workflows/hook/triggers/webhook", "application/json",
			strings.NewReader(fmt.Sprintf(`{"i":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook with Redis down answered %d, want 202", resp.StatusCode)
		}
	}
	if c := s.statusCounts(); c[orcheo.RunPending] != n {
		t.Fatalf("with Redis down: %v, want %d pending", c, n)
	}
	// Workers and the API reconnect with backoff: no loop spins while
	// Redis is away.
	time.Sleep(3*time.Second - time.Since(outageStart))
	if used, elapsed := s.cpuTime(t)-cpuBefore, time.Since(outageStart); used > elapsed/2 {
		t.Fatalf("api and worker used %s of CPU in %s with Redis down: a retry loop spins", used, elapsed)
	}
	s.redis.Start()
	c := s.waitTerminal(n, time.Minute)
	if c[orcheo.RunSucceeded] != n {
		t.Fatalf("counts %v, want %d succeeded", c, n)
	}
	if retried := s.checkClaims(); retried != 0 {
		t.Fatalf("%d runs needed a second attempt", retried)
	}
}

// TestFaultWorkerKilledMidNode: a run whose worker is killed in the middle
// of a node is running again within 60 s (here: one 4 s lease) on another
// worker, and succeeds in its second attempt.
func TestFaultWorkerKilledMidNode(t *testing.T) {
	s := startFaultStack(t, "fault_mid_node")
	s.createWorkflow("slow", slowFirstAttempt)
	a := s.startWorker(2)
	run, err := s.client.StartRun(context.Background(), "slow", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	idA := workerID(t, a)
	waitFor(t, 30*time.Second, "the run to be running on worker A", func() bool {
		r, err := s.client.FindRunByID(context.Background(), run.ID)
		return err == nil && r.Status == orcheo.RunRunning && r.WorkerID == idA
	})
	s.startWorker(2)
	kill9(a)
	killed := time.Now()

	var second time.Duration
	waitFor(t, 60*time.Second, "the run to be running again", func() bool {
		r, err := s.client.FindRunByID(context.Background(), run.ID)
		if err == nil && r.Attempt >= 2 {
			second = time.Since(killed)
			return true
		}
		return false
	})
	got := waitRun(t, s.client, run.ID)
	t.Logf("running again %s after the kill", second.Round(100*time.Millisecond))
	if got.Status != orcheo.RunSucceeded || got.Attempt != 2 || got.ReleasedAttempts != 0 || got.WorkerID == idA {
		t.Fatalf("run = %s, attempt %d, released %d, worker %s; want succeeded in attempt 2 on another worker",
			got.Status, got.Attempt, got.ReleasedAttempts, got.WorkerID)
	}
	if c := s.statusCounts(); c[orcheo.RunSucceeded] != 1 || len(c) != 1 {
		t.Fatalf("counts %v", c)
	}
	if s.eventCount("rescued") != 1 || s.eventCount("claimed") != 2 {
		t.Fatalf("events: %d rescued, %d claimed; want 1 and 2", s.eventCount("rescued"), s.eventCount("claimed"))
	}
	s.checkClaims()
}

// TestFaultGracefulShutdown: SIGTERM on a worker with long runs in flight
// drains for ORCHEO_WORKER_DRAIN_TIMEOUT, then hands the runs back at once
// (no lease expiry, no attempt used up) and another worker completes them.
// A second SIGTERM makes a worker exit at once; its run is still recovered.
func TestFaultGracefulShutdown(t *testing.T) {
	s := startFaultStack(t, "fault_shutdown")
	s.createWorkflow("slow", slowFirstAttempt)
	a := s.startWorker(4)
	idA := workerID(t, a)
	const n = 4
	ids := s.startRuns("slow", n)
	waitFor(t, 30*time.Second, "all runs running on worker A", func() bool {
		var k int
		_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM runs WHERE status = 'running' AND worker_id = $1`, idA).Scan(&k)
		return k == n
	})
	b := s.startWorker(4)
	stopAt := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatal("worker A did not exit within 20 s of SIGTERM (drain timeout 2 s)")
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker A exited with %d after one SIGTERM, want 0", code)
	}
	c := s.waitTerminal(n, 30*time.Second)
	t.Logf("all runs done %s after SIGTERM", time.Since(stopAt).Round(100*time.Millisecond))
	if c[orcheo.RunSucceeded] != n {
		t.Fatalf("counts %v, want %d succeeded", c, n)
	}
	for _, id := range ids {
		r, err := s.client.FindRunByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Attempt != 2 || r.ReleasedAttempts != 1 || r.WorkerID == idA {
			t.Fatalf("run %s: attempt %d, released %d, worker %s; want attempt 2 after one release, elsewhere",
				id, r.Attempt, r.ReleasedAttempts, r.WorkerID)
		}
	}
	if s.eventCount("released") != n || s.eventCount("rescued") != 0 {
		t.Fatalf("events: %d released, %d rescued; want %d and 0", s.eventCount("released"), s.eventCount("rescued"), n)
	}
	s.checkClaims()

	t.Run("SecondSignal", func(t *testing.T) {
		// C is the only worker when the run starts, so C executes it.
		b.stop(t, 20*time.Second)
		c := s.startWorker(1, "ORCHEO_WORKER_DRAIN_TIMEOUT=1m")
		idC := workerID(t, c)
		run, err := s.client.StartRun(context.Background(), "slow", nil, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the run to be running on C", func() bool {
			r, err := s.client.FindRunByID(context.Background(), run.ID)
			return err == nil && r.Status == orcheo.RunRunning && r.WorkerID == idC
		})
		s.startWorker(1) // D, which finishes the run after C is gone
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		waitFor(t, 10*time.Second, "the drain to begin", func() bool {
			return strings.Contains(c.out.String(), "worker stopping")
		})
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Fatal("worker did not exit at once on a second SIGTERM")
		}
		if code := c.cmd.ProcessState.ExitCode(); code != 1 {
			t.Fatalf("exit code %d after a second SIGTERM, want 1", code)
		}
		if strings.Contains(c.out.String(), "panic") {
			t.Fatalf("worker panicked:\n%s", c.out.String())
		}
		got := waitRun(t, s.client, run.ID)
		if got.Status != orcheo.RunSucceeded || got.Attempt != 2 || got.ReleasedAttempts != 0 {
			t.Fatalf("run = %s, attempt %d, released %d; want succeeded in attempt 2 after a rescue",
				got.Status, got.Attempt, got.ReleasedAttempts)
		}
	})
}

// TestFaultDuplicateDelivery: every message is in the queue twice, side by
// side, and two workers take the copies at once. One executes each run,
// the other skips it; both copies are acked.
func TestFaultDuplicateDelivery(t *testing.T) {
	s := startFaultStack(t, "fault_duplicate")
	s.createWorkflow("short", shortWork)
	const n = 30
	s.startRuns("short", n)
	rc := s.redisClient()
	ctx := context.Background()
	queue := s.prefix + ":{default}:queue" // tasks/rdb/keys.go
	msgs, err := rc.LRange(ctx, queue, 0, -1).Result()
	if err != nil || len(msgs) != n {
		t.Fatalf("queue holds %d messages (%v), want %d", len(msgs), err, n)
	}
	doubled := make([]any, 0, 2*n)
	for _, m := range msgs {
		doubled = append(doubled, m, m)
	}
	pipe := rc.TxPipeline()
	pipe.Del(ctx, queue)
	pipe.RPush(ctx, queue, doubled...)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s.startWorker(5)
	s.startWorker(5)
	c := s.waitTerminal(n, time.Minute)
	if c[orcheo.RunSucceeded] != n {
		t.Fatalf("counts %v, want %d succeeded", c, n)
	}
	if retried := s.checkClaims(); retried != 0 {
		t.Fatalf("%d runs were executed more than once", retried)
	}
	if s.eventCount("claimed") != n {
		t.Fatalf("%d claims for %d runs", s.eventCount("claimed"), n)
	}
	waitFor(t, 10*time.Second, "every copy to be acked", func() bool {
		left, _ := rc.LLen(ctx, queue).Result()
		counts, _ := rc.HLen(ctx, s.prefix+":{default}:messages").Result()
		return left == 0 && counts == 0
	})
}
