package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orcheo/orcheo"
)

// RunQuery selects runs for ListRuns and the bulk actions. Empty fields do
// not filter.
type RunQuery struct {
	Workflow       string // id or handle
	Status         string
	Trigger        string // manual, webhook, cron or workflow
	Queue          string
	Since          time.Time // created at or after
	Until          time.Time // created before
	ID             string    // one run by id
	IdempotencyKey string    // runs holding this key, exactly
	Limit          int       // 0 means the server's default
	// Cursor is the NextCursor of the previous page (ListRuns only).
	Cursor string
}

// values are q's filters as the API's parameters.
func (rq RunQuery) values() url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"workflow": rq.Workflow, "status": rq.Status, "trigger": rq.Trigger,
		"queue": rq.Queue, "id": rq.ID, "idempotency_key": rq.IdempotencyKey, "cursor": rq.Cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if !rq.Since.IsZero() {
		q.Set("since", rq.Since.UTC().Format(time.RFC3339Nano))
	}
	if !rq.Until.IsZero() {
		q.Set("until", rq.Until.UTC().Format(time.RFC3339Nano))
	}
	if rq.Limit > 0 {
		q.Set("limit", strconv.Itoa(rq.Limit))
	}
	return q
}

// RunPage is one page of GET /api/runs.
type RunPage struct {
	Runs []*orcheo.Run `json:"runs"`
	// HasMore says another page follows: ListRuns with Cursor set to
	// NextCursor fetches it.
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ListRuns returns one page of runs newest first. There is no total
// count: follow NextCursor while HasMore. Returns EINVALID for a bad filter
// or cursor, ENOTFOUND for an unknown workflow.
func (c *Client) ListRuns(ctx context.Context, rq RunQuery) (*RunPage, error) {
	var page RunPage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/runs", query: rq.values()}, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// FindRuns returns the first page of runs newest first, filtered by
// workflow (id or handle) and status when not empty. n is the number of
// runs returned, which is every match only when the page holds them all:
// the API no longer counts (use ListRuns to page). limit 0 means the
// server's default.
func (c *Client) FindRuns(ctx context.Context, workflowRef string, status string, limit int) (runs []*orcheo.Run, n int, err error) {
	return c.QueryRuns(ctx, RunQuery{Workflow: workflowRef, Status: status, Limit: limit})
}

// QueryRuns is FindRuns with every filter of ListRuns.
func (c *Client) QueryRuns(ctx context.Context, rq RunQuery) (runs []*orcheo.Run, n int, err error) {
	page, err := c.ListRuns(ctx, rq)
	if err != nil {
		return nil, 0, err
	}
	return page.Runs, len(page.Runs), nil
}
