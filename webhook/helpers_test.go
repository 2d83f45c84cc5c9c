package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// now is the clock of every test.
var now = time.Unix(1_700_000_000, 0)

// rawBody is JSON whose bytes change under any decode and re-encode: key
// order, odd spacing, a newline, an escaped slash and a float form.
var rawBody = []byte("{\"b\":1,  \"a\":[2, 3],\n\t\"id\" : \"evt_1\", \"event_id\":\"Ev01\",\"u\":\"\\/x\", \"f\":1.0e0}")

// mac returns the HMAC of the concatenated parts under key.
func mac(newHash func() hash.Hash, key []byte, parts ...string) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func hexMAC(key string, parts ...string) string {
	return hex.EncodeToString(mac(sha256.New, []byte(key), parts...))
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// headers builds an http.Header from name, value pairs.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// mustVerify fails the test unless req verifies.
func mustVerify(tb testing.TB, v *orcheo.WebhookVerify, secrets []string, req Request) Result {
	tb.Helper()
	res, err := Verify(v, secrets, req, now)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return res
}

// mustFail fails the test unless req is refused with an *Error whose
// reason contains want.
func mustFail(tb testing.TB, v *orcheo.WebhookVerify, secrets []string, req Request, want string) {
	tb.Helper()
	res, err := Verify(v, secrets, req, now)
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("Verify = %+v, %v; want an *Error containing %q", res, err, want)
	}
	if !strings.Contains(e.Reason, want) {
		tb.Fatalf("reason %q does not contain %q", e.Reason, want)
	}
	if res != (Result{}) {
		tb.Fatalf("a refusal returned %+v", res)
	}
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(e.Reason, s) {
			tb.Fatalf("reason %q holds a secret", e.Reason)
		}
	}
}

// scheme describes one preset for the cases every signed scheme shares.
type scheme struct {
	v *orcheo.WebhookVerify
	// cur, prev and wrong are three different secrets.
	cur, prev, wrong string
	// sign returns a request carrying body signed with secret at t.
	sign func(secret string, body []byte, t time.Time) Request
	// timed: the scheme signs a timestamp.
	timed bool
}

// testCommon runs the cases every signed scheme shares.
func testCommon(t *testing.T, s scheme) {
	t.Run("OK", func(t *testing.T) {
		res := mustVerify(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, now))
		if s.timed && !res.Timestamp.Equal(now) {
			t.Fatalf("Timestamp = %v, want %v", res.Timestamp, now)
		}
		if res.ReplayKey == "" && (res.DeliveryID == "" || s.v.Type == orcheo.VerifyGitHub) {
			t.Fatalf("want a ReplayKey without a signed delivery id: %+v", res)
		}
	})
	t.Run("ReEncodedBodyFails", func(t *testing.T) {
		// The sender signed rawBody; what a decode and encode would give
		// back must not verify: signatures are over the bytes as sent.
		req := s.sign(s.cur, rawBody, now)
		req.Body = []byte(`{"a":[2,3],"b":1,"event_id":"Ev01","f":1,"id":"evt_1","u":"/x"}`)
		mustFail(t, s.v, []string{s.cur}, req, "signature mismatch")
	})
	t.Run("TamperedBody", func(t *testing.T) {
		req := s.sign(s.cur, rawBody, now)
		req.Body = append([]byte(nil), rawBody...)
		req.Body[len(req.Body)-2] ^= 1
		mustFail(t, s.v, []string{s.cur}, req, "signature mismatch")
	})
	t.Run("TruncatedBody", func(t *testing.T) {
		req := s.sign(s.cur, rawBody, now)
		req.Body = rawBody[:len(rawBody)-1]
		mustFail(t, s.v, []string{s.cur}, req, "signature mismatch")
	})
	t.Run("WrongSecret", func(t *testing.T) {
		mustFail(t, s.v, []string{s.cur, s.prev}, s.sign(s.wrong, rawBody, now), "signature mismatch")
	})
	t.Run("Rotation", func(t *testing.T) {
		req := s.sign(s.prev, rawBody, now)
		mustVerify(t, s.v, []string{s.cur, s.prev}, req)
		mustFail(t, s.v, []string{s.cur}, req, "signature mismatch")
	})
	t.Run("EmptySecretIgnored", func(t *testing.T) {
		mustFail(t, s.v, []string{""}, s.sign(s.cur, rawBody, now), "no secret configured")
		mustFail(t, s.v, nil, s.sign(s.cur, rawBody, now), "no secret configured")
	})
	t.Run("EmptyBody", func(t *testing.T) {
		mustVerify(t, s.v, []string{s.cur}, s.sign(s.cur, nil, now))
	})
	if !s.timed {
		return
	}
	tol := s.v.ToleranceOrDefault()
	t.Run("EdgeOfTolerance", func(t *testing.T) {
		mustVerify(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, now.Add(-tol)))
		mustVerify(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, now.Add(tol)))
	})
	t.Run("Stale", func(t *testing.T) {
		mustFail(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, now.Add(-tol-time.Second)), "timestamp outside the "+tol.String()+" tolerance")
	})
	t.Run("Future", func(t *testing.T) {
		mustFail(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, now.Add(tol+time.Second)), "timestamp outside the "+tol.String()+" tolerance")
	})
	t.Run("Epoch", func(t *testing.T) {
		mustFail(t, s.v, []string{s.cur}, s.sign(s.cur, rawBody, time.Unix(0, 0)), "tolerance")
	})
}
