package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orcheo/orcheo"
)

// Workers returns the online workers, by name, each with its runs in
// flight, its reserved messages and its stats (GET /api/workers).
func (c *Client) Workers(ctx context.Context) ([]*orcheo.WorkerInfo, error) {
	var out struct {
		Workers []*orcheo.WorkerInfo `json:"workers"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workers"}, &out); err != nil {
		return nil, err
	}
	return out.Workers, nil
}

// Scheduled returns up to limit runs waiting for a due time, soonest first
// (GET /api/inspect/scheduled); limit 0 is the server's default.
func (c *Client) Scheduled(ctx context.Context, limit int) ([]*orcheo.ScheduledRun, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Scheduled []*orcheo.ScheduledRun `json:"scheduled"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/inspect/scheduled", query: q}, &out); err != nil {
		return nil, err
	}
	return out.Scheduled, nil
}

// Shutdown asks the named workers, or every online worker when names is
// empty, to drain and exit (POST /api/control/shutdown), and returns the
// names told. A name not online is ENOTFOUND.
func (c *Client) Shutdown(ctx context.Context, names []string) ([]string, error) {
	if names == nil {
		names = []string{}
	}
	var out struct {
		Shutdown []string `json:"shutdown"`
	}
	body := map[string][]string{"workers": names}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/control/shutdown", body: body}, &out); err != nil {
		return nil, err
	}
	return out.Shutdown, nil
}
