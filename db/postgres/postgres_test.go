package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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

func BenchmarkCreateClaimComplete(b *testing.B) {
	dsn := testenv.PostgresURL(b, "db_postgres_bench")
	s, err := db.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkCreateClaimComplete(b, s)
}
