package orcheo

import "time"

// UnauthenticatedWebhookWarning is the warning a view of an enabled,
// unauthenticated webhook carries.
const UnauthenticatedWebhookWarning = "anyone who knows this webhook's URL can start runs of this workflow: set verify"

// WebhookConfigView is a webhook config as the API shows it (GET and PUT
// of …/triggers/webhook/config, and the rotate-secret answer): everything
// but the secrets, which are write-only. Verify says whether each secret is
// set and since when. Its fields are listed one by one, not embedded from
// WebhookConfig, so a field added there is not shown until it is added
// here (a test checks that every field is either shown or a secret).
type WebhookConfigView struct {
	Enabled         bool               `json:"enabled"`
	Methods         []string           `json:"methods,omitempty"`
	Keep            []string           `json:"keep,omitempty"`
	RequiredHeaders map[string]string  `json:"required_headers,omitempty"`
	RequiredQuery   map[string]string  `json:"required_query,omitempty"`
	Verify          *WebhookVerifyView `json:"verify,omitempty"`
	RateLimit       *WebhookRateLimit  `json:"rate_limit,omitempty"`

	// Unauthenticated is true when the webhook is enabled and anyone who
	// knows its URL can start runs (no verify, or type none); Warning then
	// says so in words.
	Unauthenticated bool   `json:"unauthenticated"`
	Warning         string `json:"warning,omitempty"`
}

// WebhookVerifyView is a WebhookVerify without its secrets.
type WebhookVerifyView struct {
	Type string `json:"type"`

	SecretSet           bool       `json:"secret_set"`
	SecretSetAt         *time.Time `json:"secret_set_at,omitempty"`
	PreviousSecretSet   bool       `json:"previous_secret_set"`
	PreviousSecretSetAt *time.Time `json:"previous_secret_set_at,omitempty"`

	Tolerance       string `json:"tolerance,omitempty"`
	Header          string `json:"header,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	Encoding        string `json:"encoding,omitempty"`
	Prefix          string `json:"prefix,omitempty"`
	TimestampHeader string `json:"timestamp_header,omitempty"`
	Signed          string `json:"signed,omitempty"`
	Separator       string `json:"separator,omitempty"`
}

// View returns c as the API shows it, without any secret, plaintext or
// sealed. The view shares no memory with c.
func (c *WebhookConfig) View() *WebhookConfigView {
	v := &WebhookConfigView{
		Enabled:         c.Enabled,
		Methods:         cloneStrings(c.Methods),
		Keep:            cloneStrings(c.Keep),
		RequiredHeaders: cloneMap(c.RequiredHeaders),
		RequiredQuery:   cloneMap(c.RequiredQuery),
	}
	if c.RateLimit != nil {
		rl := *c.RateLimit
		v.RateLimit = &rl
	}
	if c.Verify != nil {
		s := c.Verify
		v.Verify = &WebhookVerifyView{
			Type:                s.Type,
			SecretSet:           s.Secret != "" || s.SealedSecret != "",
			SecretSetAt:         cloneTime(s.SecretSetAt),
			PreviousSecretSet:   s.PreviousSecret != "" || s.SealedPreviousSecret != "",
			PreviousSecretSetAt: cloneTime(s.PreviousSecretSetAt),
			Tolerance:           s.Tolerance,
			Header:              s.Header,
			Algorithm:           s.Algorithm,
			Encoding:            s.Encoding,
			Prefix:              s.Prefix,
			TimestampHeader:     s.TimestampHeader,
			Signed:              s.Signed,
			Separator:           s.Separator,
		}
	}
	if c.Enabled && c.Unauthenticated() {
		v.Unauthenticated = true
		v.Warning = UnauthenticatedWebhookWarning
	}
	return v
}

// Config returns the view as a config to edit and PUT back: no secret in
// it, so the server keeps the stored ones as long as the verify type stays
// the same.
func (v *WebhookConfigView) Config() *WebhookConfig {
	c := &WebhookConfig{
		Enabled:         v.Enabled,
		Methods:         cloneStrings(v.Methods),
		Keep:            cloneStrings(v.Keep),
		RequiredHeaders: cloneMap(v.RequiredHeaders),
		RequiredQuery:   cloneMap(v.RequiredQuery),
	}
	if v.RateLimit != nil {
		rl := *v.RateLimit
		c.RateLimit = &rl
	}
	if s := v.Verify; s != nil {
		c.Verify = &WebhookVerify{
			Type:            s.Type,
			Tolerance:       s.Tolerance,
			Header:          s.Header,
			Algorithm:       s.Algorithm,
			Encoding:        s.Encoding,
			Prefix:          s.Prefix,
			TimestampHeader: s.TimestampHeader,
			Signed:          s.Signed,
			Separator:       s.Separator,
		}
	}
	return c
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
