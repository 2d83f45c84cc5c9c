// Package postgres implements the orcheo store on PostgreSQL with pgx v5.
//
// Every run transition is one conditional statement; the audit event of a
// transition is written by the same statement (a data-modifying CTE), so a
// claim or a completion is one round trip and cannot half-happen.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
	"github.com/orcheo/orcheo/db/migrations"
)

// DB is a pool of connections to one migrated PostgreSQL database. It is
// safe for concurrent use.
type DB struct {
	pool *mappedPool // maps connection errors to EUNAVAILABLE (unavailable.go)

	// Now is the clock every timestamp and every "is it due" comparison is
	// taken from; tests replace it. It must not change while the DB is in use
	// by other goroutines.
	Now func() time.Time
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), migrates it and returns the DB.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: &mappedPool{pool}, Now: time.Now}, nil
}

// Migrate applies pending migrations to the database at dsn and returns.
// It is idempotent and safe to call from several processes at once.
func Migrate(ctx context.Context, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse postgres dsn: %w", err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

// Close closes every connection; it waits for connections in use.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers a query. A connection the server
// ended is not the database being down: Ping tries a fresh one (retry).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.retry(ctx, retryIdempotent, func() error { return db.pool.Ping(ctx) }); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// now returns the current time as stored: UTC, microseconds.
func (db *DB) now() time.Time { return rules.Time(db.Now()) }

// migrateLockKey is the pg_advisory_lock key held while migrating
// (the first eight bytes of "orcheo-m" read as an int64).
const migrateLockKey int64 = 0x6f726368656f2d6d

// migrate applies the embedded migrations that schema_migrations does not
// list, each in its own transaction, under a session advisory lock so that
// concurrent callers wait for each other instead of racing on DDL.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := migrations.Postgres()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even if ctx was cancelled. If
		// the unlock fails the connection is dropped, which releases it.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, f := range files {
		if err := migrateFile(ctx, conn.Conn(), f); err != nil {
			return err
		}
	}
	return nil
}

func migrateFile(ctx context.Context, conn *pgx.Conn, f migrations.File) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", f.Name, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var done bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, f.Name).Scan(&done); err != nil {
		return fmt.Errorf("migrate %s: check: %w", f.Name, err)
	}
	if done {
		return nil
	}
	if _, err := tx.Exec(ctx, f.SQL); err != nil {
		return fmt.Errorf("migrate %s: %w", f.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, f.Name); err != nil {
		return fmt.Errorf("migrate %s: record: %w", f.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", f.Name, err)
	}
	return nil
}

// PostgreSQL error codes the store turns into application errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// FormatError turns a constraint violation into an application error:
// unique → ECONFLICT, foreign key → ENOTFOUND, a refused value (SQLSTATE
// class 22 or 54) → EINVALID (ErrInvalidData), and a database that cannot
// be reached into EUNAVAILABLE. Other errors are returned unchanged. Codes
// are matched, never message text.
func FormatError(err error) error {
	if isUnavailable(err) || isInvalidData(err) {
		return unavailable(err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case codeUniqueViolation:
		switch pgErr.ConstraintName {
		case "workflows_handle_key":
			return orcheo.Errorf(orcheo.ECONFLICT, "handle is already taken")
		}
		return orcheo.Errorf(orcheo.ECONFLICT, "conflicts with an existing record (%s)", pgErr.ConstraintName)
	case codeForeignKeyViolation:
		switch pgErr.ConstraintName {
		case "runs_version_id_fkey":
			return orcheo.Errorf(orcheo.ENOTFOUND, "workflow version not found")
		case "runs_workflow_id_fkey", "webhook_triggers_workflow_id_fkey", "workflow_versions_workflow_id_fkey":
			return orcheo.Errorf(orcheo.ENOTFOUND, "workflow not found")
		}
		return orcheo.Errorf(orcheo.ENOTFOUND, "referenced record not found (%s)", pgErr.ConstraintName)
	}
	return err
}
