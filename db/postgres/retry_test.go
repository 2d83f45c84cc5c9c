package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// cutFixture is a DB whose backends a test can terminate, as
// pg_terminate_backend does to a production pool, while the test's own
// connection (admin) survives: the DB's connections carry an
// application_name of their own.
type cutFixture struct {
	db    *DB
	admin *pgx.Conn // to the same database
	app   string
}

const cutPoolSize = 4

var cutApps atomic.Int64

// retryDSN is the test package's database for the retry tests.
var retryDSN string

func newCutFixture(t *testing.T) *cutFixture {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(retryDSN)
	if err != nil {
		t.Fatal(err)
	}
	f := &cutFixture{app: fmt.Sprintf("orcheo_retry_%d", cutApps.Add(1))}
	cfg.ConnConfig.RuntimeParams["application_name"] = f.app
	cfg.MaxConns = cutPoolSize
	// pgxpool pings a connection idle for more than a second before handing
	// it out; a busy pool's are idle for less. Never pinging makes every
	// cut connection fail its next statement, however slow the test runs.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		t.Fatal(err)
	}
	f.db = &DB{pool: &mappedPool{pool}, Now: time.Now}
	t.Cleanup(func() { _ = f.db.Close() })
	if f.admin, err = pgx.Connect(ctx, retryDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.admin.Close(context.Background()) })
	return f
}

// fillIdle leaves the pool holding cutPoolSize idle connections.
func (f *cutFixture) fillIdle(t *testing.T) {
	t.Helper()
	var conns []*pgxpool.Conn
	for range cutPoolSize {
		c, err := f.db.pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// cut terminates every backend of the DB's pool and waits until they are
// gone, so that each pooled connection is dead on the client side too.
func (f *cutFixture) cut(t *testing.T) {
	t.Helper()
	f.terminate(t, `application_name = $1`)
}

// terminate terminates the DB's backends that match cond ($1 is the DB's
// application_name) and waits until they have exited.
func (f *cutFixture) terminate(t *testing.T, cond string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE `+cond+` AND pid <> pg_backend_pid()`, f.app); err != nil {
		t.Fatal(err)
	}
	f.waitBackends(t, "the terminated backends to exit", cond, false)
}

// waitBackends waits until some backend of the DB matches cond (present)
// or none does.
func (f *cutFixture) waitBackends(t *testing.T, what, cond string, present bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := f.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE `+cond+` AND pid <> pg_backend_pid()`, f.app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n > 0) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cutWhileBlocked runs call while the admin connection holds the lock that
// lockSQL takes in a transaction, terminates call's backend once it waits
// for that lock (in the middle of its statement), releases the lock and
// returns call's error.
func (f *cutFixture) cutWhileBlocked(t *testing.T, lockSQL string, args []any, call func() error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := f.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, lockSQL, args...); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- call() }()
	waiting := `application_name = $1 AND wait_event_type = 'Lock'`
	f.waitBackends(t, "the call to wait for the lock", waiting, true)
	f.terminate(t, waiting)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not return")
		return nil
	}
}

type retrySeed struct {
	wf      *orcheo.Workflow
	version *orcheo.WorkflowVersion
	run     *orcheo.Run // pending
	running *orcheo.Run // claimed by "w1"
}

var retryDefinition = json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)

func seedRetry(t *testing.T, d *DB) retrySeed {
	t.Helper()
	ctx := context.Background()
	var s retrySeed
	s.wf = &orcheo.Workflow{Handle: fmt.Sprintf("retry-%d", time.Now().UnixNano()), Name: "retry"}
	v, err := NewWorkflowService(d).CreateWorkflow(ctx, s.wf, retryDefinition)
	if err != nil {
		t.Fatal(err)
	}
	s.version = v
	runs := NewRunService(d)
	newRun := func() *orcheo.Run {
		r, _, err := runs.CreateRun(ctx, &orcheo.Run{WorkflowID: s.wf.ID, VersionID: v.ID, TriggeredBy: orcheo.TriggerManual})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s.run = newRun()
	if s.running, err = runs.ClaimRun(ctx, newRun().ID, "w1", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRetry cuts the store's connections, between calls and in the middle
// of one, and checks that each call that may run again succeeds instead of
// answering EUNAVAILABLE, and that one that may not still answers it.
func TestRetry(t *testing.T) {
	retryDSN = testenv.PostgresURL(t, "db_postgres_retry")
	ctx := context.Background()

	t.Run("IdleConnectionsCut", func(t *testing.T) {
		t.Parallel()
		f := newCutFixture(t)
		s := seedRetry(t, f.db)
		workflows, runs := NewWorkflowService(f.db), NewRunService(f.db)
		triggers, cron := NewTriggerService(f.db), NewCronService(f.db)

		// Without the retry, the same cut fails the next statement.
		f.fillIdle(t)
		f.cut(t)
		var one int
		if err := f.db.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
			t.Fatalf("a statement on a cut connection without retry: %v, want EUNAVAILABLE", err)
		}

		calls := []struct {
			name string
			call func() error
		}{
			{"FindWorkflowByRef", func() error { _, err := workflows.FindWorkflowByRef(ctx, s.wf.Handle); return err }},
			{"FindWorkflows", func() error { _, _, err := workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{}); return err }},
			{"FindWorkflowVersions", func() error { _, err := workflows.FindWorkflowVersions(ctx, s.wf.ID); return err }},
			{"FindWorkflowVersionByID", func() error { _, err := workflows.FindWorkflowVersionByID(ctx, s.version.ID); return err }},
			{"CreateWorkflowVersion", func() error {
				_, err := workflows.CreateWorkflowVersion(ctx, s.wf.ID, retryDefinition)
				return err
			}},
			{"SetWebhookConfig", func() error {
				return triggers.SetWebhookConfig(ctx, s.wf.ID, &orcheo.WebhookConfig{Enabled: true})
			}},
			{"FindWebhookConfig", func() error { _, err := triggers.FindWebhookConfig(ctx, s.wf.ID); return err }},
			{"FindWebhookTriggers", func() error { _, err := triggers.FindWebhookTriggers(ctx); return err }},
			{"SetCronTrigger", func() error {
				return cron.SetCronTrigger(ctx, &orcheo.CronTrigger{WorkflowID: s.wf.ID, Expression: "@hourly"})
			}},
			{"FindCronTrigger", func() error { _, err := cron.FindCronTrigger(ctx, s.wf.ID); return err }},
			{"FindCronTriggers", func() error { _, err := cron.FindCronTriggers(ctx); return err }},
			{"MarkCronDispatched", func() error { return cron.MarkCronDispatched(ctx, s.wf.ID, time.Now()) }},
			{"FindActiveCronRun", func() error { _, err := cron.FindActiveCronRun(ctx, s.wf.ID, time.Now()); return err }},
			{"FindRunByID", func() error { _, err := runs.FindRunByID(ctx, s.run.ID); return err }},
			{"FindRuns", func() error { _, _, err := runs.FindRuns(ctx, orcheo.RunFilter{}); return err }},
			{"FindRunEvents", func() error { _, err := runs.FindRunEvents(ctx, s.run.ID); return err }},
			{"FindCancelRequested", func() error { _, err := runs.FindCancelRequested(ctx, []string{s.running.ID}); return err }},
			{"CountChildRuns", func() error { _, _, err := runs.CountChildRuns(ctx, s.run.ID, s.run.ID, ""); return err }},
			{"RunStats", func() error { _, err := runs.RunStats(ctx, time.Now()); return err }},
			{"HeartbeatRuns", func() error {
				held, err := runs.HeartbeatRuns(ctx, "w1", []string{s.running.ID}, time.Now().Add(time.Minute))
				if err == nil && len(held) != 1 {
					return fmt.Errorf("held %v", held)
				}
				return err
			}},
			{"SaveRunStep", func() error {
				return runs.SaveRunStep(ctx, &orcheo.RunStep{RunID: s.running.ID, Attempt: 1, Seq: 1, Node: "a",
					NodeType: "log", Status: orcheo.StepRunning, StartedAt: time.Now()})
			}},
			{"MarkRunUnenqueued", func() error { return runs.MarkRunUnenqueued(ctx, s.run.ID) }},
			{"CreateRun", func() error {
				r, created, err := runs.CreateRun(ctx, &orcheo.Run{WorkflowID: s.wf.ID, VersionID: s.version.ID,
					TriggeredBy: orcheo.TriggerWebhook})
				if err == nil && (!created || r == nil) {
					return fmt.Errorf("created %v, run %+v", created, r)
				}
				return err
			}},
			{"ArchiveWorkflow", func() error { _, err := workflows.ArchiveWorkflow(ctx, s.wf.ID); return err }},
			{"Ping", func() error { return f.db.Ping(ctx) }},
		}
		for _, c := range calls {
			f.fillIdle(t)
			f.cut(t)
			if err := c.call(); err != nil {
				t.Errorf("%s after every connection was cut: %v", c.name, err)
			}
		}
		var versions, created int
		if err := f.admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM workflow_versions WHERE workflow_id = $1),
			(SELECT count(*) FROM runs WHERE workflow_id = $1 AND triggered_by = 'webhook')`, s.wf.ID).Scan(&versions, &created); err != nil {
			t.Fatal(err)
		}
		if versions != 2 || created != 1 {
			t.Fatalf("%d versions, %d webhook runs stored; want 2 and 1", versions, created)
		}
	})

	t.Run("UnsentOnly", func(t *testing.T) {
		t.Parallel()
		f := newCutFixture(t)
		s := seedRetry(t, f.db)
		runs := NewRunService(f.db)
		f.fillIdle(t)
		f.cut(t)
		// The first statement goes to a dead backend, which cannot tell
		// whether it ran it: a conditional transition is not run again.
		if _, err := runs.CancelRun(ctx, s.run.ID); orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
			t.Fatalf("CancelRun on a cut connection: %v, want EUNAVAILABLE", err)
		}
		if r, err := runs.FindRunByID(ctx, s.run.ID); err != nil || r.Status != orcheo.RunPending {
			t.Fatalf("run after the failed cancel: %+v %v", r, err)
		}
		// The failure dropped the other dead connections: the next call
		// gets a live one.
		if r, err := runs.CancelRun(ctx, s.run.ID); err != nil || r.Status != orcheo.RunCancelled {
			t.Fatalf("CancelRun after the failure: %+v %v", r, err)
		}
	})

	t.Run("MidStatement", func(t *testing.T) {
		t.Parallel()
		f := newCutFixture(t)
		s := seedRetry(t, f.db)
		workflows, runs := NewWorkflowService(f.db), NewRunService(f.db)

		// A read cut while it waits: run again on a new connection.
		var got *orcheo.Workflow
		err := f.cutWhileBlocked(t, `LOCK TABLE workflows IN ACCESS EXCLUSIVE MODE`, nil, func() (err error) {
			got, err = workflows.FindWorkflowByRef(ctx, s.wf.Handle)
			return err
		})
		if err != nil || got.ID != s.wf.ID {
			t.Fatalf("FindWorkflowByRef cut mid-statement: %+v %v", got, err)
		}

		// A run's insert cut while it waits: run again, one run stored.
		var before, after int
		count := `SELECT count(*) FROM runs WHERE workflow_id = $1`
		if err := f.admin.QueryRow(ctx, count, s.wf.ID).Scan(&before); err != nil {
			t.Fatal(err)
		}
		var created bool
		err = f.cutWhileBlocked(t, `LOCK TABLE runs IN EXCLUSIVE MODE`, nil, func() (err error) {
			_, created, err = runs.CreateRun(ctx, &orcheo.Run{WorkflowID: s.wf.ID, VersionID: s.version.ID,
				TriggeredBy: orcheo.TriggerWebhook})
			return err
		})
		if err := f.admin.QueryRow(ctx, count, s.wf.ID).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if err != nil || !created || after != before+1 {
			t.Fatalf("CreateRun cut mid-statement: created %v, err %v; %d runs before, %d after", created, err, before, after)
		}

		// A transaction cut before its COMMIT: run again, one version added.
		var v *orcheo.WorkflowVersion
		err = f.cutWhileBlocked(t, `SELECT 1 FROM workflows WHERE id = $1 FOR UPDATE`, []any{s.wf.ID}, func() (err error) {
			v, err = workflows.CreateWorkflowVersion(ctx, s.wf.ID, retryDefinition)
			return err
		})
		if err != nil || v.Version != 2 {
			t.Fatalf("CreateWorkflowVersion cut before COMMIT: %+v %v", v, err)
		}

		// A conditional transition cut in the middle may have run: it is
		// not run again, and the caller hears EUNAVAILABLE. (Here it had
		// not: the run is still pending.)
		err = f.cutWhileBlocked(t, `SELECT 1 FROM runs WHERE id = $1 FOR UPDATE`, []any{s.run.ID}, func() error {
			_, err := runs.CancelRun(ctx, s.run.ID)
			return err
		})
		if orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
			t.Fatalf("CancelRun cut mid-statement: %v, want EUNAVAILABLE", err)
		}
		if r, err := runs.FindRunByID(ctx, s.run.ID); err != nil || r.Status != orcheo.RunPending {
			t.Fatalf("run after the cut cancel: %+v %v", r, err)
		}
	})

	t.Run("Policy", func(t *testing.T) {
		t.Parallel()
		f := newCutFixture(t)
		terminated := &pgconn.PgError{Severity: "FATAL", Code: "57P01"}
		_, connect := pgconn.Connect(ctx, "postgres://postgres@127.0.0.1:1/none?connect_timeout=5")
		var ce *pgconn.ConnectError
		if !errors.As(connect, &ce) {
			t.Fatalf("connect to a closed port: %v, want a ConnectError", connect)
		}
		cases := []struct {
			name   string
			policy retryPolicy
			err    error
			tries  int
		}{
			{"idempotent, terminated mid-statement", retryIdempotent, terminated, 3},
			{"idempotent, connection lost", retryIdempotent, fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 3},
			{"unsent, terminated mid-statement", retryUnsent, terminated, 1},
			{"unsent, no connection", retryUnsent, connect, 3},
			{"unsent, before COMMIT", retryUnsent, uncommitted(terminated), 3},
			{"idempotent, the statement's error", retryIdempotent, &pgconn.PgError{Code: "23505"}, 1},
			{"idempotent, cancelled", retryIdempotent, context.Canceled, 1},
		}
		for _, c := range cases {
			tries := 0
			err := f.db.retry(ctx, c.policy, func() error { tries++; return c.err })
			if tries != c.tries || !errors.Is(err, stripUncommitted(c.err)) {
				t.Errorf("%s: %d tries, error %v; want %d tries and the error", c.name, tries, err, c.tries)
			}
			var uc *uncommittedError
			if errors.As(err, &uc) {
				t.Errorf("%s: the before-COMMIT mark reached the caller: %v", c.name, err)
			}
		}
		// A success after a failure ends the retries.
		tries := 0
		if err := f.db.retry(ctx, retryIdempotent, func() error {
			if tries++; tries == 1 {
				return terminated
			}
			return nil
		}); err != nil || tries != 2 {
			t.Errorf("a retry that succeeds: %d tries, %v", tries, err)
		}
		// No pause outlives the caller's deadline: a deadline shorter than
		// the first pause leaves one try.
		short, cancel := context.WithTimeout(ctx, retryPauses[0]/2)
		defer cancel()
		tries = 0
		if err := f.db.retry(short, retryIdempotent, func() error { tries++; return terminated }); tries != 1 || !errors.Is(err, terminated) {
			t.Errorf("under a deadline shorter than the pause: %d tries, %v", tries, err)
		}
	})
}
