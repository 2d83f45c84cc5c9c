package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/orcheo/orcheo"
)

// StartRun starts a manual run of the workflow's latest version with input
// (nil means {}). A non-empty idempotencyKey makes retries safe: a repeated
// key returns the run it created first.
func (c *Client) StartRun(ctx context.Context, ref string, input json.RawMessage, idempotencyKey string) (*orcheo.Run, error) {
	body := map[string]interface{}{}
	if len(input) > 0 {
		if !json.Valid(input) {
			return nil, orcheo.Errorf(orcheo.EINVALID, "run input must be JSON")
		}
		body["input"] = input
	}
	var header http.Header
	if idempotencyKey != "" {
		header = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var run orcheo.Run
	req := request{method: http.MethodPost, path: "/api/workflows/" + esc(ref) + "/runs", header: header, body: body}
	if _, err := c.do(ctx, req, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// FindRunByID returns a run with its steps. Returns ENOTFOUND.
func (c *Client) FindRunByID(ctx context.Context, id string) (*orcheo.Run, error) {
	var run orcheo.Run
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/runs/" + esc(id)}, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// CancelRun cancels a run. A pending run comes back cancelled; a running
// one comes back still running with CancelRequested set, and ends
// cancelled once its worker stops it (WaitRun waits for that). Returns
// ECONFLICT if the run already ended.
func (c *Client) CancelRun(ctx context.Context, id string) (*orcheo.Run, error) {
	var run orcheo.Run
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/runs/" + esc(id) + "/cancel"}, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// RetryRun starts a new attempt of a failed or cancelled run and returns
// it pending. Returns ECONFLICT for a run in any other status.
func (c *Client) RetryRun(ctx context.Context, id string) (*orcheo.Run, error) {
	var run orcheo.Run
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/runs/" + esc(id) + "/retry"}, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// WaitRun polls the run every poll until it reaches a terminal status and
// returns it. When ctx ends first it returns the last run seen (nil if none)
// and an error wrapping ctx.Err().
func (c *Client) WaitRun(ctx context.Context, id string, poll time.Duration) (*orcheo.Run, error) {
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var last *orcheo.Run
	for {
		run, err := c.FindRunByID(ctx, id)
		if err == nil {
			if run.Status.Terminal() {
				return run, nil
			}
			last = run
		} else if ctx.Err() == nil {
			return last, err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("wait for run %s: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}
