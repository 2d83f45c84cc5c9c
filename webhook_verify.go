package orcheo

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Webhook verification types (WebhookVerify.Type).
const (
	// VerifyGitHub: X-Hub-Signature-256: sha256=<hex> = HMAC-SHA256(secret, raw body).
	VerifyGitHub = "github"
	// VerifyStripe: Stripe-Signature: t=<ts>,v1=<hex>[,v1=…] over "<ts>.<raw body>".
	VerifyStripe = "stripe"
	// VerifySlack: X-Slack-Signature: v0=<hex> over "v0:<X-Slack-Request-Timestamp>:<raw body>".
	VerifySlack = "slack"
	// VerifyStandard: Standard Webhooks (Svix): webhook-id, webhook-timestamp and
	// webhook-signature: v1,<base64> … over "<id>.<ts>.<raw body>", secret whsec_<base64>.
	VerifyStandard = "standard"
	// VerifyHMAC: a generic HMAC described by Header, Algorithm, Encoding, Prefix,
	// TimestampHeader, Signed and Separator.
	VerifyHMAC = "hmac"
	// VerifySecret: a shared secret sent as is in Header.
	VerifySecret = "secret"
	// VerifyNone: no verification; anyone who knows the URL can start runs.
	VerifyNone = "none"
)

// VerifyTypes lists the verification types.
var VerifyTypes = []string{VerifyGitHub, VerifyStripe, VerifySlack, VerifyStandard, VerifyHMAC, VerifySecret, VerifyNone}

// Bounds and defaults of webhook verification.
const (
	// DefaultVerifyTolerance is how far a signed timestamp may be from now.
	DefaultVerifyTolerance = 5 * time.Minute
	// MaxVerifyTolerance bounds Tolerance: a replay is refused only while
	// its signature is remembered, which is for the tolerance window.
	MaxVerifyTolerance = time.Hour
	// MaxSecretBytes bounds a webhook secret.
	MaxSecretBytes = 1024
	// MaxRequiredValues bounds RequiredHeaders and RequiredQuery each.
	MaxRequiredValues = 50
)

// WebhookVerify says how a webhook request proves it comes from the
// sender. Secrets are write-only: Secret and PreviousSecret are accepted
// when the config is set, sealed (encrypted at rest, see SecretBox) into
// SealedSecret and SealedPreviousSecret by the server, and never returned;
// readers see only SecretSet and SecretSetAt.
type WebhookVerify struct {
	Type string `json:"type"`

	// Secret verifies requests; PreviousSecret, while set, verifies them
	// too, so a secret is rotated without dropping deliveries. Plaintext,
	// only on their way in.
	Secret         string `json:"secret,omitempty"`
	PreviousSecret string `json:"previous_secret,omitempty"`
	// SealedSecret and SealedPreviousSecret are the secrets as stored
	// (SecretBox.Seal). They never leave the server.
	SealedSecret         string `json:"sealed_secret,omitempty"`
	SealedPreviousSecret string `json:"sealed_previous_secret,omitempty"`
	// SecretSetAt and PreviousSecretSetAt are when each was set.
	SecretSetAt         *time.Time `json:"secret_set_at,omitempty"`
	PreviousSecretSetAt *time.Time `json:"previous_secret_set_at,omitempty"`

	// Tolerance is how far a signed timestamp may be from now, as a Go
	// duration ("5m", the default); stripe, slack, standard and hmac with
	// a TimestampHeader.
	Tolerance string `json:"tolerance,omitempty"`

	// Header is the signature header (hmac) or the header carrying the
	// shared secret (secret).
	Header string `json:"header,omitempty"`
	// Algorithm is sha1, sha256 (default) or sha512 (hmac).
	Algorithm string `json:"algorithm,omitempty"`
	// Encoding is hex (default) or base64 (hmac).
	Encoding string `json:"encoding,omitempty"`
	// Prefix precedes the signature in Header, e.g. "sha256=" (hmac).
	Prefix string `json:"prefix,omitempty"`
	// TimestampHeader carries the signed timestamp, in Unix seconds
	// (hmac); with it the timestamp is checked against Tolerance.
	TimestampHeader string `json:"timestamp_header,omitempty"`
	// Signed is what is signed: "body" (default) or "timestamp_body", the
	// timestamp, Separator and the raw body (hmac).
	Signed string `json:"signed,omitempty"`
	// Separator joins timestamp and body when Signed is timestamp_body;
	// default ".".
	Separator string `json:"separator,omitempty"`
}

// WebhookRateLimit bounds how many requests a webhook accepts per window,
// counted in Redis across every API process.
type WebhookRateLimit struct {
	// Limit requests per Per ("1m"), for the workflow's webhook.
	Limit int    `json:"limit"`
	Per   string `json:"per"`
	// PerIP, if set, bounds the requests of one source address in the
	// same window as well.
	PerIP int `json:"per_ip,omitempty"`
}

// HasSecret reports whether a secret is set or sealed.
func (v *WebhookVerify) HasSecret() bool {
	return v != nil && (v.Secret != "" || v.SealedSecret != "")
}

// ToleranceOrDefault returns Tolerance as a duration, or the default.
func (v *WebhookVerify) ToleranceOrDefault() time.Duration {
	if v == nil || v.Tolerance == "" {
		return DefaultVerifyTolerance
	}
	d, err := time.ParseDuration(v.Tolerance)
	if err != nil || d <= 0 {
		return DefaultVerifyTolerance
	}
	return d
}

// Validate normalises v (type, algorithm, encoding and header names in
// lower case) and returns EINVALID for an unknown type or option, or an
// option the type needs and lacks. Whether a secret is present is for the
// caller to check, since a stored config holds it sealed.
func (v *WebhookVerify) Validate() error {
	v.Type = strings.ToLower(strings.TrimSpace(v.Type))
	known := false
	for _, t := range VerifyTypes {
		known = known || v.Type == t
	}
	if !known {
		return Errorf(EINVALID, "verify.type: %q is not one of %s", v.Type, strings.Join(VerifyTypes, ", "))
	}
	for _, s := range []struct{ name, value string }{{"secret", v.Secret}, {"previous_secret", v.PreviousSecret}} {
		if len(s.value) > MaxSecretBytes {
			return Errorf(EINVALID, "verify.%s: at most %d bytes", s.name, MaxSecretBytes)
		}
		if err := CheckText("verify."+s.name, s.value); err != nil {
			return err
		}
	}
	if v.Type == VerifyNone && (v.Secret != "" || v.PreviousSecret != "") {
		return Errorf(EINVALID, "verify: type none takes no secret")
	}
	if v.Type == VerifyStandard {
		for _, s := range []struct{ name, value string }{{"secret", v.Secret}, {"previous_secret", v.PreviousSecret}} {
			if s.value != "" && !strings.HasPrefix(s.value, "whsec_") {
				return Errorf(EINVALID, "verify.%s: a Standard Webhooks secret is whsec_ followed by base64", s.name)
			}
		}
	}
	if v.Tolerance != "" {
		d, err := time.ParseDuration(v.Tolerance)
		if err != nil || d < time.Second || d > MaxVerifyTolerance {
			return Errorf(EINVALID, "verify.tolerance: %q must be a duration from 1s to %s", v.Tolerance, MaxVerifyTolerance)
		}
	}
	v.Header = strings.ToLower(strings.TrimSpace(v.Header))
	v.TimestampHeader = strings.ToLower(strings.TrimSpace(v.TimestampHeader))
	v.Algorithm = strings.ToLower(v.Algorithm)
	v.Encoding = strings.ToLower(v.Encoding)
	v.Signed = strings.ToLower(v.Signed)
	generic := v.Header != "" || v.Algorithm != "" || v.Encoding != "" || v.Prefix != "" || v.TimestampHeader != "" || v.Signed != "" || v.Separator != ""
	switch v.Type {
	case VerifyHMAC:
		if v.Header == "" {
			return Errorf(EINVALID, "verify.header: the hmac type needs the signature's header")
		}
		switch v.Algorithm {
		case "":
			v.Algorithm = "sha256"
		case "sha1", "sha256", "sha512":
		default:
			return Errorf(EINVALID, "verify.algorithm: %q is not one of sha1, sha256, sha512", v.Algorithm)
		}
		switch v.Encoding {
		case "":
			v.Encoding = "hex"
		case "hex", "base64":
		default:
			return Errorf(EINVALID, "verify.encoding: %q is not one of hex, base64", v.Encoding)
		}
		switch v.Signed {
		case "":
			v.Signed = "body"
		case "body":
		case "timestamp_body":
			if v.TimestampHeader == "" {
				return Errorf(EINVALID, "verify.signed: timestamp_body needs verify.timestamp_header")
			}
			if v.Separator == "" {
				v.Separator = "."
			}
		default:
			return Errorf(EINVALID, "verify.signed: %q is not one of body, timestamp_body", v.Signed)
		}
	case VerifySecret:
		if v.Header == "" {
			return Errorf(EINVALID, "verify.header: the secret type needs the header that carries the secret")
		}
		if v.Algorithm != "" || v.Encoding != "" || v.Prefix != "" || v.TimestampHeader != "" || v.Signed != "" || v.Separator != "" {
			return Errorf(EINVALID, "verify: the secret type takes only header and secret")
		}
	default:
		if generic {
			return Errorf(EINVALID, "verify: header, algorithm, encoding, prefix, timestamp_header, signed and separator are options of the hmac type")
		}
	}
	return nil
}

// Validate returns EINVALID unless the limit and window are sensible.
func (l *WebhookRateLimit) Validate() error {
	d, err := time.ParseDuration(l.Per)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return Errorf(EINVALID, "rate_limit.per: %q must be a duration from 1s to 24h", l.Per)
	}
	if l.Limit < 1 || l.Limit > 1_000_000 {
		return Errorf(EINVALID, "rate_limit.limit: must be from 1 to 1000000")
	}
	if l.PerIP < 0 || l.PerIP > l.Limit {
		return Errorf(EINVALID, "rate_limit.per_ip: must be from 0 to the limit")
	}
	return nil
}

// Window returns Per as a duration (after Validate).
func (l *WebhookRateLimit) Window() time.Duration {
	d, _ := time.ParseDuration(l.Per)
	return d
}

// SecretBox seals secrets for storage and opens them again (AES-GCM under
// ORCHEO_SECRETS_KEY in production).
type SecretBox interface {
	// Seal encrypts plaintext into a printable string.
	Seal(plaintext string) (string, error)
	// Open decrypts what Seal made. Returns an error (never the plaintext
	// or the key in it) for anything else.
	Open(sealed string) (string, error)
}

// WebhookGuard keeps what every API process must share about webhook
// requests, in Redis: rate-limit windows and the signatures already seen.
type WebhookGuard interface {
	// Allow counts one request against key's limit per window and reports
	// whether it is within it; when not, retryAfter says when the next
	// one will be.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
	// Remember stores value under key for ttl unless key holds a value
	// already, and returns the value key holds afterwards (value itself
	// when it was free): the server stores a request's delivery id, or a
	// fresh nonce, under its signature, so a different answer is a replay.
	Remember(ctx context.Context, key, value string, ttl time.Duration) (stored string, err error)
	// Forget removes key if it still holds value: a request refused after
	// its replay check (the store failed) is remembered no longer, so the
	// sender's retry of it is not taken for a replay.
	Forget(ctx context.Context, key, value string) error
}

// WebhookRequest is what verification sees of a webhook request: its
// headers, query and raw body (never re-encoded: signatures are over the
// bytes as sent).
type WebhookRequest struct {
	Header http.Header
	Query  url.Values
	Body   []byte
}

// WebhookProof is what a verified request proved.
type WebhookProof struct {
	// DeliveryID is the sender's id of the delivery (X-GitHub-Delivery,
	// webhook-id, a Stripe event's or a Slack event's id): the run's
	// idempotency key, so a redelivery finds the first run.
	DeliveryID string
	// ReplayKey identifies what a signed request signed (the timestamp and
	// body); the server remembers it with the delivery id and refuses the
	// same signed content again under another delivery id, or again at all
	// when there is none. It is set whenever the delivery id is not itself
	// signed (GitHub signs only the body).
	ReplayKey string
	// Timestamped reports a signed timestamp, checked against the
	// tolerance: a replay outside it fails verification anyway, so the
	// ReplayKey need be remembered only that long.
	Timestamped bool
	// SlackChallenge is the challenge of a verified Slack url_verification
	// request, answered without creating a run.
	SlackChallenge string
}

// WebhookVerifier checks a webhook request against its trigger's
// verification with the trigger's secrets (plaintext, current first).
type WebhookVerifier interface {
	// VerifyWebhook returns an error whose message is a reason safe to log
	// (never a secret or an expected signature) when the request does not
	// prove its sender; the caller answers every such error alike.
	VerifyWebhook(v *WebhookVerify, secrets []string, req WebhookRequest, now time.Time) (WebhookProof, error)
}
