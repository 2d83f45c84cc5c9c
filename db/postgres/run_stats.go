package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

var _ orcheo.RunStatsService = (*RunService)(nil)

// RunStats reads the counts in one pass over the pending and running runs
// (runs_status_created_at_idx), so a scrape stays cheap however many
// finished runs the table holds.
func (s *RunService) RunStats(ctx context.Context, now time.Time) (*orcheo.RunStats, error) {
	var st orcheo.RunStats
	err := s.db.retryRow(ctx, retryIdempotent, `SELECT
			count(*) FILTER (WHERE status = 'pending'),
			count(*) FILTER (WHERE status = 'running'),
			min(coalesce(not_before, created_at))
				FILTER (WHERE status = 'pending' AND (not_before IS NULL OR not_before <= $1))
		FROM runs WHERE status IN ('pending', 'running')`, now).Scan(&st.Pending, &st.Running, &st.OldestDue)
	if err != nil {
		return nil, fmt.Errorf("run stats: %w", err)
	}
	if st.OldestDue != nil {
		t := st.OldestDue.UTC()
		st.OldestDue = &t
	}
	return &st, nil
}

var _ orcheo.RunCounts = (*RunService)(nil)

// CountRunsByStatus counts the runs created in [since, until) by status:
// one GROUP BY over the range of runs_created_at_idx, so its cost is the
// range's runs, never the table's.
func (s *RunService) CountRunsByStatus(ctx context.Context, since, until time.Time) (map[orcheo.RunStatus]int64, error) {
	if err := orcheo.CheckRunCountsRange(since, until); err != nil {
		return nil, err
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT status, count(*) FROM runs
		WHERE created_at >= $1 AND created_at < $2 GROUP BY status`, since, until)
	if err != nil {
		return nil, fmt.Errorf("count runs by status: %w", err)
	}
	defer rows.Close()
	out := map[orcheo.RunStatus]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count runs by status: %w", err)
		}
		out[orcheo.RunStatus(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count runs by status: %w", err)
	}
	return out, nil
}
