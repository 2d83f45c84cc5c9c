package postgres_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestUnavailable cuts the store off its database (connections terminated
// and refused) and checks that calls fail with EUNAVAILABLE, not an
// internal error, and succeed again once the database accepts connections.
func TestUnavailable(t *testing.T) {
	dsn := testenv.PostgresURL(t, "db_postgres_unavailable")
	ctx := context.Background()
	s, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := url.Parse(dsn)
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(ctx, os.Getenv("ORCHEO_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	restore := func() {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
			t.Errorf("restore connections: %v", err)
		}
	}
	defer restore()
	// name comes from testenv, which allows only [a-z0-9_].
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	// The pool may hold a connection that has not noticed yet: the first
	// call can fail on it, every call fails while connections are refused.
	for i := range 3 {
		_, _, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{})
		if code := orcheo.ErrorCode(err); code != orcheo.EUNAVAILABLE {
			t.Fatalf("call %d while cut off: code %q (err %v), want %q", i, code, err, orcheo.EUNAVAILABLE)
		}
	}
	_, err = s.Workflows.FindWorkflowByRef(ctx, "nope")
	if orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
		t.Fatalf("FindWorkflowByRef while cut off: %v", err)
	}
	if msg := orcheo.ErrorMessage(err); !strings.Contains(msg, "database unavailable") {
		t.Fatalf("message %q", msg)
	}
	restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.Runs.FindRuns(ctx, orcheo.RunFilter{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
