package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// runWhere builds the WHERE clause of a run list from the filters present,
// so each shape gets a plan that uses its index (0008_run_list.sql has one
// per filter). none is true for a filter no run can match (a workflow id
// that is not an id), which the caller answers without a query.
func runWhere(f orcheo.RunFilter) (where string, args []any, none bool) {
	var conds []string
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.WorkflowID != nil {
		if !orcheo.IsID(*f.WorkflowID) {
			return "", nil, true
		}
		conds = append(conds, "r.workflow_id = "+arg(*f.WorkflowID))
	}
	if f.Status != nil {
		conds = append(conds, "r.status = "+arg(string(*f.Status)))
	}
	if f.TriggeredBy != nil {
		conds = append(conds, "r.triggered_by = "+arg(*f.TriggeredBy))
	}
	if f.Queue != nil {
		conds = append(conds, "r.queue = "+arg(*f.Queue))
	}
	if f.CreatedSince != nil {
		conds = append(conds, "r.created_at >= "+arg(rules.Time(*f.CreatedSince)))
	}
	if f.CreatedUntil != nil {
		conds = append(conds, "r.created_at < "+arg(rules.Time(*f.CreatedUntil)))
	}
	if f.ID != nil {
		conds = append(conds, "r.id = "+arg(*f.ID))
	}
	if f.IdempotencyKey != nil {
		conds = append(conds, "r.idempotency_key = "+arg(*f.IdempotencyKey))
	}
	if f.Before != nil {
		// A row comparison, which the (…, created_at DESC, id DESC) indexes
		// answer as one range: the page starts right after the cursor.
		conds = append(conds, "(r.created_at, r.id) < ("+arg(rules.Time(f.Before.CreatedAt))+", "+arg(f.Before.ID)+"::uuid)")
	}
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	return where, args, false
}

// ListRuns returns one page of matching runs, newest first, and whether
// more follow: it reads limit+1 rows along an index and counts nothing.
func (s *RunService) ListRuns(ctx context.Context, f orcheo.RunFilter) ([]*orcheo.Run, bool, error) {
	if err := f.Validate(); err != nil {
		return nil, false, err
	}
	where, args, none := runWhere(f)
	if none {
		return nil, false, nil
	}
	limit := rules.Limit(f.Limit)
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT `+runCols+` FROM `+runFrom("runs")+where+`
		ORDER BY r.created_at DESC, r.id DESC LIMIT $`+strconv.Itoa(len(args)+1), append(args, limit+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*orcheo.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list runs: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// FindRuns returns matching runs, newest first, and their total count.
func (s *RunService) FindRuns(ctx context.Context, f orcheo.RunFilter) ([]*orcheo.Run, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	where, args, none := runWhere(f)
	if none {
		return nil, 0, nil
	}
	n := len(args)
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT `+runCols+`, count(*) OVER () FROM `+runFrom("runs")+where+`
		ORDER BY r.created_at DESC, r.id DESC LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2),
		append(args, rules.Limit(f.Limit), rules.Offset(f.Offset))...)
	if err != nil {
		return nil, 0, fmt.Errorf("find runs: %w", err)
	}
	defer rows.Close()
	var (
		out   []*orcheo.Run
		total int
	)
	for rows.Next() {
		r, err := scanRun(countScanner{rows, &total})
		if err != nil {
			return nil, 0, fmt.Errorf("find runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find runs: %w", err)
	}
	if len(out) == 0 && rules.Offset(f.Offset) > 0 {
		if err := s.db.retryRow(ctx, retryIdempotent, `SELECT count(*) FROM runs r`+where, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count runs: %w", err)
		}
	}
	return out, total, nil
}

// countScanner scans a row whose last column is a window count.
type countScanner struct {
	rows  pgx.Rows
	total *int
}

func (c countScanner) Scan(dest ...any) error { return c.rows.Scan(append(dest, c.total)...) }
