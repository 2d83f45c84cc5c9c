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
