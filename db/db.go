// Package db opens the orcheo store: PostgreSQL (package db/postgres) for
// production, or an embedded SQLite file (package db/sqlite) for `orcheo dev`
// and laptops. Both implement the same root interfaces and pass the same
// conformance suite (db/storetest).
package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/postgres"
	"github.com/orcheo/orcheo/db/sqlite"
)

// Backend names, as reported in Store.Backend.
const (
	BackendPostgres = "postgres"
	BackendSQLite   = "sqlite"
)

// Store bundles one backend's services. It is safe for concurrent use.
type Store struct {
	Workflows orcheo.WorkflowService
	Runs      orcheo.RunService
	Triggers  orcheo.TriggerService
	Cron      orcheo.CronService
	Backend   string // BackendPostgres or BackendSQLite

	ping   func(context.Context) error
	close  func() error
	setNow func(func() time.Time)
}

// Open opens and migrates the store named by dsn:
//   - "postgres://…" or "postgresql://…" opens PostgreSQL;
//   - "sqlite:PATH", "file:PATH" or a plain PATH opens (creating) a SQLite file.
func Open(ctx context.Context, dsn string) (*Store, error) {
	backend, target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	switch backend {
	case BackendPostgres:
		pdb, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, err
		}
		return &Store{
			Workflows: postgres.NewWorkflowService(pdb),
			Runs:      postgres.NewRunService(pdb),
			Triggers:  postgres.NewTriggerService(pdb),
			Cron:      postgres.NewCronService(pdb),
			Backend:   BackendPostgres,
			ping:      pdb.Ping,
			close:     pdb.Close,
			setNow:    func(now func() time.Time) { pdb.Now = now },
		}, nil
	default:
		sdb, err := sqlite.Open(ctx, target)
		if err != nil {
			return nil, err
		}
		return &Store{
			Workflows: sqlite.NewWorkflowService(sdb),
			Runs:      sqlite.NewRunService(sdb),
			Triggers:  sqlite.NewTriggerService(sdb),
			Cron:      sqlite.NewCronService(sdb),
			Backend:   BackendSQLite,
			ping:      sdb.Ping,
			close:     sdb.Close,
			setNow:    func(now func() time.Time) { sdb.Now = now },
		}, nil
	}
}

// Migrate applies pending migrations to the store named by dsn (see Open)
// and returns. It is idempotent; on PostgreSQL several processes may call it
// at once.
func Migrate(ctx context.Context, dsn string) error {
	backend, target, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	if backend == BackendPostgres {
		return postgres.Migrate(ctx, target)
	}
	return sqlite.Migrate(ctx, target)
}

// parseDSN picks the backend of dsn and what to hand it.
func parseDSN(dsn string) (backend, target string, err error) {
	dsn = strings.TrimSpace(dsn)
	switch {
	case dsn == "":
		return "", "", orcheo.Errorf(orcheo.EINVALID, "database url is empty")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return BackendPostgres, dsn, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		return BackendSQLite, strings.TrimPrefix(dsn, "sqlite://"), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return BackendSQLite, strings.TrimPrefix(dsn, "sqlite:"), nil
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return "", "", orcheo.Errorf(orcheo.EINVALID, "unsupported database url scheme %q (want postgres:// or sqlite:)", scheme)
	}
	return BackendSQLite, dsn, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.ping(ctx) }

// Close releases the store's connections.
func (s *Store) Close() error {
	if err := s.close(); err != nil {
		return fmt.Errorf("close %s store: %w", s.Backend, err)
	}
	return nil
}

// SetNow replaces the clock the store takes every timestamp from. It exists
// for tests and must be called before the store is shared between goroutines.
func (s *Store) SetNow(now func() time.Time) { s.setNow(now) }
