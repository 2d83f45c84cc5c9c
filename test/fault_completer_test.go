package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orcheo/orcheo"
)

// A worker's completer writes one batch at a time; these tests hold the
// row of run A locked from the test's own connection, so the batch holding
// A's completion waits in the database, and run B's completion, handed in
// meanwhile, waits in the worker for the next batch: a completion not yet
// flushed.

// slowRun sleeps in-process (delays do not suspend in these tests), long
// enough for the test to lock its row while it runs.
const slowRun = `
retry:
  max_attempts: 3
nodes:
  - id: wait
    type: delay
    duration: 1500ms
    next: done
  - id: done
    type: set
    values:
      attempt: 'run.attempt'
`

// quickRun ends at once.
const quickRun = `
retry:
  max_attempts: 3
nodes:
  - id: done
    type: set
    values:
      attempt: 'run.attempt'
`

// startDebugWorker is startWorker at debug level, whose log says when a
// run's result is handed to the completer.
func (s *faultStack) startDebugWorker(concurrency int) *process {
	s.t.Helper()
	env := append(append([]string{}, s.env...), "ORCHEO_LOG_LEVEL=debug")
	p := startProcess(s.t, env, "worker", "--concurrency", strconv.Itoa(concurrency))
	waitFor(s.t, 30*time.Second, "the worker to consume", func() bool {
		if p.exited() {
			s.t.Fatalf("worker exited:\n%s", p.out.String())
		}
		return strings.Contains(p.out.String(), "worker consuming")
	})
	return p
}

// logged reports whether a line of p's output contains every one of parts.
func logged(p *process, parts ...string) bool {
	for _, line := range strings.Split(p.out.String(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			return true
		}
	}
	return false
}

// stalledCompletion sets the scene on a fresh stack: worker 1 runs A and B;
// A's completion is in a batch blocked on A's row, which the returned
// transaction locks; B's result is waiting in worker 1's completer behind
// it. It returns worker 1, the lock and the two runs.
func stalledCompletion(t *testing.T, dbName string) (*faultStack, *process, pgx.Tx, *orcheo.Run, *orcheo.Run) {
	s := startFaultStack(t, dbName)
	s.createWorkflow("slow", slowRun)
	s.createWorkflow("quick", quickRun)
	w1 := s.startDebugWorker(4)
	ctx := context.Background()

	a, err := s.client.StartRun(ctx, "slow", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// Once A's delay step is saved (the step writer's first flush), lock
	// A's row: the step writer has nothing more to save before the end, so
	// only A's completion (and the heartbeat) wait for the lock.
	waitFor(t, 30*time.Second, "A's delay step to be saved", func() bool {
		var n int
		err := s.db.QueryRow(ctx, `SELECT count(*) FROM run_steps WHERE run_id = $1 AND node = 'wait'`, a.ID).Scan(&n)
		return err == nil && n > 0
	})
	lock, err := s.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Rollback(context.Background()) })
	var status string
	if err := lock.QueryRow(ctx, `SELECT status FROM runs WHERE id = $1 FOR UPDATE`, a.ID).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != string(orcheo.RunRunning) {
		t.Fatalf("A is %s when locked, want running", status)
	}
	waitFor(t, 30*time.Second, "A's completion to wait for the lock", func() bool {
		var n int
		err := s.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%want_attempt%'`).Scan(&n)
		return err == nil && n == 1
	})

	b, err := s.client.StartRun(ctx, "quick", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "B's result to wait in worker 1's completer", func() bool {
		return logged(w1, "result handed to the completer", b.ID)
	})
	return s, w1, lock, a, b
}

// runEvents returns a run's event kinds in order.
func (s *faultStack) runEvents(id string) []string {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT kind FROM run_events WHERE run_id = $1 ORDER BY at, id`, id)
	if err != nil {
		s.t.Fatal(err)
	}
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Fatal(err)
	}
	return kinds
}

// waitSucceededAgain waits until run id succeeded in attempt 2 on worker
// w and returns it.
func (s *faultStack) waitSucceededAgain(id, w string) *orcheo.Run {
	s.t.Helper()
	var got *orcheo.Run
	waitFor(s.t, 60*time.Second, "run "+id+" to succeed in attempt 2", func() bool {
		r, err := s.client.FindRunByID(context.Background(), id)
		got = r
		return err == nil && r.Status.Terminal()
	})
	if got.Status != orcheo.RunSucceeded || got.Attempt != 2 || got.WorkerID != w {
		s.t.Fatalf("run %s = %s in attempt %d on %s (error %q), want succeeded in attempt 2 on %s",
			id, got.Status, got.Attempt, got.WorkerID, got.Error, w)
	}
	return got
}

// TestFaultCompleterZombie: a worker stopped (SIGSTOP) with B's completion
// not yet flushed loses B's lease; another worker's rescuer and claim run
// B's attempt again to success. When the zombie resumes (SIGCONT) and
// flushes, its stale completion of attempt 1 is fenced (ECONFLICT) and B
// keeps attempt 2's result.
func TestFaultCompleterZombie(t *testing.T) {
	s, w1, lock, a, b := stalledCompletion(t, "fault_completer_zombie")
	ctx := context.Background()
	if err := w1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = w1.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	// Released while worker 1 is stopped: the batch already in the
	// database (A's) commits without it; B's never left the worker. The
	// rescuer's SKIP LOCKED would pass over a locked row, so the rescue
	// below needs the lock gone.
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := s.startWorker(2)
	id2 := workerID(t, w2)
	got := s.waitSucceededAgain(b.ID, id2)

	if err := w1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, 30*time.Second, "the zombie's completion of B to be fenced", func() bool {
		return logged(w1, "lost claim; result discarded", b.ID)
	})

	after, err := s.client.FindRunByID(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != orcheo.RunSucceeded || after.Attempt != 2 || after.WorkerID != id2 || !after.CompletedAt.Equal(*got.CompletedAt) {
		t.Fatalf("B after the zombie flushed = %s attempt %d on %s, completed %v; want attempt 2's result (completed %v)",
			after.Status, after.Attempt, after.WorkerID, after.CompletedAt, got.CompletedAt)
	}
	want := []string{"created", "claimed", "rescued", "claimed", "succeeded"}
	if kinds := s.runEvents(b.ID); fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("B's events = %v, want %v", kinds, want)
	}
	ra, err := s.client.FindRunByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Status != orcheo.RunSucceeded || ra.Attempt != 1 {
		t.Fatalf("A = %s in attempt %d, want succeeded in attempt 1 (its batch committed)", ra.Status, ra.Attempt)
	}
	s.checkClaims()
}

// TestFaultCompleterKilled: a worker killed (SIGKILL) with completions not
// yet written loses them (B's was still in the worker; A's statement is
// cut with the worker's connections), and both runs still end succeeded:
// their leases expire and another worker runs them again.
func TestFaultCompleterKilled(t *testing.T) {
	s, w1, lock, a, b := stalledCompletion(t, "fault_completer_killed")
	ctx := context.Background()
	kill9(w1)
	// The killed worker's statements still wait in the database: cut them,
	// as a dead host's connections are, so A's completion is lost too.
	var cut int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()) t`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	if cut == 0 {
		t.Fatal("no statement of the killed worker was waiting for the lock")
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := s.startWorker(2)
	id2 := workerID(t, w2)
	for _, r := range []*orcheo.Run{a, b} {
		s.waitSucceededAgain(r.ID, id2)
		want := []string{"created", "claimed", "rescued", "claimed", "succeeded"}
		if kinds := s.runEvents(r.ID); fmt.Sprint(kinds) != fmt.Sprint(want) {
			t.Fatalf("events of %s = %v, want %v", r.ID, kinds, want)
		}
	}
	s.checkClaims()
}
