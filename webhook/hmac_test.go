package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// hmacSigner signs as a sender configured like v would.
func hmacSigner(v *orcheo.WebhookVerify) func(secret string, body []byte, t time.Time) Request {
	return func(secret string, body []byte, t time.Time) Request {
		h := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}[v.Algorithm]
		parts := []string{string(body)}
		req := Request{Header: headers(), Body: body}
		if v.TimestampHeader != "" {
			req.Header.Set(v.TimestampHeader, unix(t))
			if v.Signed == "timestamp_body" {
				parts = []string{unix(t), v.Separator, string(body)}
			}
		}
		sum := mac(h, []byte(secret), parts...)
		enc := hex.EncodeToString(sum)
		if v.Encoding == "base64" {
			enc = base64.StdEncoding.EncodeToString(sum)
		}
		req.Header.Set(v.Header, v.Prefix+enc)
		return req
	}
}

func TestVerifyHMAC(t *testing.T) {
	configs := map[string]*orcheo.WebhookVerify{
		// Shopify: X-Shopify-Hmac-Sha256, base64 of HMAC-SHA256 of the body.
		"Shopify":    {Type: "hmac", Header: "X-Shopify-Hmac-Sha256", Encoding: "base64"},
		"SHA1Prefix": {Type: "hmac", Header: "X-Signature", Algorithm: "sha1", Prefix: "sha1="},
		"SHA512":     {Type: "hmac", Header: "X-Signature", Algorithm: "sha512", Encoding: "base64"},
		"TimestampBody": {Type: "hmac", Header: "X-Signature", Prefix: "v1=", TimestampHeader: "X-Timestamp",
			Signed: "timestamp_body", Separator: ":", Tolerance: "2m"},
		"TimestampNotSigned": {Type: "hmac", Header: "X-Signature", TimestampHeader: "X-Timestamp"},
	}
	for name, v := range configs {
		t.Run(name, func(t *testing.T) {
			if err := v.Validate(); err != nil {
				t.Fatal(err)
			}
			testCommon(t, scheme{v: v, cur: "hmac-current", prev: "hmac-previous", wrong: "hmac-wrong", sign: hmacSigner(v), timed: v.TimestampHeader != ""})
		})
	}
	t.Run("ReplayKeyAlways", func(t *testing.T) {
		v := configs["Shopify"]
		res := mustVerify(t, v, []string{"shop-secret"}, hmacSigner(v)("shop-secret", rawBody, now))
		if res.DeliveryID != "" || len(res.ReplayKey) != 64 {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("UnvalidatedDefaults", func(t *testing.T) {
		// sha256, hex, the body: what Validate would fill in.
		v := &orcheo.WebhookVerify{Type: "hmac", Header: "x-sig"}
		req := Request{Header: headers("X-Sig", hexMAC("hmac-secret", string(rawBody))), Body: rawBody}
		mustVerify(t, v, []string{"hmac-secret"}, req)
	})
	t.Run("CaseInsensitiveHexAndPrefix", func(t *testing.T) {
		v := configs["SHA1Prefix"]
		req := hmacSigner(v)("hmac-secret", rawBody, now)
		req.Header.Set("X-Signature", strings.ToUpper(req.Header.Get("X-Signature")))
		mustVerify(t, v, []string{"hmac-secret"}, req)
	})
	t.Run("TimestampChanged", func(t *testing.T) {
		v := configs["TimestampBody"]
		req := hmacSigner(v)("hmac-secret", rawBody, now)
		req.Header.Set("X-Timestamp", unix(now.Add(time.Second)))
		mustFail(t, v, []string{"hmac-secret"}, req, "signature mismatch")
	})
	for _, tc := range []struct {
		name, config, header, value, want string
	}{
		{"Missing", "Shopify", "X-Shopify-Hmac-Sha256", "", "missing x-shopify-hmac-sha256 header"},
		{"NotBase64", "Shopify", "X-Shopify-Hmac-Sha256", "%%%", "malformed x-shopify-hmac-sha256 header"},
		{"HexForBase64", "Shopify", "X-Shopify-Hmac-Sha256", hexMAC("hmac-secret", string(rawBody)), "malformed x-shopify-hmac-sha256 header"},
		{"MissingPrefix", "SHA1Prefix", "X-Signature", hex.EncodeToString(make([]byte, 20)), "malformed x-signature header"},
		{"WrongLength", "SHA512", "X-Signature", base64.StdEncoding.EncodeToString(make([]byte, 32)), "malformed x-signature header"},
		{"MissingTimestamp", "TimestampBody", "X-Timestamp", "", "missing x-timestamp header"},
		{"BadTimestamp", "TimestampBody", "X-Timestamp", " 1700000000", "malformed x-timestamp timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := configs[tc.config]
			req := hmacSigner(v)("hmac-secret", rawBody, now)
			req.Header.Del(tc.header)
			if tc.value != "" {
				req.Header.Set(tc.header, tc.value)
			}
			mustFail(t, v, []string{"hmac-secret"}, req, tc.want)
		})
	}
}
