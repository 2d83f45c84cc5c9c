package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// TestListRunsPlans checks that SQLite answers each filter shape of
// ListRuns along an index, in the list's order: no full scan of runs and
// no temporary B-tree to sort, so a page costs its limit at any size.
// No ANALYZE: the plan must hold on a fresh file too.
func TestListRunsPlans(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir()+"/plans.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	str := func(v string) *string { return &v }
	st := orcheo.RunFailed
	now := time.Now()
	cursor := &orcheo.RunCursor{CreatedAt: now, ID: orcheo.NewID()}
	for name, f := range map[string]orcheo.RunFilter{
		"NoFilter":       {},
		"Workflow":       {WorkflowID: str(orcheo.NewID())},
		"Status":         {Status: &st},
		"Queue":          {Queue: str("q1")},
		"Trigger":        {TriggeredBy: str(orcheo.TriggerCron)},
		"Since":          {CreatedSince: &now},
		"Cursor":         {Before: cursor},
		"WorkflowCursor": {WorkflowID: str(orcheo.NewID()), Before: cursor},
		"StatusCursor":   {Status: &st, Before: cursor},
		"QueueCursor":    {Queue: str("q1"), Before: cursor},
		"ID":             {ID: str(orcheo.NewID())},
		"IdempotencyKey": {IdempotencyKey: str("k")},
	} {
		where, args, _ := runWhere(f)
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT `+runCols+runFrom+where+`
			ORDER BY r.created_at DESC, r.id DESC LIMIT 51`, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		// Every filter is a SEARCH of an index (only the unfiltered list
		// walks one whole, stopping after its limit), and the order comes
		// from the index, except for id and key, which match a run or few.
		want := "SEARCH r USING "
		if name == "NoFilter" {
			want = "SCAN r USING INDEX runs_created_at_idx"
		}
		sorts := strings.Contains(text, "TEMP B-TREE") && name != "ID" && name != "IdempotencyKey"
		if !strings.Contains(text, want) || sorts {
			t.Errorf("%s: plan %q: want %q and no sort", name, text, want)
		}
	}
}
