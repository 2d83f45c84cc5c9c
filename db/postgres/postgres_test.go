package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/db/storetest"
	"github.com/orcheo/orcheo/internal/testenv"
)

// fresh numbers the extra databases the suite asks for.
var fresh atomic.Int64

func backend(t *testing.T, name string) storetest.Backend {
	dsn := testenv.PostgresURL(t, name)
	return storetest.Backend{
		Open: func(tb testing.TB) *db.Store {
			tb.Helper()
			s, err := db.Open(context.Background(), dsn)
			if err != nil {
				tb.Fatalf("open postgres store: %v", err)
			}
			if s.Backend != db.BackendPostgres {
				tb.Fatalf("backend = %q", s.Backend)
			}
			tb.Cleanup(func() { _ = s.Close() })
			return s
		},
		FreshDSN: func(tb testing.TB) string {
			tb.Helper()
			return testenv.PostgresURL(tb, fmt.Sprintf("%s_fresh_%d", name, fresh.Add(1)))
		},
	}
}

// TestStore runs the conformance suite against PostgreSQL.
func TestStore(t *testing.T) {
	storetest.Exercise(t, backend(t, "db_postgres"))
}

// TestRunEvents checks the audit trail that the interface does not expose:
// one run_events row per transition, written with the transition.
func TestRunEvents(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresURL(t, "db_postgres_events")
	s, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wf, _ := storetest.MustWorkflow(t, s)
	done := storetest.MustRun(t, s, wf)
	storetest.MustClaim(t, s, done.ID)
	if _, err := s.Runs.CompleteRun(ctx, done.ID, 1, orcheo.RunCompletion{Status: orcheo.RunFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	cancelled := storetest.MustRun(t, s, wf)
	if _, err := s.Runs.CancelRun(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for id, want := range map[string][]string{
		done.ID:      {"created", "claimed", "failed"},
		cancelled.ID: {"created", "cancelled"},
	} {
		rows, _ := conn.Query(ctx, `SELECT kind FROM run_events WHERE run_id = $1 ORDER BY id`, id)
		kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(kinds) != fmt.Sprint(want) {
			t.Fatalf("events of run %s = %v, want %v", id, kinds, want)
		}
	}
}

func BenchmarkCreateClaimComplete(b *testing.B) {
	dsn := testenv.PostgresURL(b, "db_postgres_bench")
	s, err := db.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkCreateClaimComplete(b, s)
}
