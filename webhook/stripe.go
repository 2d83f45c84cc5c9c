package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// verifyStripe checks Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…],
// each v1 an HMAC-SHA256 of "<t>.<raw body>". Stripe lists one v1 per
// active secret while one is rolled; v0 (test mode's old scheme) and
// unknown keys are ignored, as Stripe's libraries do.
func verifyStripe(v *orcheo.WebhookVerify, keys [][]byte, req Request, now time.Time) (Result, error) {
	value, err := header(req.Header, "Stripe-Signature", "Stripe-Signature", MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	ts, sigs, err := parseStripeSignature(value)
	if err != nil {
		return Result{}, err
	}
	t, err := timestamp(v, ts, "Stripe-Signature", now)
	if err != nil {
		return Result{}, err
	}
	if !matchAny(sha256.New, keys, sigs, []byte(ts), []byte("."), req.Body) {
		return Result{}, errMismatch
	}
	res := Result{Timestamp: t}
	// The event id is inside the signed body, so it is the sender's.
	if id := jsonString(jsonObject(req.Body), "id"); validID(id) {
		res.DeliveryID = id
	} else {
		res.ReplayKey = replayKey("stripe", []byte(ts), req.Body)
	}
	return res, nil
}

// parseStripeSignature returns the t value and the decoded v1 signatures
// of a Stripe-Signature header, at most MaxSignatures of them. A v1 that
// is not hex (a signature of some other length) is skipped rather than
// refused: it could not match anyway.
func parseStripeSignature(value string) (ts string, sigs [][]byte, err error) {
	malformed := fail("malformed Stripe-Signature header")
	haveT, v1s := false, 0
	for item := range strings.SplitSeq(value, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return "", nil, malformed
		}
		switch k {
		case "t":
			if haveT {
				return "", nil, malformed
			}
			ts, haveT = val, true
		case "v1":
			if v1s++; v1s > MaxSignatures {
				return "", nil, fail("more than %d v1 signatures in Stripe-Signature header", MaxSignatures)
			}
			if sig, err := hex.DecodeString(val); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	if !haveT {
		return "", nil, malformed
	}
	if len(sigs) == 0 {
		return "", nil, fail("no v1 signature in Stripe-Signature header")
	}
	return ts, sigs, nil
}

// jsonObject returns the top-level members of a JSON object body, or nil
// when the body is not one. Members are matched by exact key later
// (encoding/json would match struct fields in any case). The body is
// bounded by the server's body limit.
func jsonObject(body []byte) map[string]json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	return obj
}

// jsonString returns the member key of obj if it is a string, else "".
func jsonString(obj map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := obj[key]; !ok || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
