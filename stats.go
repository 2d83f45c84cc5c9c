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
