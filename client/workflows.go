package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orcheo/orcheo"
)

// CreateWorkflow creates a workflow with definition (the bytes of a JSON or
// YAML file, sent as a string) as version 1. Returns EINVALID for a bad
// handle or definition and ECONFLICT if the handle is taken.
func (c *Client) CreateWorkflow(ctx context.Context, handle, name, queue string, definition []byte) (*orcheo.Workflow, error) {
	body := map[string]interface{}{"handle": handle, "name": name, "definition": string(definition)}
	if queue != "" {
		body["queue"] = queue
	}
	var wf orcheo.Workflow
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/workflows", body: body}, &wf); err != nil {
		return nil, err
	}
	return &wf, nil
}

type workflowList struct {
	Workflows []*orcheo.Workflow `json:"workflows"`
	Total     int                `json:"total"`
}

// FindWorkflows returns all workflows, newest first, and their count.
func (c *Client) FindWorkflows(ctx context.Context, includeArchived bool) ([]*orcheo.Workflow, int, error) {
	q := url.Values{}
	if includeArchived {
		q.Set("include_archived", strconv.FormatBool(true))
	}
	var out workflowList
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workflows", query: q}, &out); err != nil {
		return nil, 0, err
	}
	return out.Workflows, out.Total, nil
}

// FindWorkflowByRef returns the workflow whose id or handle is ref.
// Returns ENOTFOUND.
func (c *Client) FindWorkflowByRef(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	var wf orcheo.Workflow
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workflows/" + esc(ref)}, &wf); err != nil {
		return nil, err
	}
	return &wf, nil
}

// CreateWorkflowVersion stores definition (JSON or YAML bytes) as the next
// version. Returns ENOTFOUND, EINVALID, or ECONFLICT for an archived
// workflow.
func (c *Client) CreateWorkflowVersion(ctx context.Context, ref string, definition []byte) (*orcheo.WorkflowVersion, error) {
	var v orcheo.WorkflowVersion
	body := map[string]interface{}{"definition": string(definition)}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/workflows/" + esc(ref) + "/versions", body: body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// FindWorkflowVersions returns every version of a workflow, oldest first.
func (c *Client) FindWorkflowVersions(ctx context.Context, ref string) ([]*orcheo.WorkflowVersion, error) {
	var out struct {
		Versions []*orcheo.WorkflowVersion `json:"versions"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workflows/" + esc(ref) + "/versions"}, &out); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

// ArchiveWorkflow archives a workflow (idempotent); it then takes no runs.
func (c *Client) ArchiveWorkflow(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	var wf orcheo.Workflow
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/api/workflows/" + esc(ref) + "/archive"}, &wf); err != nil {
		return nil, err
	}
	return &wf, nil
}

// FindWebhookConfig returns the workflow's webhook trigger config as the
// server shows it: secrets are write-only, so the view says only whether
// each is set and since when, and whether the webhook is unauthenticated.
// To change a config, edit view.Config() and pass it to SetWebhookConfig,
// or, so as not to undo a change made meanwhile, to UpdateWebhookConfig
// with the ETag FindWebhookConfigETag returns.
func (c *Client) FindWebhookConfig(ctx context.Context, ref string) (*orcheo.WebhookConfigView, error) {
	v, _, err := c.FindWebhookConfigETag(ctx, ref)
	return v, err
}

// FindWebhookConfigETag is FindWebhookConfig, also returning the config's
// ETag ("" from a server that sends none).
func (c *Client) FindWebhookConfigETag(ctx context.Context, ref string) (*orcheo.WebhookConfigView, string, error) {
	var v orcheo.WebhookConfigView
	h, err := c.doHeader(ctx, request{method: http.MethodGet, path: webhookPath(ref) + "/config"}, &v)
	if err != nil {
		return nil, "", err
	}
	return &v, h.Get("ETag"), nil
}

// SetWebhookConfig replaces the workflow's webhook trigger config and
// returns it as the server stored it (normalised, without secrets). A
// cfg.Verify.Secret or PreviousSecret is sent once and sealed by the
// server; a Verify of the stored type without secrets keeps the stored
// ones, so SetWebhookConfig(view.Config()) changes nothing else.
func (c *Client) SetWebhookConfig(ctx context.Context, ref string, cfg *orcheo.WebhookConfig) (*orcheo.WebhookConfigView, error) {
	v, _, err := c.UpdateWebhookConfig(ctx, ref, cfg, "")
	return v, err
}

// UpdateWebhookConfig is SetWebhookConfig on a condition: with ifMatch
// (an ETag from FindWebhookConfigETag, or "*"), the server stores cfg only
// if the stored config is still the one that ETag names, and answers
// EPRECONDITION otherwise, having changed nothing; read it again and
// reapply the change. "" stores unconditionally. It also returns the new
// config's ETag.
func (c *Client) UpdateWebhookConfig(ctx context.Context, ref string, cfg *orcheo.WebhookConfig, ifMatch string) (*orcheo.WebhookConfigView, string, error) {
	req := request{method: http.MethodPut, path: webhookPath(ref) + "/config", body: webhookConfigBody(cfg)}
	if ifMatch != "" {
		req.header = http.Header{"If-Match": {ifMatch}}
	}
	var v orcheo.WebhookConfigView
	h, err := c.doHeader(ctx, req, &v)
	if err != nil {
		return nil, "", err
	}
	return &v, h.Get("ETag"), nil
}

// RotateWebhookSecret rotates the secret of the workflow's webhook: with a
// secret, the current one becomes the previous one (still accepted) and
// secret the current one; with dropPrevious, the previous one is removed.
// Both at once rotate and drop: only secret is then accepted.
func (c *Client) RotateWebhookSecret(ctx context.Context, ref, secret string, dropPrevious bool) (*orcheo.WebhookConfigView, error) {
	body := struct {
		Secret       string `json:"secret,omitempty"`
		DropPrevious bool   `json:"drop_previous,omitempty"`
	}{secret, dropPrevious}
	var v orcheo.WebhookConfigView
	if _, err := c.do(ctx, request{method: http.MethodPost, path: webhookPath(ref) + "/rotate-secret", body: &body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// webhookConfigBody is cfg without what the server refuses to be sent:
// sealed secrets and the times secrets were set are the server's.
func webhookConfigBody(cfg *orcheo.WebhookConfig) *orcheo.WebhookConfig {
	if cfg == nil || cfg.Verify == nil {
		return cfg
	}
	c, v := *cfg, *cfg.Verify
	v.SealedSecret, v.SealedPreviousSecret = "", ""
	v.SecretSetAt, v.PreviousSecretSetAt = nil, nil
	c.Verify = &v
	return &c
}

// webhookPath is the path third parties call to trigger ref.
func webhookPath(ref string) string { return "/api/workflows/" + esc(ref) + "/triggers/webhook" }

func (c *Client) doHeader(ctx context.Context, req request, out interface{}) (http.Header, error) {
	var h http.Header
	req.answerHeader = &h
	if _, err := c.do(ctx, req, out); err != nil {
		return nil, err
	}
	return h, nil
}
