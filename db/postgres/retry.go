package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// A connection the database ended (pg_terminate_backend, a crash or a
// restart of the server, a network cut) fails the statement sent on it,
// although a retry on a fresh connection would succeed. Store operations
// therefore run under retry, which runs them again when the failure was the
// connection and running them again is safe, so that a cut costs a few
// milliseconds instead of a 503.
//
// Whether it is safe depends on the operation, because a connection can
// fail after the server committed the statement but before its answer
// arrived: running it again must then do no harm. Each store method names
// its policy at its call sites; why:
//
//   - retryIdempotent, run again after any connection failure:
//     every read (FindWorkflowByRef, FindWorkflows, FindWorkflowVersions,
//     FindWorkflowVersionByID, FindWebhookConfig, FindWebhookTriggers,
//     FindCronTrigger, FindCronTriggers, FindActiveCronRun, FindRunByID,
//     FindRuns, FindCancelRequested, FindRunEvents, CountChildRuns,
//     RunStats, Ping, and the reads that explain why a transition matched
//     no row); the upserts whose second run stores the same values
//     (SetWebhookConfig, SetCronTrigger); the updates that only move a
//     value one way or set it to what it already is (ArchiveWorkflow
//     keeps the first archive time, MarkCronDispatched never moves back,
//     MarkRunUnenqueued, HeartbeatRuns sets the same lease and returns the
//     same ids, SaveRunStep's upsert of the same step); and the inserts of
//     runs, whose ids the application made (rules.NewRun): run again after
//     a first try that committed, the insert finds its own id taken and
//     inserts nothing, and reports that row as created (CreateRuns'
//     findExisting, CreateSkippedRun), not as a conflict or a duplicate.
//     CreateRuns wraps its createRuns call as retry's example shows.
//   - retryUnsent, run again only when the failure guarantees that nothing
//     reached the server (unsent): the conditional transitions. Their
//     second run, after a first one that committed, would find the run
//     already moved and answer ECONFLICT, or move it twice:
//     ClaimRun(s) would report "not pending" for the run this worker now
//     holds; CompleteRun(s), ReleaseRun and SuspendRun "not running that
//     attempt" for the attempt they ended; RetryRun "not failed" for the
//     run it put back; CancelRun would cancel a pending run and then
//     report it not cancellable, or write a second "cancel requested"
//     event; RescueExpiredRuns and ClaimStaleRuns/ClaimUnenqueuedRuns
//     would return other runs and lose the ones the first try moved or
//     stamped (until they go stale); DeleteCronTrigger would report the
//     trigger it deleted as missing; CreateWorkflow would find its own
//     handle taken. For those an EUNAVAILABLE tells the caller the truth:
//     the outcome is unknown. ClaimRuns' and CompleteRuns' statements are
//     retryQuery(ctx, retryUnsent, …); the queries that explain the ids
//     not claimed or completed are retryIdempotent.
//   - retryTx runs a transaction again under either policy when the
//     failure came before COMMIT was sent (PostgreSQL rolls back the open
//     transaction of a connection that ends), and after that only as the
//     policy allows: CreateWorkflowVersion, UpdateWebhookConfig (whose
//     function would apply twice after a lost COMMIT), and CompleteRuns'
//     transaction of several rounds, are retryTx(ctx, retryUnsent, …).
type retryPolicy int

const (
	// retryIdempotent: the operation may run again after any connection
	// failure, even one that may have come after its commit.
	retryIdempotent retryPolicy = iota + 1
	// retryUnsent: the operation may run again only when nothing of it
	// reached the server (see unsent).
	retryUnsent
)

// retryPauses are the pauses before the retries: two retries, soon enough
// to stay well inside an HTTP request, long enough for a server that is
// ending its backends to have ended them.
var retryPauses = [...]time.Duration{5 * time.Millisecond, 25 * time.Millisecond}

// retry runs op, and runs it again, at most len(retryPauses) more times,
// when it failed because its connection did (connFailed) and policy allows
// it (see retryPolicy): after a short pause, and after the pool's idle
// connections whose server end has gone are dropped (dropDeadConns), so
// that the next try gets a live or a new connection rather than the next
// dead one. It never waits past ctx's deadline: it returns op's error
// instead. It returns op's last error as op returned it.
//
// op must give the same answer however many times it runs: it sets its
// results afresh on every try (no appending to a slice of an earlier one),
// and uses the pool, not a connection or transaction taken outside it
// (retryTx runs a transaction). Usage, for an operation of several
// statements:
//
//	var res []orcheo.RunCreated
//	err := s.db.retry(ctx, retryIdempotent, func() (err error) {
//		res, err = s.createRuns(ctx, ins, now)
//		return err
//	})
//
// An insert of rows with application-made ids may use retryIdempotent only
// if a row found already holding its own id counts as created: after a
// first try that committed, ON CONFLICT DO NOTHING inserts nothing and
// RETURNING names no row. For one statement, retryRow, retryQuery and
// retryExec wrap the call in place.
//
// retry is safe for concurrent use.
func (db *DB) retry(ctx context.Context, policy retryPolicy, op func() error) error {
	for try := 0; ; try++ {
		err := op()
		if err == nil || ctx.Err() != nil {
			return stripUncommitted(err)
		}
		failed, sent := connFailed(err)
		if !failed {
			return stripUncommitted(err)
		}
		db.dropDeadConns()
		if (sent && policy != retryIdempotent) || try == len(retryPauses) || !pause(ctx, retryPauses[try]) {
			return stripUncommitted(err)
		}
	}
}

// connFailed reports whether err is the failure of the connection rather
// than the statement (isUnavailable: a failed connect, a terminated
// backend 57P01-57P03, a connection exception, EOF, a reset or broken
// socket, a closed connection) and, if so, whether the statement may have
// reached the server (sent = !unsent(err)).
func connFailed(err error) (failed, sent bool) {
	if !isUnavailable(err) && !unsent(err) {
		return false, false
	}
	return true, !unsent(err)
}

// unsent reports whether err guarantees that the operation never reached
// the server: pgconn says so (SafeToRetry: the connection was closed or
// busy before the first byte was written), the pool could not connect, or
// a transaction failed before its COMMIT was sent (retryTx).
func unsent(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // pgconn calls a context already done safe to retry; it is not worth retrying
	}
	var ce *pgconn.ConnectError
	var uc *uncommittedError
	return pgconn.SafeToRetry(err) || errors.As(err, &ce) || errors.As(err, &uc)
}

// pause waits d, or returns false at once if ctx ends before d has passed.
func pause(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dropDeadConns closes the pool's idle connections whose server end has
// gone. A terminated backend sends its FATAL message and closes its socket
// at once, but the client learns of it only when it next uses the
// connection, and pgxpool pings only connections idle for more than a
// second: after pg_terminate_backend of every backend, each idle connection
// would fail one statement in turn. CheckConn reads without writing (a
// millisecond on a live connection, at once on a dead one, which it
// closes); releasing a closed connection destroys it.
func (db *DB) dropDeadConns() {
	idle := db.pool.Pool.AcquireAllIdle(context.Background())
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Conn().PgConn().CheckConn()
			c.Release()
		}()
	}
	wg.Wait()
}

// retryRow is db.pool.QueryRow under retry: Scan runs the query again
// (and scans again) as policy allows.
func (db *DB) retryRow(ctx context.Context, policy retryPolicy, sql string, args ...any) pgx.Row {
	return retryingRow{db: db, ctx: ctx, policy: policy, sql: sql, args: args}
}

type retryingRow struct {
	db     *DB
	ctx    context.Context
	policy retryPolicy
	sql    string
	args   []any
}

func (r retryingRow) Scan(dest ...any) error {
	return r.db.retry(r.ctx, r.policy, func() error {
		return r.db.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	})
}

// retryQuery is db.pool.Query under retry. It reads the first row (or the
// end) before it returns, so that a failure before any row reached the
// caller is retried; one after that is the caller's, as from pgx. On error
// the rows it returns report that error, so `rows, _ :=` stays safe.
func (db *DB) retryQuery(ctx context.Context, policy retryPolicy, sql string, args ...any) (pgx.Rows, error) {
	var out *firstRow
	err := db.retry(ctx, policy, func() error {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		if rows.Next() {
			out = &firstRow{Rows: rows, ahead: true}
			return nil
		}
		if err := rows.Err(); err != nil {
			return err
		}
		out = &firstRow{Rows: rows}
		return nil
	})
	if err != nil {
		return errRows{err}, err
	}
	return out, nil
}

// firstRow is rows whose first Next was called by retryQuery: the caller's
// first Next returns that row instead of moving past it.
type firstRow struct {
	pgx.Rows
	ahead bool
}

func (r *firstRow) Next() bool {
	if r.ahead {
		r.ahead = false
		return true
	}
	return r.Rows.Next()
}

// errRows are rows that failed before the first one: Next is false, Err
// and Scan report err.
type errRows struct{ err error }

func (errRows) Close()                                       {}
func (r errRows) Err() error                                 { return r.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                          { return r.err }
func (r errRows) Values() ([]any, error)                     { return nil, r.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// retryExec is db.pool.Exec under retry.
func (db *DB) retryExec(ctx context.Context, policy retryPolicy, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := db.retry(ctx, policy, func() (err error) {
		tag, err = db.pool.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// retryTx runs fn in a transaction and commits it, under retry: a
// connection failure before COMMIT was sent (in BEGIN or in fn) left
// nothing committed, so the whole transaction runs again under either
// policy; a failure of the COMMIT may have come after the commit, so it
// runs again only as policy allows. fn must not commit or roll back, and
// must set its results afresh on every run. An error of fn that is not the
// connection's rolls back and is returned as fn returned it; a connection
// failure is EUNAVAILABLE.
func (db *DB) retryTx(ctx context.Context, policy retryPolicy, fn func(tx pgx.Tx) error) error {
	return db.retry(ctx, policy, func() error {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return uncommitted(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if err := fn(tx); err != nil {
			return uncommitted(unavailable(err))
		}
		return unavailable(tx.Commit(ctx))
	})
}

// uncommittedError marks a connection failure of a transaction before its
// COMMIT was sent, which unsent counts as never having reached the server
// (nothing of it can have committed). retry removes the mark.
type uncommittedError struct{ err error }

func (e *uncommittedError) Error() string { return e.err.Error() }
func (e *uncommittedError) Unwrap() error { return e.err }

func uncommitted(err error) error {
	if failed, _ := connFailed(err); !failed {
		return err
	}
	return &uncommittedError{err: err}
}

func stripUncommitted(err error) error {
	if uc, ok := err.(*uncommittedError); ok {
		return uc.err
	}
	return err
}
