// Package sqlite implements the orcheo store on an embedded SQLite file
// (modernc.org/sqlite, pure Go).
//
// Writes go through a pool of exactly one connection whose transactions
// begin IMMEDIATE, so writers queue in Go instead of failing with "database
// is locked"; reads use a separate pool that WAL lets run beside the writer.
// Times are stored as fixed-width UTC text, which sorts chronologically.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
	"github.com/orcheo/orcheo/db/migrations"
)

// DB is one migrated SQLite database file. It is safe for concurrent use.
type DB struct {
	write *sql.DB // one connection: every write and every transaction
	read  *sql.DB // query-only connections for plain reads

	// Now is the clock every timestamp and every "is it due" comparison is
	// taken from; tests replace it. It must not change while the DB is in use
	// by other goroutines.
	Now func() time.Time
}

// busyTimeout bounds how long a connection waits for another process's
// write lock (another orcheo process on the same file).
const busyTimeout = "10000"

// Open opens (creating if needed) and migrates the database at path, which
// may carry a "file:" prefix and extra "?query" driver parameters.
func Open(ctx context.Context, path string) (*DB, error) {
	write, err := openPool(path, false)
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	read, err := openPool(path, true)
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(8)
	return &DB{write: write, read: read, Now: time.Now}, nil
}

// Migrate applies pending migrations to the database at path and returns.
// It is idempotent.
func Migrate(ctx context.Context, path string) error {
	write, err := openPool(path, false)
	if err != nil {
		return err
	}
	defer write.Close()
	write.SetMaxOpenConns(1)
	return migrate(ctx, write)
}

// openPool opens a pool on path with the pragmas every connection needs.
func openPool(path string, readOnly bool) (*sql.DB, error) {
	path = strings.TrimPrefix(path, "file:")
	name, rawQuery, _ := strings.Cut(path, "?")
	if name == "" || name == ":memory:" {
		return nil, orcheo.Errorf(orcheo.EINVALID, "sqlite needs a file path (an in-memory database cannot be shared by its connections)")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "sqlite dsn parameters: %v", err)
	}
	q.Add("_pragma", "busy_timeout("+busyTimeout+")")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", name+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", name, err)
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Ping checks that the file answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// now returns the current time as stored: UTC, microseconds.
func (db *DB) now() time.Time { return rules.Time(db.Now()) }

// withTx runs fn in an IMMEDIATE transaction on the write connection and
// commits if fn returns nil. fn must use only tx: the write pool has one
// connection.
func (db *DB) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations that schema_migrations does not
// list, each in its own IMMEDIATE transaction, so concurrent processes
// apply each file once.
func migrate(ctx context.Context, db *sql.DB) error {
	files, err := migrations.SQLite()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := retryBusy(ctx, func() error { return migrateFile(ctx, db, f) }); err != nil {
			return err
		}
	}
	return nil
}

// migrateBusyLimit bounds how long migrate retries while other processes
// hold the file.
const migrateBusyLimit = 30 * time.Second

// retryBusy calls fn again while it fails with SQLITE_BUSY or SQLITE_LOCKED.
// While another process opens the file or switches it to WAL, SQLite
// reports busy at once instead of calling the busy handler, so only a retry
// makes several processes starting together safe.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(migrateBusyLimit)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED (any extended
// code).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

func migrateFile(ctx context.Context, db *sql.DB, f migrations.File) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", f.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	// Created inside the IMMEDIATE transaction: outside one, a statement
	// that reads the schema and then writes can deadlock with another
	// process and fail at once with SQLITE_BUSY, busy_timeout or not.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY,
		applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`); err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", f.Name, err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, f.Name).Scan(&n); err != nil {
		return fmt.Errorf("migrate %s: check: %w", f.Name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, f.SQL); err != nil {
		return fmt.Errorf("migrate %s: %w", f.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, f.Name); err != nil {
		return fmt.Errorf("migrate %s: record: %w", f.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", f.Name, err)
	}
	return nil
}

// FormatError turns a constraint violation into an application error:
// unique or primary key → ECONFLICT, foreign key → ENOTFOUND; a file that
// stays locked past the busy timeout, cannot be opened or fails I/O →
// EUNAVAILABLE (the error stays in the chain for logs). Other errors are
// returned unchanged. Result codes are matched, never text.
func FormatError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return orcheo.Errorf(orcheo.ECONFLICT, "conflicts with an existing record")
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return orcheo.Errorf(orcheo.ENOTFOUND, "referenced record not found")
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_TOOBIG:
		// A json_valid CHECK (JSON nested deeper than SQLite's JSON
		// limit) or an oversize value. orcheo.CheckJSON refuses these
		// first, naming the field; this is the backstop, as on
		// PostgreSQL, so that they are a 400 and never a 500.
		return fmt.Errorf("%w: %w", errInvalidData, err)
	}
	return err
}

// errInvalidData is the application error for a value SQLite refused.
var errInvalidData = orcheo.Errorf(orcheo.EINVALID, "a value cannot be stored: the database refused it")

// errUnavailable is the application error for a database file that
// cannot be used right now; the API answers it with 503.
var errUnavailable = orcheo.Errorf(orcheo.EUNAVAILABLE, "database unavailable; try again shortly")

// timeLayout is how times are stored: UTC, fixed width, so text order is
// time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// ts formats t for storage.
func ts(t time.Time) string { return rules.Time(t).Format(timeLayout) }

// tsPtr formats an optional time for storage (nil → NULL).
func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// timeCol scans a stored time.
type timeCol struct{ dst *time.Time }

func (c timeCol) Scan(v any) error {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case time.Time:
		*c.dst = v.UTC()
		return nil
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", s, err)
	}
	*c.dst = t.UTC()
	return nil
}

// nullTimeCol scans an optional stored time.
type nullTimeCol struct{ dst **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.dst = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.dst = &t
	return nil
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullJSON stores empty JSON as NULL.
func nullJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }
