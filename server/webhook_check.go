package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// errWebhookUnverified is the one answer to a webhook request whose
// signature, secret or timestamp did not check out, or that replays an
// earlier one: the reason is logged and counted, never told the caller.
var errWebhookUnverified = orcheo.Errorf(orcheo.EUNAUTHORIZED, "webhook request could not be verified")

// webhookCheck is what checkWebhook let through.
type webhookCheck struct {
	// key is the run's idempotency key: the sender's delivery id when it
	// has one, else the Idempotency-Key header.
	key string
	// challenge, when set, is a Slack url_verification's challenge: it is
	// answered and no run is created.
	challenge string
	// replayKey and replayValue are what checkReplay remembered, for
	// forget.
	replayKey, replayValue string
}

// forget undoes the replay record of a request that was refused after its
// replay check (bad JSON, the store failed): the sender retries it with the
// same signature, and the retry must not be taken for a replay.
func (s *Server) forget(r *http.Request, c *webhookCheck) {
	if c.replayKey == "" || s.WebhookGuard == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), enqueueTimeout)
	defer cancel()
	if err := s.WebhookGuard.Forget(ctx, c.replayKey, c.replayValue); err != nil {
		loggerFrom(r).WithError(err).Warn("forget a refused webhook's replay record; its retry may be refused as a replay")
	}
}

// checkWebhook runs the checks between finding the trigger and storing the
// run, in the documented order: required headers and query values (400),
// the per-address rate limit before any HMAC (429), verification (401),
// the workflow's rate limit (429), then replays (401). A refused request
// stores nothing.
func (s *Server) checkWebhook(r *http.Request, wf *orcheo.Workflow, cfg *orcheo.WebhookConfig, raw []byte) (*webhookCheck, error) {
	if err := requiredValues(r, cfg); err != nil {
		s.webhookRefused(r, wf, "required", err.Error())
		return nil, err
	}
	rl := cfg.RateLimit
	if rl != nil && rl.PerIP > 0 {
		if err := s.rateLimit(r, wf, "ip:"+wf.ID+":"+orcheo.ClientKey(r.RemoteAddr), rl.PerIP, rl.Window(), "rate_limit_ip"); err != nil {
			return nil, err
		}
	}
	proof, err := s.verifyWebhook(r, wf, cfg, raw)
	if err != nil {
		return nil, err
	}
	if proof.SlackChallenge != "" {
		return &webhookCheck{challenge: proof.SlackChallenge}, nil
	}
	if rl != nil {
		if err := s.rateLimit(r, wf, "wf:"+wf.ID, rl.Limit, rl.Window(), "rate_limit"); err != nil {
			return nil, err
		}
	}
	check := &webhookCheck{}
	if proof.ReplayKey != "" {
		if check.replayKey, check.replayValue, err = s.checkReplay(r, wf, cfg, proof); err != nil {
			return nil, err
		}
	}
	check.key = r.Header.Get(idempotencyHeader)
	if proof.DeliveryID != "" {
		check.key = proof.DeliveryID
		if len(check.key) > 255 {
			sum := sha256.Sum256([]byte(check.key))
			check.key = "sha256:" + hex.EncodeToString(sum[:])
		}
	}
	return check, nil
}

var errNoGuard = orcheo.Errorf(orcheo.EUNAVAILABLE, "webhook rate limits and replay checks are not configured on this server")

// unsignedReplayWindow is how long the signature of a scheme without a
// signed timestamp (GitHub, hmac without timestamp_header) is remembered.
// Such a request stays valid for ever; refusing its replay for a day
// covers a sender's redeliveries, which come with the same delivery id.
const unsignedReplayWindow = 24 * time.Hour

// checkReplay refuses signed content already seen under another delivery
// id, or seen at all when the request has none. The value stored under the
// signature is the delivery id (a redelivery of the same delivery passes
// here and finds its first run by the id) or a fresh nonce (which no
// later request can match). It returns the key and value it stored.
func (s *Server) checkReplay(r *http.Request, wf *orcheo.Workflow, cfg *orcheo.WebhookConfig, proof orcheo.WebhookProof) (key, value string, err error) {
	if s.WebhookGuard == nil {
		return "", "", errNoGuard
	}
	// A signature is valid for the tolerance either side of its
	// timestamp, so it is remembered for twice that.
	ttl := unsignedReplayWindow
	if proof.Timestamped {
		ttl = 2 * cfg.Verify.ToleranceOrDefault()
	}
	key, value = "replay:"+wf.ID+":"+proof.ReplayKey, proof.DeliveryID
	if value == "" {
		value = "nonce:" + orcheo.NewID()
	}
	stored, err := s.WebhookGuard.Remember(r.Context(), key, value, ttl)
	if err != nil {
		// Fail closed: letting a replay through is worse than asking the
		// sender to retry.
		loggerFrom(r).WithError(err).WithField("workflow", wf.Handle).Warn("webhook replay check unavailable")
		return "", "", orcheo.Errorf(orcheo.EUNAVAILABLE, "webhook replay check unavailable; try again shortly")
	}
	if stored != value {
		s.webhookRefused(r, wf, "replay", "signed content already seen")
		return "", "", errWebhookUnverified
	}
	return key, value, nil
}

// verifyWebhook checks the request against the trigger's verification.
// Type none (or no verify) passes.
func (s *Server) verifyWebhook(r *http.Request, wf *orcheo.Workflow, cfg *orcheo.WebhookConfig, raw []byte) (orcheo.WebhookProof, error) {
	if cfg.Unauthenticated() {
		return orcheo.WebhookProof{}, nil
	}
	if s.Verifier == nil {
		return orcheo.WebhookProof{}, orcheo.Errorf(orcheo.EUNAVAILABLE, "webhook verification is not configured on this server")
	}
	secrets, err := s.webhookSecrets(cfg)
	if err != nil {
		return orcheo.WebhookProof{}, err
	}
	proof, err := s.Verifier.VerifyWebhook(cfg.Verify, secrets, orcheo.WebhookRequest{Header: r.Header, Query: r.URL.Query(), Body: raw}, time.Now())
	if err != nil {
		s.webhookRefused(r, wf, "verify", err.Error())
		return orcheo.WebhookProof{}, errWebhookUnverified
	}
	return proof, nil
}

// rateLimitError is a 429 whose Retry-After the handler sets.
type rateLimitError struct {
	retryAfter time.Duration
}

func (e *rateLimitError) Error() string { return "webhook rate limit exceeded" }

// rateLimit counts the request against key's limit.
func (s *Server) rateLimit(r *http.Request, wf *orcheo.Workflow, key string, limit int, window time.Duration, reason string) error {
	if s.WebhookGuard == nil {
		return errNoGuard
	}
	ok, retryAfter, err := s.WebhookGuard.Allow(r.Context(), key, limit, window)
	if err != nil {
		// Fail open: a Redis outage must not stop deliveries the store
		// can still take; the limit resumes with Redis.
		loggerFrom(r).WithError(err).WithField("workflow", wf.Handle).Warn("webhook rate limit unavailable; letting the request through")
		return nil
	}
	if !ok {
		s.webhookRefused(r, wf, reason, "over "+strconv.Itoa(limit)+" per "+window.String())
		return &rateLimitError{retryAfter: retryAfter}
	}
	return nil
}

// answerRateLimited writes a 429 with Retry-After in whole seconds.
func answerRateLimited(w http.ResponseWriter, r *http.Request, e *rateLimitError) {
	secs := int((e.retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	Error(w, r, orcheo.Errorf(orcheo.ERATELIMITED, "too many requests to this webhook; retry in %d s", secs))
}

// requiredValues returns EINVALID naming the first required header or
// query value that is missing or different. Values are compared in
// constant time: they often act as a weak shared secret.
func requiredValues(r *http.Request, cfg *orcheo.WebhookConfig) error {
	for name, want := range cfg.RequiredHeaders {
		if !sameValue(r.Header.Get(name), want) {
			return orcheo.Errorf(orcheo.EINVALID, "required header %s is missing or has another value", name)
		}
	}
	query := r.URL.Query()
	for name, want := range cfg.RequiredQuery {
		if !sameValue(query.Get(name), want) {
			return orcheo.Errorf(orcheo.EINVALID, "required query parameter %s is missing or has another value", name)
		}
	}
	return nil
}

func sameValue(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// webhookRefused logs why a webhook request of wf was refused, and counts
// it. detail is safe to log: it never holds a secret.
func (s *Server) webhookRefused(r *http.Request, wf *orcheo.Workflow, reason, detail string) {
	loggerFrom(r).WithFields(logrus.Fields{"workflow": wf.Handle, "reason": reason, "detail": detail}).Warn("webhook refused")
	s.countWebhookRefusal(reason)
}

// countWebhookRefusal tells OnWebhookRefused of a refused webhook request.
// reason is one of a fixed set (metrics.WebhookRefusalReasons), never
// anything the caller sent, so the metric's labels stay bounded.
func (s *Server) countWebhookRefusal(reason string) {
	if s.OnWebhookRefused != nil {
		s.OnWebhookRefused(reason)
	}
}
