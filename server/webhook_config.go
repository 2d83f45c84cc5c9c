package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

// registerWebhookConfigRoutes registers the management routes of a
// workflow's webhook trigger. They need the bearer token (only the webhook
// route itself is public, see isWebhookPath).
func (s *Server) registerWebhookConfigRoutes(r *mux.Router) {
	r.HandleFunc("/api/workflows/{ref}/triggers/webhook/config", s.handleWebhookConfigView).Methods(http.MethodGet)
	r.HandleFunc("/api/workflows/{ref}/triggers/webhook/config", s.handleWebhookConfigUpdate).Methods(http.MethodPut)
	r.HandleFunc("/api/workflows/{ref}/triggers/webhook/rotate-secret", s.handleWebhookSecretRotate).Methods(http.MethodPost)
}

// errNoSecretsKey answers a request that brings a secret to an API without
// ORCHEO_SECRETS_KEY: nothing is stored, and the operator learns what to do.
var errNoSecretsKey = orcheo.Errorf(orcheo.EUNAVAILABLE,
	"webhook secrets cannot be stored: the API has no ORCHEO_SECRETS_KEY to seal them with; "+
		"set it to 32 random bytes in base64 (openssl rand -base64 32) and restart orcheo api")

// webhookConfigRequest is the body of PUT …/webhook/config: a WebhookConfig
// without what only the server writes (sealed secrets, the times they were
// set), so a caller sending those gets 400 like any unknown field.
type webhookConfigRequest struct {
	Enabled         bool                     `json:"enabled"`
	Methods         []string                 `json:"methods"`
	Keep            []string                 `json:"keep"`
	RequiredHeaders map[string]string        `json:"required_headers"`
	RequiredQuery   map[string]string        `json:"required_query"`
	Verify          *webhookVerifyRequest    `json:"verify"`
	RateLimit       *orcheo.WebhookRateLimit `json:"rate_limit"`
}

// webhookVerifyRequest is WebhookVerify as a caller may send it: the
// secrets in plaintext, once.
type webhookVerifyRequest struct {
	Type            string `json:"type"`
	Secret          string `json:"secret"`
	PreviousSecret  string `json:"previous_secret"`
	Tolerance       string `json:"tolerance"`
	Header          string `json:"header"`
	Algorithm       string `json:"algorithm"`
	Encoding        string `json:"encoding"`
	Prefix          string `json:"prefix"`
	TimestampHeader string `json:"timestamp_header"`
	Signed          string `json:"signed"`
	Separator       string `json:"separator"`
}

func (q *webhookConfigRequest) config() *orcheo.WebhookConfig {
	cfg := &orcheo.WebhookConfig{
		Enabled: q.Enabled, Methods: q.Methods, Keep: q.Keep,
		RequiredHeaders: q.RequiredHeaders, RequiredQuery: q.RequiredQuery, RateLimit: q.RateLimit,
	}
	if v := q.Verify; v != nil {
		cfg.Verify = &orcheo.WebhookVerify{
			Type: v.Type, Secret: v.Secret, PreviousSecret: v.PreviousSecret, Tolerance: v.Tolerance,
			Header: v.Header, Algorithm: v.Algorithm, Encoding: v.Encoding, Prefix: v.Prefix,
			TimestampHeader: v.TimestampHeader, Signed: v.Signed, Separator: v.Separator,
		}
	}
	return cfg
}

// rotateSecretRequest is the body of POST …/webhook/rotate-secret.
type rotateSecretRequest struct {
	Secret       string `json:"secret"`
	DropPrevious bool   `json:"drop_previous"`
}

// handleWebhookConfigView answers the trigger's config (disabled if never
// set) as an orcheo.WebhookConfigView: never a secret, plaintext or sealed.
func (s *Server) handleWebhookConfigView(w http.ResponseWriter, r *http.Request) {
	_, cfg, err := s.findWebhookConfig(r)
	if err != nil {
		Error(w, r, err)
		return
	}
	answerWebhookConfig(w, r, cfg)
}

// answerWebhookConfig answers cfg (as stored) as its view, with its ETag.
func answerWebhookConfig(w http.ResponseWriter, r *http.Request, cfg *orcheo.WebhookConfig) {
	tag, err := webhookConfigETag(cfg)
	if err != nil {
		Error(w, r, err)
		return
	}
	w.Header().Set("ETag", tag)
	encodeJSON(w, r, http.StatusOK, cfg.View())
}

// handleWebhookConfigUpdate replaces the trigger's config and answers its
// view. Unknown fields (sealed_secret among them), unsupported methods and
// a verification type that needs a secret and has none are 400. A secret
// given is sealed with Secrets before it is stored (503 without Secrets);
// a verify of the stored type without secrets keeps the stored ones, so a
// client may PUT back a view's Config() to change other fields.
func (s *Server) handleWebhookConfigUpdate(w http.ResponseWriter, r *http.Request) {
	var req webhookConfigRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	cfg := req.config()
	if err := cfg.Validate(); err != nil {
		Error(w, r, err)
		return
	}
	// The merge with the stored secrets runs in the store's update, so a
	// concurrent rotation is not undone by this PUT (nor this PUT by it).
	s.updateWebhookConfig(w, r, func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
		next := *cfg // fn may run again: cfg stays as the request gave it
		if cfg.Verify != nil {
			v := *cfg.Verify
			next.Verify = &v
		}
		if err := s.sealWebhookSecrets(next.Verify, stored.Verify); err != nil {
			return nil, err
		}
		return &next, nil
	})
}

// updateWebhookConfig stores what change makes of the stored config of the
// workflow the request names (UpdateWebhookConfig: concurrent changes run
// one after the other, none lost) and answers the stored config's view
// with its ETag. A request with If-Match is refused (412, nothing written)
// unless the stored config's ETag matches: checked in the store's update,
// under its row lock, so no change can come between check and write.
// change must not alter what it captured: the store may call it again.
func (s *Server) updateWebhookConfig(w http.ResponseWriter, r *http.Request,
	change func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) {
	cond, err := parseIfMatch(r.Header)
	if err != nil {
		Error(w, r, err)
		return
	}
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	// refused is the error of the last call of the function below: the
	// store returns it as is, having written nothing.
	var refused error
	cfg, err := s.Triggers.UpdateWebhookConfig(r.Context(), wf.ID, func(stored *orcheo.WebhookConfig) (next *orcheo.WebhookConfig, err error) {
		defer func() { refused = err }()
		if cond.given { // before change, which may alter stored (rotate does)
			tag, err := webhookConfigETag(stored)
			if err != nil {
				return nil, err
			}
			if !cond.matches(tag) {
				return nil, errWebhookConfigChanged()
			}
		}
		return change(stored)
	})
	if refused != nil && errors.Is(err, refused) {
		Error(w, r, err) // change refused the request: nothing was written
		return
	}
	// Told on an error too: a write whose answer was lost may have
	// committed.
	s.changed(r, wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	answerWebhookConfig(w, r, cfg)
}

// errWebhookConfigChanged is the answer to a change whose If-Match names
// a config that is no longer the stored one.
func errWebhookConfigChanged() error {
	return orcheo.Errorf(orcheo.EPRECONDITION, "the webhook config changed since it was read (If-Match does not match its ETag); "+
		"nothing was changed: GET …/triggers/webhook/config again and reapply the change to what it answers")
}

// webhookConfigETag is the strong entity tag (RFC 9110, quoted) of a
// config as stored: a SHA-256 of its JSON, sealed secrets and the times
// they were set included, so every change, a rotation too, changes it.
// Sealed secrets are ciphertexts: the tag tells nothing of a secret. A
// plaintext one, which only a config that did not come from the store
// holds, is left out, so the tag cannot be used to guess it.
func webhookConfigETag(cfg *orcheo.WebhookConfig) (string, error) {
	c := *cfg
	if cfg.Verify != nil {
		v := *cfg.Verify
		v.Secret, v.PreviousSecret = "", ""
		c.Verify = &v
	}
	raw, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("webhook config ETag: %w", err)
	}
	sum := sha256.Sum256(raw)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`, nil
}

// ifMatch is a request's If-Match header (RFC 9110, section 13.1.1).
type ifMatch struct {
	given bool     // the header is present
	any   bool     // "*": any stored config matches
	tags  []string // the strong entity tags listed, quotes included
}

// matches tells whether a config whose ETag is tag meets the
// precondition. The comparison is strong: a weak tag matches nothing.
func (m ifMatch) matches(tag string) bool {
	if !m.given || m.any {
		return true
	}
	for _, t := range m.tags {
		if t == tag {
			return true
		}
	}
	return false
}

// parseIfMatch parses the If-Match header of h: "*" or a comma-separated
// list of entity tags ("…" or W/"…"). A header given empty lists no tag,
// so nothing matches it. Anything else is EINVALID.
func parseIfMatch(h http.Header) (ifMatch, error) {
	values, ok := h[http.CanonicalHeaderKey("If-Match")]
	if !ok {
		return ifMatch{}, nil
	}
	m := ifMatch{given: true}
	list := strings.TrimSpace(strings.Join(values, ","))
	if list == "*" {
		m.any = true
		return m, nil
	}
	invalid := orcheo.Errorf(orcheo.EINVALID, `If-Match: give "*" or the ETag (quotes included) of the config as read`)
	for rest := list; ; {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return m, nil
		}
		weak := strings.HasPrefix(rest, "W/")
		if weak {
			rest = rest[2:]
		}
		if !strings.HasPrefix(rest, `"`) {
			return ifMatch{}, invalid
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return ifMatch{}, invalid
		}
		tag := rest[:end+2]
		rest = strings.TrimLeft(rest[end+2:], " \t")
		if rest != "" && rest[0] != ',' {
			return ifMatch{}, invalid
		}
		if !weak {
			m.tags = append(m.tags, tag)
		}
	}
}

// sealWebhookSecrets replaces the plaintext secrets of v (validated) by
// sealed ones, keeping those of stored for what v does not give when the
// type is the same. A new secret without a new previous_secret drops the
// stored previous one: the pair is replaced (rotate-secret keeps the old
// secret as previous instead).
func (s *Server) sealWebhookSecrets(v, stored *orcheo.WebhookVerify) error {
	if v == nil || v.Type == orcheo.VerifyNone {
		return nil // Validate refused secrets with type none.
	}
	if stored != nil && stored.Type != v.Type {
		stored = nil // another scheme's secret is not this one's
	}
	now := time.Now().UTC().Truncate(time.Second)
	seal := func(plain string) (string, error) {
		if s.Secrets == nil {
			return "", errNoSecretsKey
		}
		sealed, err := s.Secrets.Seal(plain)
		if err != nil {
			return "", fmt.Errorf("seal webhook secret: %w", err)
		}
		return sealed, nil
	}
	givenSecret := v.Secret != ""
	if givenSecret {
		sealed, err := seal(v.Secret)
		if err != nil {
			return err
		}
		v.SealedSecret, v.SecretSetAt = sealed, &now
	} else if stored != nil {
		v.SealedSecret, v.SecretSetAt = stored.SealedSecret, stored.SecretSetAt
	}
	if v.PreviousSecret != "" {
		sealed, err := seal(v.PreviousSecret)
		if err != nil {
			return err
		}
		v.SealedPreviousSecret, v.PreviousSecretSetAt = sealed, &now
	} else if stored != nil && !givenSecret {
		v.SealedPreviousSecret, v.PreviousSecretSetAt = stored.SealedPreviousSecret, stored.PreviousSecretSetAt
	}
	v.Secret, v.PreviousSecret = "", ""
	if v.SealedSecret == "" {
		if v.SealedPreviousSecret != "" {
			return orcheo.Errorf(orcheo.EINVALID, "verify.previous_secret needs a verify.secret")
		}
		return orcheo.Errorf(orcheo.EINVALID, "verify.secret is required for type %s", v.Type)
	}
	return nil
}

// handleWebhookSecretRotate rotates the trigger's secret and answers the
// config's view. {"secret": S}: the current secret becomes the previous one
// (both verify, so deliveries signed with either pass) and S the current
// one; repeating the same S changes nothing, so a retried rotation keeps
// the old secret. {"drop_previous": true}: the previous secret is removed.
// Both: S replaces the current one and nothing else verifies. 400 when the
// trigger's verification takes no secret.
func (s *Server) handleWebhookSecretRotate(w http.ResponseWriter, r *http.Request) {
	var req rotateSecretRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	if req.Secret == "" && !req.DropPrevious {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "give secret (the new one), drop_previous: true, or both"))
		return
	}
	// Rotated in the store's update: two rotations at once chain (the
	// second keeps the first's secret as previous) instead of one losing
	// the other's.
	s.updateWebhookConfig(w, r, func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error) {
		if err := s.rotateWebhookSecret(stored, req); err != nil {
			return nil, err
		}
		return stored, nil
	})
}

// rotateWebhookSecret applies req to cfg's sealed secrets.
func (s *Server) rotateWebhookSecret(cfg *orcheo.WebhookConfig, req rotateSecretRequest) error {
	v := cfg.Verify
	if v == nil || v.Type == orcheo.VerifyNone {
		return orcheo.Errorf(orcheo.EINVALID, "the webhook's verification takes no secret: set verify (PUT …/triggers/webhook/config) first")
	}
	if req.Secret != "" {
		check := *v
		check.Secret, check.PreviousSecret = req.Secret, ""
		if err := check.Validate(); err != nil {
			return renameField(err)
		}
		if s.Secrets == nil {
			return errNoSecretsKey
		}
		same := false
		if v.SealedSecret != "" {
			current, err := s.Secrets.Open(v.SealedSecret)
			if err != nil {
				return fmt.Errorf("open the current webhook secret: %w", err)
			}
			same = current == req.Secret
		}
		if !same {
			sealed, err := s.Secrets.Seal(req.Secret)
			if err != nil {
				return fmt.Errorf("seal webhook secret: %w", err)
			}
			now := time.Now().UTC().Truncate(time.Second)
			v.SealedPreviousSecret, v.PreviousSecretSetAt = v.SealedSecret, v.SecretSetAt
			v.SealedSecret, v.SecretSetAt = sealed, &now
		}
	}
	if req.DropPrevious {
		v.SealedPreviousSecret, v.PreviousSecretSetAt = "", nil
	}
	return nil
}

// renameField turns a verify.secret validation error into one about the
// rotate body's secret field.
func renameField(err error) error {
	if orcheo.ErrorCode(err) != orcheo.EINVALID {
		return err
	}
	return orcheo.Errorf(orcheo.EINVALID, "secret: %s", orcheo.ErrorMessage(err))
}

// webhookSecrets returns the plaintext secrets that verify a request to
// cfg's webhook: the current one, then the previous one while it is set;
// none for a config without secrets. A config that did not come from the
// store (a test's) may hold them in plaintext. Errors are internal and
// never hold a secret.
func (s *Server) webhookSecrets(cfg *orcheo.WebhookConfig) ([]string, error) {
	v := cfg.Verify
	if v == nil {
		return nil, nil
	}
	var out []string
	for _, p := range []struct{ name, sealed, plain string }{
		{"secret", v.SealedSecret, v.Secret},
		{"previous secret", v.SealedPreviousSecret, v.PreviousSecret},
	} {
		switch {
		case p.sealed != "":
			if s.Secrets == nil {
				return nil, errors.New("open webhook " + p.name + ": it is sealed and the server has no SecretBox (ORCHEO_SECRETS_KEY)")
			}
			plain, err := s.Secrets.Open(p.sealed)
			if err != nil {
				return nil, fmt.Errorf("open webhook %s: %w", p.name, err)
			}
			out = append(out, plain)
		case p.plain != "":
			out = append(out, p.plain)
		}
	}
	return out, nil
}

// findWebhookConfig returns the workflow the management request names and
// its stored webhook config (secrets sealed).
func (s *Server) findWebhookConfig(r *http.Request) (*orcheo.Workflow, *orcheo.WebhookConfig, error) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.Triggers.FindWebhookConfig(r.Context(), wf.ID)
	if err != nil {
		return nil, nil, err
	}
	return wf, cfg, nil
}
