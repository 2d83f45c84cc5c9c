package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

var _ orcheo.RunStatsService = (*RunService)(nil)

// RunStats reads the counts in one pass over the pending and running runs
// (runs_status_created_at_idx). Stored times are fixed-width UTC text, so
// min and <= compare them as times.
func (s *RunService) RunStats(ctx context.Context, now time.Time) (*orcheo.RunStats, error) {
	var st orcheo.RunStats
	err := s.db.read.QueryRowContext(ctx, `SELECT
			coalesce(sum(status = 'pending'), 0),
			coalesce(sum(status = 'running'), 0),
			min(CASE WHEN status = 'pending' AND (not_before IS NULL OR not_before <= ?)
				THEN coalesce(not_before, created_at) END)
		FROM runs WHERE status IN ('pending', 'running')`, ts(now)).Scan(&st.Pending, &st.Running, nullTimeCol{&st.OldestDue})
	if err != nil {
		return nil, fmt.Errorf("run stats: %w", err)
	}
	return &st, nil
}

var _ orcheo.RunCounts = (*RunService)(nil)

// CountRunsByStatus counts the runs created in [since, until) by status:
// one GROUP BY over the range of runs_created_at_idx (stored times are
// fixed-width UTC text, so the range compares them as times).
func (s *RunService) CountRunsByStatus(ctx context.Context, since, until time.Time) (map[orcheo.RunStatus]int64, error) {
	if err := orcheo.CheckRunCountsRange(since, until); err != nil {
		return nil, err
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT status, count(*) FROM runs
		WHERE created_at >= ? AND created_at < ? GROUP BY status`, ts(since), ts(until))
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
