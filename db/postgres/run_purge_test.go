package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo/db/storetest"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestDeleteFinishedRuns_Cascade counts a purged run's steps and events in
// the database itself.
func TestDeleteFinishedRuns_Cascade(t *testing.T) {
	dsn := testenv.PostgresURL(t, "db_postgres_purge")
	storetest.PurgeCascade(t, dsn, func(tb testing.TB, table, runID string) int {
		tb.Helper()
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE run_id = $1`, runID).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		return n
	})
}
