package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// runWhere builds the WHERE clause of a run list from the filters present,
// each answered by an index (0008_run_list.sql). none is true for a filter
// no run can match (a workflow id that is not an id).
func runWhere(f orcheo.RunFilter) (where string, args []any, none bool) {
	var conds []string
	add := func(cond string, v ...any) {
		conds, args = append(conds, cond), append(args, v...)
	}
	if f.WorkflowID != nil {
		if !orcheo.IsID(*f.WorkflowID) {
			return "", nil, true
		}
		add("r.workflow_id = ?", *f.WorkflowID)
	}
	if f.Status != nil {
		add("r.status = ?", string(*f.Status))
	}
	if f.TriggeredBy != nil {
		add("r.triggered_by = ?", *f.TriggeredBy)
	}
	if f.Queue != nil {
		add("r.queue = ?", *f.Queue)
	}
	// Times are fixed-width UTC text, so text order is time order.
	if f.CreatedSince != nil {
		add("r.created_at >= ?", ts(*f.CreatedSince))
	}
	if f.CreatedUntil != nil {
		add("r.created_at < ?", ts(*f.CreatedUntil))
	}
	if f.ID != nil {
		add("r.id = ?", *f.ID)
	}
	if f.IdempotencyKey != nil {
		add("r.idempotency_key = ?", *f.IdempotencyKey)
	}
	if f.Before != nil {
		add("(r.created_at, r.id) < (?, ?)", ts(f.Before.CreatedAt), f.Before.ID)
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
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+runCols+runFrom+where+`
		ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, append(args, limit+1)...)
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
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+runCols+`, count(*) OVER ()`+runFrom+where+`
		ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?`,
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
		r, err := scanRun(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("find runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find runs: %w", err)
	}
	if len(out) == 0 && rules.Offset(f.Offset) > 0 {
		if err := s.db.read.QueryRowContext(ctx, `SELECT count(*) FROM runs r`+where, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count runs: %w", err)
		}
	}
	return out, total, nil
}
