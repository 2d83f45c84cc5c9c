package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/db/storetest"
)

func openStore(tb testing.TB) *db.Store {
	tb.Helper()
	s, err := db.Open(context.Background(), "sqlite:"+filepath.Join(tb.TempDir(), "orcheo.db"))
	if err != nil {
		tb.Fatalf("open sqlite store: %v", err)
	}
	if s.Backend != db.BackendSQLite {
		tb.Fatalf("backend = %q", s.Backend)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStore runs the conformance suite against SQLite; every store gets a
// file of its own.
func TestStore(t *testing.T) {
	storetest.Exercise(t, storetest.Backend{
		Open: openStore,
		FreshDSN: func(tb testing.TB) string {
			return "sqlite:" + filepath.Join(tb.TempDir(), "fresh.db")
		},
	})
}

// TestPragmas checks the settings that keep concurrent writers from seeing
// "database is locked".
func TestPragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pragmas.db")
	s, err := db.Open(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}

func BenchmarkCreateClaimComplete(b *testing.B) {
	storetest.BenchmarkCreateClaimComplete(b, openStore(b))
}
