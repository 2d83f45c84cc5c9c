package server

import (
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

func (s *Server) registerWebhookRoutes(r *mux.Router) {
	// No Methods() here: the trigger's config decides which methods it
	// accepts, and the handler answers 405 with its own Allow header. The
	// authentication middleware lets this exact path through without the
	// bearer token (see isWebhookPath).
	r.HandleFunc("/api/workflows/{ref}/triggers/webhook", s.handleWebhook)
}

// webhookInput is the input of a run created by a webhook.
type webhookInput struct {
	Method string `json:"method"`
	// Body is the parsed JSON body when the request declared a JSON content
	// type, the raw body as a string otherwise, and null when empty.
	Body     json.RawMessage        `json:"body"`
	Headers  map[string]string      `json:"headers"`
	Query    map[string]interface{} `json:"query"`
	SourceIP string                 `json:"source_ip"`
}

// webhookAnswer is the body of a webhook's 2xx answer, new or repeated
// delivery alike: what the caller needs to refer to the run, and nothing of
// its input, output, error or stored headers. The webhook route is public,
// and an Idempotency-Key is no credential; the full run stays behind the
// token (GET /api/runs/{id}).
type webhookAnswer struct {
	ID        string           `json:"id"`
	Status    orcheo.RunStatus `json:"status"`
	Workflow  string           `json:"workflow"`
	CreatedAt time.Time        `json:"created_at"`
}

// errNoWebhook is the one answer for every webhook request that finds no
// trigger to fire: unknown workflow, trigger disabled, workflow archived.
// The route is public, so these must not tell a stranger which workflows
// exist; the management API (with the token) keeps the precise answers.
var errNoWebhook = orcheo.Errorf(orcheo.ENOTFOUND, "no webhook trigger here accepts this request (unknown workflow, trigger disabled or workflow archived)")

// handleWebhook creates a run from a third-party call. The checks, in
// order (docs/security.md): unknown workflow, trigger disabled or workflow
// archived 404 (one answer); method not accepted 405 with Allow; body over
// MaxBodyBytes 413; then checkWebhook: required header or query value 400,
// per-address rate limit 429, signature, secret or timestamp 401,
// workflow rate limit 429, replay 401; malformed JSON under a JSON content
// type 400. Then 202 with a webhookAnswer, or 200 with the first run's for
// a repeated delivery id or Idempotency-Key. A verified Slack
// url_verification is answered with its challenge and creates no run.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	wf, cfg, err := s.findWebhook(r)
	if err != nil {
		if orcheo.ErrorCode(err) == orcheo.EUNAVAILABLE {
			s.countWebhookRefusal("unavailable")
		}
		Error(w, r, err)
		return
	}
	if !cfg.AllowsMethod(r.Method) {
		s.countWebhookRefusal("method")
		allowed := cfg.Methods
		if len(allowed) == 0 {
			allowed = []string{http.MethodPost}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		Error(w, r, orcheo.Errorf(orcheo.EMETHOD, "this webhook does not accept %s", r.Method))
		return
	}
	raw, err := readBody(r)
	if err != nil {
		if orcheo.ErrorCode(err) == orcheo.ETOOLARGE {
			s.countWebhookRefusal("too_large")
		} else {
			s.countWebhookRefusal("bad_request")
		}
		Error(w, r, err)
		return
	}
	check, err := s.checkWebhook(r, wf, cfg, raw)
	if rl := (*rateLimitError)(nil); errors.As(err, &rl) {
		answerRateLimited(w, r, rl)
		return
	} else if err != nil {
		if orcheo.ErrorCode(err) == orcheo.EUNAVAILABLE { // the other refusals are counted where they are made
			s.countWebhookRefusal("unavailable")
		}
		Error(w, r, err)
		return
	}
	if check.challenge != "" {
		encodeJSON(w, r, http.StatusOK, map[string]string{"challenge": check.challenge})
		return
	}
	in, err := newWebhookInput(r, raw, cfg)
	if err != nil {
		s.forget(r, check)
		s.countWebhookRefusal("bad_request")
		Error(w, r, err)
		return
	}
	input, err := json.Marshal(in)
	if err != nil {
		s.forget(r, check)
		Error(w, r, err)
		return
	}
	run, created, err := s.startRun(r, wf, orcheo.TriggerWebhook, input, check.key)
	if err != nil {
		s.forget(r, check)
		if orcheo.ErrorCode(err) == orcheo.EUNAVAILABLE {
			s.countWebhookRefusal("unavailable")
		}
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, runStatus(created), &webhookAnswer{ID: run.ID, Status: run.Status, Workflow: wf.Handle, CreatedAt: run.CreatedAt})
}

// findWebhook returns the workflow and trigger config a webhook request
// fires, or errNoWebhook when there is none to fire. The precise reason is
// logged at debug level for the operator. A ref that cannot be an id or a
// handle is not looked up at all.
func (s *Server) findWebhook(r *http.Request) (*orcheo.Workflow, *orcheo.WebhookConfig, error) {
	// counted is the metric's reason: the caller sees one answer for all.
	refuse := func(counted, reason string) (*orcheo.Workflow, *orcheo.WebhookConfig, error) {
		loggerFrom(r).WithFields(logrus.Fields{"reason": reason, "path": r.URL.Path, "method": r.Method}).Debug("webhook refused")
		s.countWebhookRefusal(counted)
		return nil, nil, errNoWebhook
	}
	ref := pathVar(r, "ref")
	if !validRef(ref) {
		return refuse("not_found", "not an id or handle")
	}
	wf, cfg, err := s.lookupWebhook(r.Context(), ref) // cache.go
	if orcheo.ErrorCode(err) == orcheo.ENOTFOUND {
		return refuse("not_found", "unknown workflow")
	} else if err != nil {
		return nil, nil, err
	}
	switch {
	case !cfg.Enabled:
		return refuse("disabled", "trigger disabled")
	case wf.Archived():
		return refuse("archived", "workflow archived")
	}
	return wf, cfg, nil
}

// validRef reports whether ref can name a workflow: an id or a valid
// handle.
func validRef(ref string) bool {
	return orcheo.IsID(ref) || (&orcheo.Workflow{Handle: ref}).Validate() == nil
}

// newWebhookInput builds the run input from the request and its raw body.
func newWebhookInput(r *http.Request, raw []byte, cfg *orcheo.WebhookConfig) (*webhookInput, error) {
	in := &webhookInput{
		Method:   r.Method,
		Body:     json.RawMessage("null"),
		Headers:  map[string]string{},
		Query:    map[string]interface{}{},
		SourceIP: r.RemoteAddr,
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		in.SourceIP = host
	}
	if len(raw) > 0 {
		if isJSONContentType(r.Header.Get("Content-Type")) {
			if !json.Valid(raw) {
				var v interface{}
				return nil, jsonError(json.Unmarshal(raw, &v))
			}
			in.Body = raw
		} else {
			// A JSON string; invalid UTF-8 becomes U+FFFD.
			in.Body, _ = json.Marshal(string(raw))
		}
	}
	for name, values := range r.Header {
		if !keepName(name, cfg) {
			continue
		}
		in.Headers[strings.ToLower(name)] = strings.Join(values, ", ")
	}
	for name, values := range r.URL.Query() {
		if !keepName(name, cfg) {
			continue
		}
		if len(values) == 1 {
			in.Query[name] = values[0]
		} else {
			in.Query[name] = values
		}
	}
	return in, nil
}

// isJSONContentType reports whether a Content-Type is application/json or
// a +json type such as application/vnd.github+json.
func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// neverStored are header names dropped from webhook input whatever the
// trigger's Keep says: they carry the caller's own credentials (the bearer
// token, a proxy's, a browser's session).
var neverStored = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"cookie":              true,
	"set-cookie":          true,
}

// credentialWords mark header and query parameter names that carry
// credentials wherever they appear in the name (X-Api-Key, X-Auth-Token,
// X-Hub-Signature-256, ?access_token=…). Signatures go too: a verifier
// checks them over the raw body before anything is stored.
var credentialWords = []string{
	"auth", "token", "secret", "key", "password", "passwd", "passphrase", "credential", "signature",
	"session", "cookie", "jwt", "bearer", "csrf", "xsrf", "hmac",
}

// credentialNames are names that carry credentials when they are the
// whole name (?code= of OAuth, ?sig=); as parts of longer names
// (country_code) they are common and harmless.
var credentialNames = map[string]bool{"code": true, "sig": true, "pwd": true, "pass": true, "otp": true}

// normalName is the form names are compared in: lower case, "_" read as
// "-".
func normalName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// isCredentialName reports whether a header or query parameter name (in
// normalName form) looks like it carries a credential.
func isCredentialName(name string) bool {
	if neverStored[name] || credentialNames[name] {
		return true
	}
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// keepName reports whether a header or query parameter goes into the run
// input: any name that does not look like a credential, and one that does
// if the trigger's Keep lists it, except the neverStored headers.
func keepName(name string, cfg *orcheo.WebhookConfig) bool {
	name = normalName(name)
	if neverStored[name] {
		return false
	}
	if !isCredentialName(name) {
		return true
	}
	for _, k := range cfg.Keep {
		if normalName(k) == name {
			return true
		}
	}
	return false
}
