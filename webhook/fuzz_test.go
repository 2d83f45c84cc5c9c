package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

// The fuzz targets sign with fuzzSigner wherever an input says {sig} and
// put the current time wherever it says {t}, so mutations explore around
// valid requests. Whatever the input, a request must never verify under
// fuzzVictim, whose key no input can know; under fuzzSigner it may.
const (
	fuzzSigner = "whsec_ZnV6eiBzaWduZXIga2V5"         // "fuzz signer key"
	fuzzVictim = "whsec_ZnV6eiB2aWN0aW0ga2V5IDEyMw==" // "fuzz victim key 123"
)

// checkFuzz checks the invariants of one request under both secrets.
func checkFuzz(t *testing.T, v *orcheo.WebhookVerify, req Request, signature string, headerLen int) {
	t.Helper()
	if res, err := Verify(v, []string{fuzzVictim}, req, now); err == nil {
		t.Fatalf("verified under a secret the input cannot know: %+v", res)
	}
	res, err := Verify(v, []string{fuzzSigner}, req, now)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *Error", err)
		}
		if strings.Contains(e.Reason, fuzzSigner) || (signature != "" && strings.Contains(e.Reason, signature)) {
			t.Fatalf("reason %q holds the secret or the expected signature", e.Reason)
		}
		if res != (Result{}) {
			t.Fatalf("a refusal returned %+v", res)
		}
		return
	}
	if testing.Verbose() {
		t.Logf("verified: %+v", res)
	}
	if headerLen > MaxHeaderBytes {
		t.Fatalf("a %d-byte signature header verified", headerLen)
	}
	if res.ReplayKey == "" && (res.DeliveryID == "" || v.Type == orcheo.VerifyGitHub) {
		t.Fatalf("want a ReplayKey without a signed delivery id: %+v", res)
	}
	if d := now.Sub(res.Timestamp); !res.Timestamp.IsZero() && (d > v.ToleranceOrDefault() || d < -v.ToleranceOrDefault()) {
		t.Fatalf("timestamp %v outside the tolerance", res.Timestamp)
	}
}

func FuzzStripeSignature(f *testing.F) {
	f.Add("t={t},v1={sig}", []byte(`{"id":"evt_1", "b":1}`))
	f.Add("t={t},v1={sig},v0=00", []byte("not json"))
	f.Add("t={t},v1=00,v1={sig}", []byte(`{"id":7}`))
	f.Add("t=1,v1={sig}", []byte{})
	f.Add("t={t},t={t},v1={sig}", []byte("{}"))
	f.Add("t={t}"+strings.Repeat(",v1={sig}", MaxSignatures+1), []byte("{}"))
	f.Add(",,=,t=,v1=", []byte("{}"))
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyStripe}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ts := unix(now)
		sig := hexMAC(fuzzSigner, ts, ".", string(body))
		header = strings.ReplaceAll(strings.ReplaceAll(header, "{t}", ts), "{sig}", sig)
		if len(header) <= MaxHeaderBytes {
			// The parser's own bound, whatever Verify does with it.
			if _, sigs, err := parseStripeSignature(header); err == nil && (len(sigs) == 0 || len(sigs) > MaxSignatures) {
				t.Fatalf("parsed %d v1 signatures", len(sigs))
			}
		}
		checkFuzz(t, v, Request{Header: headers("Stripe-Signature", header), Body: body}, sig, len(header))
	})
}

func FuzzStandardSignature(f *testing.F) {
	f.Add("msg_1", "{t}", "v1,{sig}", []byte(`{"test": 2432232314}`))
	f.Add("msg_1", "{t}", "v1a,AAAA v1,{sig}", []byte("{}"))
	f.Add("msg 1", "{t}", "v1,{sig}", []byte("{}"))
	f.Add("msg_1", "0{t}", "v1,{sig}", []byte("{}"))
	f.Add("msg_1", "{t}", strings.Repeat("v1,{sig} ", MaxSignatures+1), []byte("{}"))
	f.Add("", "", "", []byte(nil))
	f.Add("a.b", "{t}", "v1,,,{sig}", []byte("."))
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyStandard}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fuzzSigner, "whsec_"))
	f.Fuzz(func(t *testing.T, id, ts, header string, body []byte) {
		ts = strings.ReplaceAll(ts, "{t}", unix(now))
		sig := base64.StdEncoding.EncodeToString(mac(sha256.New, key, id, ".", ts, ".", string(body)))
		header = strings.ReplaceAll(header, "{sig}", sig)
		if len(header) <= MaxHeaderBytes {
			if sigs, err := parseStandardSignature(header, "webhook-signature"); err == nil && (len(sigs) == 0 || len(sigs) > MaxSignatures) {
				t.Fatalf("parsed %d v1 signatures", len(sigs))
			}
		}
		h := headers()
		for name, value := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": header} {
			if value != "" {
				h.Set(name, value)
			}
		}
		checkFuzz(t, v, Request{Header: h, Body: body}, sig, len(header))
	})
}

// fuzzHMACConfigs are the generic configurations FuzzHMACSignature picks
// from.
var fuzzHMACConfigs = []*orcheo.WebhookVerify{
	{Type: "hmac", Header: "x-sig", Encoding: "base64"},
	{Type: "hmac", Header: "x-sig", Algorithm: "sha1", Prefix: "sha1="},
	{Type: "hmac", Header: "x-sig", Algorithm: "sha512", TimestampHeader: "x-ts", Signed: "timestamp_body", Separator: ":"},
	{Type: "hmac", Header: "x-sig", Prefix: "v1=", TimestampHeader: "x-ts"},
}

func FuzzHMACSignature(f *testing.F) {
	f.Add(uint8(0), "{sig}", "", []byte(`{"b":1,  "a":[2, 3]}`))
	f.Add(uint8(1), "sha1={sig}", "", []byte("x"))
	f.Add(uint8(1), "SHA1={sig}", "", []byte("x"))
	f.Add(uint8(2), "{sig}", "{t}", []byte("{}"))
	f.Add(uint8(2), "{sig}", "+{t}", []byte("{}"))
	f.Add(uint8(3), "v1={sig}", "{t}", []byte("{}"))
	f.Add(uint8(3), " v1={sig} ", "1", []byte{})
	for _, v := range fuzzHMACConfigs {
		if err := v.Validate(); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, config uint8, header, ts string, body []byte) {
		v := fuzzHMACConfigs[int(config)%len(fuzzHMACConfigs)]
		newHash, _ := hashOf(v.Algorithm)
		ts = strings.ReplaceAll(ts, "{t}", unix(now))
		parts := []string{string(body)}
		if v.Signed == "timestamp_body" {
			parts = []string{ts, v.Separator, string(body)}
		}
		sum := mac(newHash, []byte(fuzzSigner), parts...)
		sig := hex.EncodeToString(sum)
		if v.Encoding == "base64" {
			sig = base64.StdEncoding.EncodeToString(sum)
		}
		header = strings.ReplaceAll(header, "{sig}", sig)
		h := headers()
		if header != "" {
			h.Set("x-sig", header)
		}
		if ts != "" {
			h.Set("x-ts", ts)
		}
		checkFuzz(t, v, Request{Header: h, Body: body}, sig, len(header))
	})
}
