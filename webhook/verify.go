// Package webhook verifies that a webhook request comes from its sender:
// the signature schemes of GitHub, Stripe, Slack and Standard Webhooks, a
// generic HMAC and a shared secret. It is pure computation over what the
// server read (headers, query, raw body) and the trigger's decrypted
// secrets; remembering replays and delivery ids is the server's business.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// Bounds on what a request may make verification do. A signature header
// longer than MaxHeaderBytes, or listing more than MaxSignatures
// signatures, is refused before any HMAC; each secret costs one HMAC over
// the body however many signatures the header lists.
const (
	MaxHeaderBytes = 4096
	MaxSignatures  = 8
	// MaxDeliveryIDBytes bounds a delivery id; a longer one in a header is
	// refused, and one in a body is not used (ReplayKey instead).
	MaxDeliveryIDBytes = 255
	// maxTimestampBytes is the length of a Unix time in seconds with room
	// to spare; anything longer is malformed.
	maxTimestampBytes = 18
)

// Request is what verification sees of a webhook request.
type Request struct {
	Header http.Header
	Query  url.Values
	// Body is the raw body as received: signatures are over these bytes,
	// so it is never decoded and re-encoded first.
	Body []byte
}

// Result is what a verified request proved.
type Result struct {
	// DeliveryID is the sender's id for the delivery when it has one:
	// X-GitHub-Delivery (github), webhook-id (standard), the event's "id"
	// (stripe) or "event_id" (slack) from a JSON body; "" otherwise. A
	// redelivery carries the same id, so it suits an idempotency key.
	DeliveryID string
	// ReplayKey, for a signed request without a DeliveryID, identifies
	// what was signed (hex SHA-256), for the server to remember for the
	// tolerance window and refuse a second time. "" when DeliveryID is
	// set and for types none and secret.
	ReplayKey string
	// Timestamp is the signed timestamp when the scheme has one.
	Timestamp time.Time
	// SlackChallenge is the challenge of a verified Slack url_verification
	// body, to be answered instead of starting a run.
	SlackChallenge string
}

// Error is why a request did not verify. Reason is safe to log: it never
// holds a secret, an expected signature or a header's value. The caller
// should answer every Error alike, so a sender learns nothing from it.
type Error struct {
	Reason string
}

// Error returns the reason.
func (e *Error) Error() string { return e.Reason }

func fail(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

var errMismatch = &Error{Reason: "signature mismatch"}

// Verify checks req against v with secrets (plaintext, the current one
// first, then the previous one while a rotation lasts); a signature made
// with any of them is enough. now is the time timestamps are checked
// against. A nil v or type none returns Result{} and no error. Any
// failure is an *Error. Verify does not modify v and is safe for
// concurrent use.
func Verify(v *orcheo.WebhookVerify, secrets []string, req Request, now time.Time) (Result, error) {
	if v == nil {
		return Result{}, nil
	}
	// Validate lower-cases Type; an unvalidated v means the same, and an
	// empty or unknown type fails closed.
	typ := strings.ToLower(v.Type)
	if typ == orcheo.VerifyNone {
		return Result{}, nil
	}
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		// An empty key is one anybody can sign with.
		if s != "" {
			keys = append(keys, []byte(s))
		}
	}
	if len(keys) == 0 {
		return Result{}, fail("no secret configured")
	}
	switch typ {
	case orcheo.VerifyGitHub:
		return verifyGitHub(keys, req)
	case orcheo.VerifyStripe:
		return verifyStripe(v, keys, req, now)
	case orcheo.VerifySlack:
		return verifySlack(v, keys, req, now)
	case orcheo.VerifyStandard:
		return verifyStandard(v, keys, req, now)
	case orcheo.VerifyHMAC:
		return verifyHMAC(v, keys, req, now)
	case orcheo.VerifySecret:
		return verifySecret(v, keys, req)
	}
	return Result{}, fail("unknown verification type")
}

// Verifier is Verify as the orcheo.WebhookVerifier the server depends on.
type Verifier struct{}

var _ orcheo.WebhookVerifier = Verifier{}

// VerifyWebhook calls Verify.
func (Verifier) VerifyWebhook(v *orcheo.WebhookVerify, secrets []string, req orcheo.WebhookRequest, now time.Time) (orcheo.WebhookProof, error) {
	res, err := Verify(v, secrets, Request(req), now)
	if err != nil {
		return orcheo.WebhookProof{}, err
	}
	return orcheo.WebhookProof{DeliveryID: res.DeliveryID, ReplayKey: res.ReplayKey, Timestamped: !res.Timestamp.IsZero(),
		SlackChallenge: res.SlackChallenge}, nil
}

// header returns the one value of the header name (shown as display in
// reasons). Missing, empty, repeated or longer than max is an error: a
// second copy of a signature header would leave open which one counts.
func header(h http.Header, name, display string, max int) (string, error) {
	vals := h.Values(name)
	switch {
	case len(vals) == 0 || (len(vals) == 1 && vals[0] == ""):
		return "", fail("missing %s header", display)
	case len(vals) > 1:
		return "", fail("more than one %s header", display)
	case len(vals[0]) > max:
		return "", fail("%s header longer than %d bytes", display, max)
	}
	return vals[0], nil
}

// timestamp parses a Unix time in seconds (digits only: no sign, space or
// fraction) and checks it is within v's tolerance of now, either way: a
// signature from the future would outlive the replay window.
func timestamp(v *orcheo.WebhookVerify, s, display string, now time.Time) (time.Time, error) {
	if s == "" || len(s) > maxTimestampBytes {
		return time.Time{}, fail("malformed %s timestamp", display)
	}
	var secs int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return time.Time{}, fail("malformed %s timestamp", display)
		}
		secs = secs*10 + int64(c-'0')
	}
	t := time.Unix(secs, 0)
	tol := v.ToleranceOrDefault()
	// Sub saturates, so a far-off t cannot overflow into the window.
	if d := now.Sub(t); d > tol || d < -tol {
		return time.Time{}, fail("timestamp outside the %s tolerance", tol)
	}
	return t, nil
}

// matchAny reports whether some candidate equals the HMAC of the
// concatenated parts under some key. Each key costs one HMAC, however
// many candidates there are; the parts are not copied together, since
// the body can be a megabyte.
func matchAny(newHash func() hash.Hash, keys [][]byte, candidates [][]byte, parts ...[]byte) bool {
	for _, k := range keys {
		m := hmac.New(newHash, k)
		for _, p := range parts {
			m.Write(p)
		}
		sum := m.Sum(nil)
		for _, c := range candidates {
			if hmac.Equal(sum, c) {
				return true
			}
		}
	}
	return false
}

// replayKey is the hex SHA-256 of the scheme and what was signed (each
// part length-prefixed, so parts cannot run into each other). It depends
// on the signed content rather than on a signature, so the same request
// re-sent with the signature of another secret, or with its header's
// signatures reordered, is still recognised.
func replayKey(scheme string, parts ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range append([][]byte{[]byte(scheme)}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validID reports whether s can serve as a delivery id: printable ASCII
// without spaces, at most MaxDeliveryIDBytes.
func validID(s string) bool { return printable(s, MaxDeliveryIDBytes) }

// printable reports whether s is 1 to max bytes of ASCII from '!' to '~'.
func printable(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
