package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/orcheo/orcheo/db/storetest"
)

// TestDeleteFinishedRuns_Cascade counts a purged run's steps and events in
// the file itself: foreign_keys must be on for ON DELETE CASCADE.
func TestDeleteFinishedRuns_Cascade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "purge.db")
	storetest.PurgeCascade(t, "sqlite:"+path, func(tb testing.TB, table, runID string) int {
		tb.Helper()
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			tb.Fatal(err)
		}
		defer raw.Close()
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM `+table+` WHERE run_id = ?`, runID).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		return n
	})
}
