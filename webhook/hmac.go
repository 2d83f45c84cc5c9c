package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// verifyHMAC checks the generic scheme: v.Header holds v.Prefix and then
// the v.Encoding of the v.Algorithm HMAC of the raw body, or of the
// v.TimestampHeader's value, v.Separator and the raw body. Defaults are
// those Validate fills in, so an unvalidated v means the same.
func verifyHMAC(v *orcheo.WebhookVerify, keys [][]byte, req Request, now time.Time) (Result, error) {
	newHash, size := hashOf(v.Algorithm)
	if newHash == nil {
		return Result{}, fail("unknown hmac algorithm")
	}
	name := strings.ToLower(v.Header)
	if name == "" {
		return Result{}, fail("no hmac header configured")
	}
	value, err := header(req.Header, name, name, MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	sig, err := decodeHMACSignature(value, v.Prefix, v.Encoding, size)
	if err != nil {
		return Result{}, fail("malformed %s header", name)
	}
	var res Result
	parts := [][]byte{req.Body}
	if tsName := strings.ToLower(v.TimestampHeader); tsName != "" {
		ts, err := header(req.Header, tsName, tsName, maxTimestampBytes)
		if err != nil {
			return Result{}, err
		}
		if res.Timestamp, err = timestamp(v, ts, tsName, now); err != nil {
			return Result{}, err
		}
		if strings.ToLower(v.Signed) == "timestamp_body" {
			sep := v.Separator
			if sep == "" {
				sep = "."
			}
			parts = [][]byte{[]byte(ts), []byte(sep), req.Body}
		}
	}
	if !matchAny(newHash, keys, [][]byte{sig}, parts...) {
		return Result{}, errMismatch
	}
	res.ReplayKey = replayKey("hmac", parts...)
	return res, nil
}

// hashOf returns the hash of an algorithm name ("" is sha256) and its
// size, or nil.
func hashOf(alg string) (func() hash.Hash, int) {
	switch strings.ToLower(alg) {
	case "", "sha256":
		return sha256.New, sha256.Size
	case "sha1":
		return sha1.New, sha1.Size
	case "sha512":
		return sha512.New, sha512.Size
	}
	return nil, 0
}

// decodeHMACSignature strips prefix (in any case: "SHA256=" is as good as
// "sha256=") and decodes the rest as hex (either case) or standard base64,
// which must come to size bytes. Surrounding spaces are ignored.
func decodeHMACSignature(value, prefix, encoding string, size int) ([]byte, error) {
	value = strings.TrimSpace(value)
	if prefix != "" {
		if len(value) < len(prefix) || !strings.EqualFold(value[:len(prefix)], prefix) {
			return nil, errMismatch
		}
		value = value[len(prefix):]
	}
	var sig []byte
	var err error
	switch strings.ToLower(encoding) {
	case "", "hex":
		sig, err = hex.DecodeString(value)
	case "base64":
		sig, err = base64.StdEncoding.DecodeString(value)
	default:
		return nil, errMismatch
	}
	if err != nil || len(sig) != size {
		return nil, errMismatch
	}
	return sig, nil
}
