package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// benchRuns is the size of BenchmarkListRuns1M's table.
const benchRuns = 1_000_000

// benchDBName is the database BenchmarkListRuns1M fills once and reuses
// on later runs (seeding takes about a minute); drop it to start over.
const benchDBName = "orcheo_bench_runs_1m"

// BenchmarkListRuns1M times each list query of GET /api/runs on a table of
// a million finished runs (100 workflows, 10 queues, 2% failed, created a
// second apart in pairs, so created_at ties): one page of 50 each. With
// -v it logs each query's EXPLAIN ANALYZE once. The figures are in
// docs/performance.md; nothing asserts them.
//
//	ORCHEO_TEST_DATABASE_URL=… go test -run '^$' -bench ListRuns1M ./db/postgres/
func BenchmarkListRuns1M(b *testing.B) {
	ctx := context.Background()
	dsn := benchDatabase(b)
	store, err := Open(ctx, dsn) // migrates, so indexes added since the seed are built
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	runs := NewRunService(store)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var wfID string
	var newest time.Time
	if err := conn.QueryRow(ctx, `SELECT workflow_id, created_at FROM runs ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&wfID, &newest); err != nil {
		b.Fatal(err)
	}
	var failedWF string // a workflow with failed runs
	if err := conn.QueryRow(ctx, `SELECT workflow_id FROM runs WHERE status = 'failed' ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&failedWF); err != nil {
		b.Fatal(err)
	}
	first, _, err := runs.ListRuns(ctx, orcheo.RunFilter{})
	if err != nil || len(first) != rules.DefaultLimit {
		b.Fatalf("first page: %d runs, %v", len(first), err)
	}
	last := first[len(first)-1]
	str := func(v string) *string { return &v }
	failed := orcheo.RunFailed
	since := newest.Add(-time.Hour)
	for _, bc := range []struct {
		name   string
		filter orcheo.RunFilter
	}{
		{"NoFilter", orcheo.RunFilter{}},
		{"Workflow", orcheo.RunFilter{WorkflowID: &wfID}},
		{"StatusFailed", orcheo.RunFilter{Status: &failed}},
		{"Queue", orcheo.RunFilter{Queue: str("q7")}},
		{"Trigger", orcheo.RunFilter{TriggeredBy: str(orcheo.TriggerCron)}},
		{"Since1h", orcheo.RunFilter{CreatedSince: &since}},
		{"Page2ByCursor", orcheo.RunFilter{Before: &orcheo.RunCursor{CreatedAt: last.CreatedAt, ID: last.ID}}},
		{"Page2ByCursorWorkflowFailed", orcheo.RunFilter{WorkflowID: &failedWF, Status: &failed, Before: &orcheo.RunCursor{CreatedAt: last.CreatedAt, ID: last.ID}}},
		{"IdempotencyKey", orcheo.RunFilter{IdempotencyKey: str("key-424242")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if testing.Verbose() {
				logPlan(b, conn, bc.filter)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got, _, err := runs.ListRuns(ctx, bc.filter)
				if err != nil || len(got) == 0 {
					b.Fatalf("ListRuns: %d runs, %v", len(got), err)
				}
			}
		})
	}
	// What GET /api/runs did before ListRuns: the same page with an exact
	// count of every row.
	b.Run("FindRunsWithCount", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, n, err := runs.FindRuns(ctx, orcheo.RunFilter{}); err != nil || n != benchRuns {
				b.Fatalf("FindRuns: %d, %v", n, err)
			}
		}
	})
}

// logPlan logs EXPLAIN ANALYZE of ListRuns's statement for f.
func logPlan(b *testing.B, conn *pgx.Conn, f orcheo.RunFilter) {
	where, args, _ := runWhere(f)
	rows, err := conn.Query(context.Background(), `EXPLAIN (ANALYZE, BUFFERS) SELECT `+runCols+` FROM `+runFrom("runs")+where+
		` ORDER BY r.created_at DESC, r.id DESC LIMIT `+strconv.Itoa(rules.DefaultLimit+1), args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	b.Logf("plan:\n%s", strings.Join(plan, "\n"))
}

// benchDatabase returns the DSN of benchDBName, creating and seeding it
// unless a previous run finished doing so (bench_seeded holds its size).
func benchDatabase(b *testing.B) string {
	b.Helper()
	ctx := context.Background()
	admin := os.Getenv("ORCHEO_TEST_DATABASE_URL")
	if admin == "" {
		if os.Getenv("CI") == "true" {
			b.Fatal("ORCHEO_TEST_DATABASE_URL is not set")
		}
		b.Skip("ORCHEO_TEST_DATABASE_URL is not set")
	}
	u, err := url.Parse(admin)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + benchDBName
	dsn := u.String()

	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatal(err)
	}
	defer ac.Close(ctx)
	var exists bool
	if err := ac.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, benchDBName).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if exists {
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			var n int
			err = c.QueryRow(ctx, `SELECT n FROM bench_seeded`).Scan(&n)
			c.Close(ctx)
			if err == nil && n == benchRuns {
				return dsn
			}
		}
		if _, err := ac.Exec(ctx, `DROP DATABASE `+benchDBName+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ac.Exec(ctx, `CREATE DATABASE `+benchDBName); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeding %d runs into %s (once)", benchRuns, benchDBName)
	start := time.Now()
	store, err := Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	wfs := NewWorkflowService(store)
	for i := 0; i < 100; i++ {
		wf := &orcheo.Workflow{Handle: fmt.Sprintf("bench-%02d", i), Name: "bench"}
		if _, err := wfs.CreateWorkflow(ctx, wf, json.RawMessage(`{"nodes":[{"id":"a","type":"log"}]}`)); err != nil {
			b.Fatal(err)
		}
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	// One statement: run g of workflow g % 100 on queue q(g % 10), cron
	// every tenth, failed every fiftieth (else succeeded), created
	// floor(g/2) seconds before now, so pairs tie on created_at.
	if _, err := c.Exec(ctx, `
		WITH wf AS (
			SELECT (row_number() OVER (ORDER BY w.handle) - 1)::int AS n, w.id AS wid, v.id AS vid
			FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id)
		INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by, input, output, error,
			attempt, max_attempts, idempotency_key, created_at, enqueued_at, started_at, completed_at)
		SELECT gen_random_uuid(), wf.wid, wf.vid, 'q' || (g % 10),
			CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
			CASE WHEN g % 10 = 0 THEN 'cron' ELSE 'webhook' END,
			'{"n":1}', '{"ok":true}', CASE WHEN g % 50 = 0 THEN 'boom' ELSE '' END,
			1, 1, CASE WHEN g % 10 = 0 THEN NULL ELSE 'key-' || g END,
			t, t, t, t + interval '1 second'
		FROM generate_series(1, $1::int) g
		JOIN wf ON wf.n = g % 100,
		LATERAL (SELECT now() - (g / 2) * interval '1 second' AS t) ts`, benchRuns); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `VACUUM ANALYZE runs`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE bench_seeded (n int NOT NULL); INSERT INTO bench_seeded VALUES (`+strconv.Itoa(benchRuns)+`)`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded in %s", time.Since(start).Round(time.Second))
	return dsn
}
