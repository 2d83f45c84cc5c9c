package client

import (
	"context"
	"net/http"
	"time"
)

// RunBulk is one call of a bulk action: the runs Query selects (its Limit
// bounds the call, 0 meaning the server's 1000; its Cursor is ignored, use
// Cursor here), whether a filter selecting every run is meant (All), and
// whether to change nothing (DryRun).
type RunBulk struct {
	Query  RunQuery
	All    bool
	DryRun bool
	Cursor string
}

// RunBulkOutcome is what happened (or, on a dry run, would happen) to one
// run: Outcome is retried, cancelled, cancel_requested, would_retry,
// would_cancel, would_request_cancel, refused (Error says why) or error
// (the store failed; the call stopped there).
type RunBulkOutcome struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// RunBulkResult answers one bulk call: More says more runs matched, to be
// acted on by a call with Cursor set to NextCursor.
type RunBulkResult struct {
	DryRun     bool             `json:"dry_run"`
	Runs       []RunBulkOutcome `json:"runs"`
	More       bool             `json:"more"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// RetryRuns retries the failed and cancelled runs b selects (POST
// /api/runs/retry, admin), each as RetryRun does; others are refused one by
// one. Returns EINVALID for a filter that selects every run without All.
func (c *Client) RetryRuns(ctx context.Context, b RunBulk) (*RunBulkResult, error) {
	return c.bulk(ctx, "/api/runs/retry", b)
}

// CancelRuns cancels the pending and running runs b selects (POST
// /api/runs/cancel, admin), each as CancelRun does; runs already ended are
// refused one by one.
func (c *Client) CancelRuns(ctx context.Context, b RunBulk) (*RunBulkResult, error) {
	return c.bulk(ctx, "/api/runs/cancel", b)
}

func (c *Client) bulk(ctx context.Context, path string, b RunBulk) (*RunBulkResult, error) {
	q := b.Query
	body := map[string]interface{}{"all": b.All, "dry_run": b.DryRun}
	for name, v := range map[string]string{"workflow": q.Workflow, "status": q.Status, "trigger": q.Trigger,
		"queue": q.Queue, "id": q.ID, "idempotency_key": q.IdempotencyKey, "cursor": b.Cursor} {
		if v != "" {
			body[name] = v
		}
	}
	if !q.Since.IsZero() {
		body["since"] = q.Since.UTC().Format(time.RFC3339Nano)
	}
	if !q.Until.IsZero() {
		body["until"] = q.Until.UTC().Format(time.RFC3339Nano)
	}
	if q.Limit > 0 {
		body["limit"] = q.Limit
	}
	var out RunBulkResult
	if _, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
