package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCountRunsByStatusPlan checks that the count of a day's runs reads a
// range of runs_created_at_idx, never the whole table.
func TestCountRunsByStatusPlan(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir()+"/plans.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	now := time.Now()
	rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT status, count(*) FROM runs
		WHERE created_at >= ? AND created_at < ? GROUP BY status`, ts(now.Add(-24*time.Hour)), ts(now))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	text := strings.Join(plan, "; ")
	if !strings.Contains(text, "SEARCH runs USING INDEX runs_created_at_idx (created_at>? AND created_at<?)") {
		t.Fatalf("plan %q: want a SEARCH of runs_created_at_idx by its range", text)
	}
}
