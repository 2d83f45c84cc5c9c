package client

import (
	"context"
	"net/http"
	"time"

	"github.com/orcheo/orcheo"
)

var _ orcheo.CronDispatcher = (*Client)(nil)

// cronConfigBody is what PUT …/triggers/cron/config takes.
type cronConfigBody struct {
	Expression       string               `json:"expression"`
	Timezone         string               `json:"timezone,omitempty"`
	AllowOverlapping bool                 `json:"allow_overlapping"`
	StartAt          *string              `json:"start_at,omitempty"`
	EndAt            *string              `json:"end_at,omitempty"`
	Catchup          orcheo.CatchupPolicy `json:"catchup,omitempty"`
	CatchupLimit     int                  `json:"catchup_limit,omitempty"`
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.Format(time.RFC3339Nano)
	return &s
}

// FindCronTrigger returns the cron trigger of the workflow ref (id or
// handle). Returns ENOTFOUND if the workflow or its trigger does not exist.
func (c *Client) FindCronTrigger(ctx context.Context, ref string) (*orcheo.CronTrigger, error) {
	var t orcheo.CronTrigger
	req := request{method: http.MethodGet, path: "/api/workflows/" + esc(ref) + "/triggers/cron/config"}
	if _, err := c.do(ctx, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SetCronTrigger creates or replaces the cron trigger of workflow ref and
// returns it as stored. Returns EINVALID naming the field at fault.
func (c *Client) SetCronTrigger(ctx context.Context, ref string, t *orcheo.CronTrigger) (*orcheo.CronTrigger, error) {
	body := cronConfigBody{Expression: t.Expression, Timezone: t.Timezone, AllowOverlapping: t.AllowOverlapping,
		StartAt: rfc3339(t.StartAt), EndAt: rfc3339(t.EndAt), Catchup: t.Catchup, CatchupLimit: t.CatchupLimit}
	var out orcheo.CronTrigger
	req := request{method: http.MethodPut, path: "/api/workflows/" + esc(ref) + "/triggers/cron/config", body: body}
	if _, err := c.do(ctx, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCronTrigger removes the cron trigger of workflow ref. Returns
// ENOTFOUND if there is none.
func (c *Client) DeleteCronTrigger(ctx context.Context, ref string) error {
	req := request{method: http.MethodDelete, path: "/api/workflows/" + esc(ref) + "/triggers/cron/config"}
	_, err := c.do(ctx, req, nil)
	return err
}

// FindCronTriggers lists the cron triggers of workflows that are not
// archived, each with its next slot.
func (c *Client) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	var out struct {
		Triggers []*orcheo.CronTrigger `json:"triggers"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/triggers/cron"}, &out); err != nil {
		return nil, err
	}
	return out.Triggers, nil
}

// DispatchCron asks the API to fire every due cron slot as of now (nil:
// the API's clock) and returns the runs it created.
func (c *Client) DispatchCron(ctx context.Context, now *time.Time) (*orcheo.CronDispatch, error) {
	body := map[string]interface{}{}
	if now != nil {
		body["now"] = now.Format(time.RFC3339Nano)
	}
	var out orcheo.CronDispatch
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/triggers/cron/dispatch", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
