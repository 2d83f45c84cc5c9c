package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func githubRequest(secret string, body []byte, _ time.Time) Request {
	return Request{
		Header: headers("X-Hub-Signature-256", "sha256="+hexMAC(secret, string(body)), "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
		Body:   body,
	}
}

func TestVerifyGitHub(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub}
	testCommon(t, scheme{v: v, cur: "gh-current", prev: "gh-previous", wrong: "gh-wrong", sign: githubRequest})

	t.Run("DocsVector", func(t *testing.T) {
		// From GitHub's "Validating webhook deliveries".
		req := Request{
			Header: headers("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
			Body:   []byte("Hello, World!"),
		}
		res := mustVerify(t, v, []string{"It's a Secret to Everybody"}, req)
		if res.DeliveryID != "" || len(res.ReplayKey) != 64 {
			t.Fatalf("without X-GitHub-Delivery want a ReplayKey: %+v", res)
		}
	})
	t.Run("DeliveryID", func(t *testing.T) {
		res := mustVerify(t, v, []string{"gh-secret"}, githubRequest("gh-secret", rawBody, now))
		// The delivery id is not signed: the body's ReplayKey comes too.
		if res.DeliveryID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || len(res.ReplayKey) != 64 || !res.Timestamp.IsZero() {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("UpperCaseHex", func(t *testing.T) {
		req := githubRequest("gh-secret", rawBody, now)
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.ToUpper(hexMAC("gh-secret", string(rawBody))))
		mustVerify(t, v, []string{"gh-secret"}, req)
	})
	sig := "sha256=" + hexMAC("gh-secret", string(rawBody))
	for _, tc := range []struct {
		name string
		h    []string
		want string
	}{
		{"MissingHeader", []string{"X-GitHub-Delivery", "d"}, "missing X-Hub-Signature-256 header"},
		{"EmptyHeader", []string{"X-Hub-Signature-256", ""}, "missing X-Hub-Signature-256 header"},
		{"SHA1HeaderOnly", []string{"X-Hub-Signature", "sha1=" + hexMAC("gh-secret", string(rawBody))}, "missing X-Hub-Signature-256 header"},
		{"NoPrefix", []string{"X-Hub-Signature-256", hexMAC("gh-secret", string(rawBody))}, "malformed X-Hub-Signature-256 header"},
		{"WrongPrefix", []string{"X-Hub-Signature-256", "sha1=" + hexMAC("gh-secret", string(rawBody))}, "malformed X-Hub-Signature-256 header"},
		{"NotHex", []string{"X-Hub-Signature-256", "sha256=zz"}, "malformed X-Hub-Signature-256 header"},
		{"Short", []string{"X-Hub-Signature-256", sig[:len(sig)-2]}, "malformed X-Hub-Signature-256 header"},
		{"TooLong", []string{"X-Hub-Signature-256", sig + strings.Repeat("0", MaxHeaderBytes)}, "longer than"},
		{"Twice", []string{"X-Hub-Signature-256", sig, "X-Hub-Signature-256", sig}, "more than one X-Hub-Signature-256 header"},
		{"BadDelivery", []string{"X-Hub-Signature-256", sig, "X-GitHub-Delivery", "a b"}, "malformed X-GitHub-Delivery header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, v, []string{"gh-secret"}, Request{Header: headers(tc.h...), Body: rawBody}, tc.want)
		})
	}
}
