package db_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()

	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for _, dsn := range []string{
			"sqlite:" + filepath.Join(dir, "a.db"),
			"sqlite://" + filepath.Join(dir, "b.db"),
			"file:" + filepath.Join(dir, "c.db"),
			filepath.Join(dir, "d.db"),
			"file:" + filepath.Join(dir, "e.db") + "?cache=private",
		} {
			s, err := db.Open(ctx, dsn)
			if err != nil {
				t.Fatalf("open %q: %v", dsn, err)
			}
			if s.Backend != db.BackendSQLite {
				t.Fatalf("open %q: backend %q, want sqlite", dsn, s.Backend)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("ping %q: %v", dsn, err)
			}
			if _, _, err := s.Workflows.FindWorkflows(ctx, orcheo.WorkflowFilter{}); err != nil {
				t.Fatalf("query %q: %v", dsn, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close %q: %v", dsn, err)
			}
		}
	})

	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		dsn := testenv.PostgresURL(t, "db_open")
		s, err := db.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Backend != db.BackendPostgres {
			t.Fatalf("backend %q, want postgres", s.Backend)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		t.Parallel()
		for _, dsn := range []string{"", "mysql://localhost/x", "sqlite::memory:"} {
			_, err := db.Open(ctx, dsn)
			if orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("open %q: %v, want EINVALID", dsn, err)
			}
			if err := db.Migrate(ctx, dsn); orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("migrate %q: %v, want EINVALID", dsn, err)
			}
		}
	})
}

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	for range 2 {
		if err := db.Migrate(ctx, dsn); err != nil {
			t.Fatal(err)
		}
	}
	s, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
