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

// FindWebhookConfig returns the workflow's webhook trigger config.
func (c *Client) FindWebhookConfig(ctx context.Context, ref string) (*orcheo.WebhookConfig, error) {
	var cfg orcheo.WebhookConfig
	if _, err := c.do(ctx, request{method: http.MethodGet, path: webhookPath(ref) + "/config"}, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// SetWebhookConfig replaces the workflow's webhook trigger config and, on
// success, updates cfg with the config as the server stored it.
func (c *Client) SetWebhookConfig(ctx context.Context, ref string, cfg *orcheo.WebhookConfig) error {
	var out orcheo.WebhookConfig
	if _, err := c.do(ctx, request{method: http.MethodPut, path: webhookPath(ref) + "/config", body: cfg}, &out); err != nil {
		return err
	}
	*cfg = out
	return nil
}

// webhookPath is the path third parties call to trigger ref.
func webhookPath(ref string) string { return "/api/workflows/" + esc(ref) + "/triggers/webhook" }
