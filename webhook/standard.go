package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// verifyStandard checks a Standard Webhooks request: webhook-signature is
// a space-separated list of "v1,<base64>", each the HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<raw body>" under the secret's key,
// the base64 after "whsec_". Other versions (v1a, asymmetric) are
// ignored. Svix's svix-id, svix-timestamp and svix-signature are read
// instead when no webhook-* header is present; the two sets never mix.
func verifyStandard(v *orcheo.WebhookVerify, secrets [][]byte, req Request, now time.Time) (Result, error) {
	prefix := "webhook-"
	if len(req.Header.Values("webhook-id")) == 0 && len(req.Header.Values("webhook-timestamp")) == 0 &&
		len(req.Header.Values("webhook-signature")) == 0 && len(req.Header.Values("svix-signature")) > 0 {
		prefix = "svix-"
	}
	id, err := header(req.Header, prefix+"id", prefix+"id", MaxDeliveryIDBytes)
	if err != nil {
		return Result{}, err
	}
	if !validID(id) {
		return Result{}, fail("malformed %sid header", prefix)
	}
	ts, err := header(req.Header, prefix+"timestamp", prefix+"timestamp", maxTimestampBytes)
	if err != nil {
		return Result{}, err
	}
	value, err := header(req.Header, prefix+"signature", prefix+"signature", MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	sigs, err := parseStandardSignature(value, prefix+"signature")
	if err != nil {
		return Result{}, err
	}
	t, err := timestamp(v, ts, prefix+"timestamp", now)
	if err != nil {
		return Result{}, err
	}
	keys := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if k, ok := standardKey(string(s)); ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return Result{}, fail("configured secret is not whsec_ followed by base64")
	}
	if !matchAny(sha256.New, keys, sigs, []byte(id), []byte("."), []byte(ts), []byte("."), req.Body) {
		return Result{}, errMismatch
	}
	return Result{DeliveryID: id, Timestamp: t}, nil
}

// standardKey decodes a whsec_ secret. The reference libraries accept the
// base64 without its prefix too, and so does this.
func standardKey(secret string) ([]byte, bool) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return k, err == nil && len(k) > 0
}

// parseStandardSignature returns the decoded v1 signatures of a
// webhook-signature header, refusing more than MaxSignatures entries of
// any version. An entry that is not base64 of a SHA-256 size is skipped:
// it could not match.
func parseStandardSignature(value, display string) ([][]byte, error) {
	var sigs [][]byte
	n := 0
	for entry := range strings.SplitSeq(value, " ") {
		if entry == "" {
			continue
		}
		if n++; n > MaxSignatures {
			return nil, fail("more than %d signatures in %s header", MaxSignatures, display)
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok {
			return nil, fail("malformed %s header", display)
		}
		if version != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.Strict().DecodeString(sig); err == nil && len(b) == sha256.Size {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return nil, fail("no v1 signature in %s header", display)
	}
	return sigs, nil
}
