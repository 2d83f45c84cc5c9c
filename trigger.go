package orcheo

import (
	"context"
	"net/http"
	"strings"
)

// WebhookConfig configures a workflow's webhook trigger. New verification
// options are added as fields; the store keeps the whole config as JSON.
type WebhookConfig struct {
	Enabled bool `json:"enabled"`
	// Methods lists the HTTP methods the webhook accepts; empty means POST.
	Methods []string `json:"methods,omitempty"`
	// Keep lists header and query parameter names (case-insensitive, "_"
	// and "-" alike) to keep in the run input although they look like
	// credentials and would be dropped. Authorization, Proxy-Authorization,
	// Cookie and Set-Cookie are never kept; Validate refuses them.
	Keep []string `json:"keep,omitempty"`

	// RequiredHeaders and RequiredQuery are header and query values a
	// request must carry (names of headers case-insensitive); one missing
	// or different answers 400 and stores nothing.
	RequiredHeaders map[string]string `json:"required_headers,omitempty"`
	RequiredQuery   map[string]string `json:"required_query,omitempty"`
	// Verify says how a request proves its sender; nil is as type none.
	Verify *WebhookVerify `json:"verify,omitempty"`
	// RateLimit, if set, bounds the requests the webhook accepts.
	RateLimit *WebhookRateLimit `json:"rate_limit,omitempty"`
}

// WebhookMethods are the methods a webhook may be configured to accept.
var WebhookMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Validate normalises Methods to upper case and Keep to lower case, and
// returns EINVALID for an unsupported method or a name Keep may not hold.
func (c *WebhookConfig) Validate() error {
	for i, m := range c.Methods {
		m = strings.ToUpper(m)
		ok := false
		for _, allowed := range WebhookMethods {
			ok = ok || m == allowed
		}
		if !ok {
			return Errorf(EINVALID, "methods: %q is not one of GET, POST, PUT, PATCH, DELETE", c.Methods[i])
		}
		c.Methods[i] = m
	}
	if len(c.Keep) > 100 {
		return Errorf(EINVALID, "keep: at most 100 names")
	}
	for i, name := range c.Keep {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || len(name) > 200 {
			return Errorf(EINVALID, "keep: %q must be a header or query parameter name of 1-200 characters", c.Keep[i])
		}
		switch strings.ReplaceAll(name, "_", "-") {
		case "authorization", "proxy-authorization", "cookie", "set-cookie":
			return Errorf(EINVALID, "keep: %s is never stored in a run's input", name)
		}
		c.Keep[i] = name
	}
	if err := validateRequired("required_headers", c.RequiredHeaders, true); err != nil {
		return err
	}
	if err := validateRequired("required_query", c.RequiredQuery, false); err != nil {
		return err
	}
	if c.Verify != nil {
		if err := c.Verify.Validate(); err != nil {
			return err
		}
	}
	if c.RateLimit != nil {
		if err := c.RateLimit.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validateRequired checks required header or query values, lower-casing
// header names.
func validateRequired(field string, m map[string]string, header bool) error {
	if len(m) > MaxRequiredValues {
		return Errorf(EINVALID, "%s: at most %d names", field, MaxRequiredValues)
	}
	for name, value := range m {
		if name == "" || len(name) > 200 || len(value) > 1024 {
			return Errorf(EINVALID, "%s: %q must be a name of 1-200 characters with a value of at most 1024", field, name)
		}
		if err := CheckText(field, name+value); err != nil {
			return err
		}
		if header && strings.ToLower(name) != name {
			delete(m, name)
			m[strings.ToLower(name)] = value
		}
	}
	return nil
}

// Unauthenticated reports whether anyone who knows the webhook's URL can
// start runs: no verification, or type none.
func (c *WebhookConfig) Unauthenticated() bool {
	return c.Verify == nil || c.Verify.Type == VerifyNone
}

// AllowsMethod reports whether the webhook accepts method.
func (c *WebhookConfig) AllowsMethod(method string) bool {
	if len(c.Methods) == 0 {
		return method == http.MethodPost
	}
	for _, m := range c.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// TriggerService stores trigger configuration.
type TriggerService interface {
	// FindWebhookConfig returns the workflow's webhook config, or a disabled
	// zero config if none was ever set.
	FindWebhookConfig(ctx context.Context, workflowID string) (*WebhookConfig, error)

	// SetWebhookConfig replaces the workflow's webhook config. Returns
	// ENOTFOUND if the workflow does not exist.
	SetWebhookConfig(ctx context.Context, workflowID string, cfg *WebhookConfig) error

	// UpdateWebhookConfig changes the workflow's webhook config by fn, which
	// gets the stored config (secrets sealed; the disabled zero config when
	// none is stored, as FindWebhookConfig returns it) and returns the one
	// to store in its place, checked as SetWebhookConfig checks it. The read
	// and the write are atomic with respect to every other update of the
	// same workflow's config: concurrent updates run one after the other,
	// each fn seeing the result of the one before, so none is lost. It
	// returns the stored config. An error of fn is returned as fn returned
	// it and nothing is written. fn may run more than once (the store runs
	// the transaction again after a connection cut that left nothing
	// committed), so it must only compute its result from stored and what
	// it captured, and must not change what it captured. Returns ENOTFOUND,
	// without calling fn, if the workflow does not exist.
	UpdateWebhookConfig(ctx context.Context, workflowID string, fn func(stored *WebhookConfig) (*WebhookConfig, error)) (*WebhookConfig, error)

	// FindWebhookTriggers returns every stored webhook config, enabled or
	// not, with its workflow, ordered by workflow id. Configs are as
	// stored: secrets sealed. It serves the start-up checks (sealed
	// secrets need ORCHEO_SECRETS_KEY; unauthenticated webhooks are
	// logged), so it reads the whole table.
	FindWebhookTriggers(ctx context.Context) ([]*WebhookTrigger, error)
}

// WebhookTrigger is a workflow's stored webhook config.
type WebhookTrigger struct {
	WorkflowID string
	Handle     string
	// Archived is true when the workflow is archived: its webhook answers
	// no request, but its config (and sealed secrets) stay stored.
	Archived bool
	Config   *WebhookConfig
}
