package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/orcheo/orcheo"
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

// TestRunEvents checks the audit trail that the interface does not expose:
// one run_events row per transition.
func TestRunEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wf, _ := storetest.MustWorkflow(t, s)
	done := storetest.MustRun(t, s, wf)
	storetest.MustClaim(t, s, done.ID)
	if _, err := s.Runs.CompleteRun(ctx, done.ID, 1, orcheo.RunCompletion{Status: orcheo.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	cancelled := storetest.MustRun(t, s, wf)
	if _, err := s.Runs.CancelRun(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for id, want := range map[string][]string{
		done.ID:      {"created", "claimed", "succeeded"},
		cancelled.ID: {"created", "cancelled"},
	} {
		rows, err := raw.QueryContext(ctx, `SELECT kind FROM run_events WHERE run_id = ? ORDER BY id`, id)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, k)
		}
		rows.Close()
		if fmt.Sprint(kinds) != fmt.Sprint(want) {
			t.Fatalf("events of run %s = %v, want %v", id, kinds, want)
		}
	}
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
