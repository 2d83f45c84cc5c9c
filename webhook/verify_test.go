package webhook

import (
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

func TestVerifyNone(t *testing.T) {
	for _, v := range []*orcheo.WebhookVerify{nil, {Type: orcheo.VerifyNone}} {
		res, err := Verify(v, nil, Request{}, now)
		if err != nil || res != (Result{}) {
			t.Fatalf("Verify(%+v) = %+v, %v", v, res, err)
		}
	}
}

func TestVerifyUnknownType(t *testing.T) {
	mustFail(t, &orcheo.WebhookVerify{Type: "gitlab"}, []string{"secret"}, Request{}, "unknown verification type")
}

func TestVerifySecret(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifySecret, Header: "X-Gitlab-Token"}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	req := func(value string) Request { return Request{Header: headers("X-Gitlab-Token", value), Body: rawBody} }
	t.Run("OK", func(t *testing.T) {
		// Nothing is signed: no id and nothing to remember.
		if res := mustVerify(t, v, []string{"token-current"}, req("token-current")); res != (Result{}) {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		mustVerify(t, v, []string{"token-current", "token-previous"}, req("token-previous"))
		mustFail(t, v, []string{"token-current"}, req("token-previous"), "secret mismatch")
	})
	t.Run("Mismatch", func(t *testing.T) {
		for _, got := range []string{"token-curren", "token-current ", "TOKEN-CURRENT", "token-current\x00"} {
			mustFail(t, v, []string{"token-current"}, req(got), "secret mismatch")
		}
	})
	t.Run("Missing", func(t *testing.T) {
		mustFail(t, v, []string{"token-current"}, Request{Header: headers()}, "missing x-gitlab-token header")
	})
	t.Run("EmptySecretNeverMatches", func(t *testing.T) {
		mustFail(t, v, []string{""}, req(""), "no secret configured")
	})
	t.Run("Twice", func(t *testing.T) {
		r := req("token-current")
		r.Header.Add("X-Gitlab-Token", "token-current")
		mustFail(t, v, []string{"token-current"}, r, "more than one")
	})
}

func TestVerifier(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifySlack}
	body := []byte(`{"type":"url_verification","challenge":"abc"}`)
	r := slackRequest("slack-key", body, now)
	proof, err := Verifier{}.VerifyWebhook(v, []string{"slack-key"}, orcheo.WebhookRequest(r), now)
	if err != nil || proof.SlackChallenge != "abc" || proof.ReplayKey == "" {
		t.Fatalf("got %+v, %v", proof, err)
	}
	_, err = Verifier{}.VerifyWebhook(v, []string{"other-key"}, orcheo.WebhookRequest(r), now)
	if err == nil || !strings.Contains(err.Error(), "signature mismatch") {
		t.Fatalf("got %v", err)
	}
}
