package client

import (
	"context"
	"net/http"
	"time"

	"github.com/orcheo/orcheo"
)

// RunPurge asks POST /api/runs/purge to delete finished runs: those that
// finished longer than OlderThan ago (an age such as "7d" or "12h"), of
// Statuses (empty: every terminal status), or with DryRun to count them.
type RunPurge struct {
	OlderThan string             `json:"older_than"`
	Statuses  []orcheo.RunStatus `json:"statuses,omitempty"`
	DryRun    bool               `json:"dry_run,omitempty"`
}

// RunPurgeResult is one purge request's answer: Count runs deleted (or,
// with DryRun, that would be), all finished before Before; More says that
// runs matching remain for the next request.
type RunPurgeResult struct {
	Count  int       `json:"count"`
	DryRun bool      `json:"dry_run"`
	Before time.Time `json:"before"`
	More   bool      `json:"more"`
}

// PurgeRuns sends one purge request: the server deletes for a bounded
// time, so a caller that wants every matching run gone repeats it while
// More is set. Admin scope.
func (c *Client) PurgeRuns(ctx context.Context, p RunPurge) (*RunPurgeResult, error) {
	var res RunPurgeResult
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/runs/purge", body: p}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
