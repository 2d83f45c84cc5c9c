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
