package orcheo

import (
	"context"
	"time"
)

// RunStats is a snapshot of the runs still to finish, read at each metrics
// scrape.
type RunStats struct {
	Pending int64 // pending runs, due or waiting for their NotBefore
	Running int64 // running runs
	// OldestDue is when the oldest due pending run became due: its
	// NotBefore, else its CreatedAt. Nil when no pending run is due. A
	// run that waits for a retry delay or a long delay node is not due,
	// so it does not make the queue look stuck.
	OldestDue *time.Time
}

// RunStatsService reads RunStats. The stores implement it beside
// RunService with one query, cheap enough for every scrape.
type RunStatsService interface {
	// RunStats counts pending and running runs and finds the oldest
	// pending run due at now.
	RunStats(ctx context.Context, now time.Time) (*RunStats, error)
}

// RunCounts counts runs by status, for the web UI's chart of the last
// day. The stores implement it beside RunService.
type RunCounts interface {
	// CountRunsByStatus counts the runs created in [since, until) by their
	// status now, in one GROUP BY over the created_at index's range. A
	// status with no run is absent. Returns EINVALID unless since is
	// before until and the range is at most RunCountsRangeMax.
	CountRunsByStatus(ctx context.Context, since, until time.Time) (map[RunStatus]int64, error)
}

// RunCountsRangeMax bounds the range CountRunsByStatus reads, so the
// query stays a bounded index range.
const RunCountsRangeMax = 7 * 24 * time.Hour

// CheckRunCountsRange returns EINVALID unless [since, until) is a range
// CountRunsByStatus reads.
func CheckRunCountsRange(since, until time.Time) error {
	if !since.Before(until) {
		return Errorf(EINVALID, "since must be before until")
	}
	if until.Sub(since) > RunCountsRangeMax {
		return Errorf(EINVALID, "a run count covers at most %s", RunCountsRangeMax)
	}
	return nil
}
