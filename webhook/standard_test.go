package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// standardSecret returns a whsec_ secret whose key is seed's bytes.
func standardSecret(seed string) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(seed))
}

func standardSign(secret, id, ts string, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return "v1," + base64.StdEncoding.EncodeToString(mac(sha256.New, key, id, ".", ts, ".", string(body)))
}

func standardRequest(secret string, body []byte, t time.Time) Request {
	id, ts := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", unix(t)
	return Request{Header: headers("webhook-id", id, "webhook-timestamp", ts, "webhook-signature", standardSign(secret, id, ts, body)), Body: body}
}

func TestVerifyStandard(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyStandard}
	cur := standardSecret("standard current key 0123456789")
	testCommon(t, scheme{v: v, cur: cur, prev: standardSecret("standard previous key"), wrong: standardSecret("standard wrong key"), sign: standardRequest, timed: true})

	t.Run("SpecVector", func(t *testing.T) {
		// The example of the Standard Webhooks specification and its
		// reference libraries' tests.
		req := Request{
			Header: headers("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			Body: []byte(`{"test": 2432232314}`),
		}
		secret := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
		signed := time.Unix(1614265330, 0)
		res, err := Verify(v, secret, req, signed)
		if err != nil {
			t.Fatal(err)
		}
		if res.DeliveryID != "msg_p5jXN8AQM9LWM0D4loKWxJek" || res.ReplayKey != "" || !res.Timestamp.Equal(signed) {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("Svix", func(t *testing.T) {
		id, ts := "msg_svix", unix(now)
		req := Request{Header: headers("svix-id", id, "svix-timestamp", ts, "svix-signature", standardSign(cur, id, ts, rawBody)), Body: rawBody}
		if res := mustVerify(t, v, []string{cur}, req); res.DeliveryID != id {
			t.Fatalf("got %+v", res)
		}
		// The sets never mix: a webhook-id beside svix-* headers means
		// webhook-* headers are read, and the others are missing.
		req.Header.Set("webhook-id", id)
		mustFail(t, v, []string{cur}, req, "missing webhook-timestamp header")
	})
	t.Run("SecretWithoutPrefix", func(t *testing.T) {
		mustVerify(t, v, []string{strings.TrimPrefix(cur, "whsec_")}, standardRequest(cur, rawBody, now))
	})
	t.Run("SecretNotBase64", func(t *testing.T) {
		mustFail(t, v, []string{"whsec_not base64!"}, standardRequest(cur, rawBody, now), "configured secret is not whsec_ followed by base64")
	})
	t.Run("SeveralSignatures", func(t *testing.T) {
		req := standardRequest(cur, rawBody, now)
		sig := req.Header.Get("webhook-signature")
		other := standardRequest(standardSecret("x"), rawBody, now).Header.Get("webhook-signature")
		req.Header.Set("webhook-signature", "v1a,ZmFrZQ== "+other+"  "+strings.Repeat(other+" ", MaxSignatures-3)+sig)
		mustVerify(t, v, []string{cur}, req)
		req.Header.Set("webhook-signature", strings.Repeat(other+" ", MaxSignatures)+sig)
		mustFail(t, v, []string{cur}, req, "more than 8 signatures")
	})
	t.Run("IDIsSigned", func(t *testing.T) {
		req := standardRequest(cur, rawBody, now)
		req.Header.Set("webhook-id", "msg_other")
		mustFail(t, v, []string{cur}, req, "signature mismatch")
	})
	good := standardRequest(cur, rawBody, now)
	sig := good.Header.Get("webhook-signature")
	for _, tc := range []struct {
		name, header, value, want string
	}{
		{"MissingID", "webhook-id", "", "missing webhook-id header"},
		{"MissingTimestamp", "webhook-timestamp", "", "missing webhook-timestamp header"},
		{"MissingSignature", "webhook-signature", "", "missing webhook-signature header"},
		{"BadID", "webhook-id", "msg 1", "malformed webhook-id header"},
		{"BadTimestamp", "webhook-timestamp", "1.7e9", "malformed webhook-timestamp timestamp"},
		{"NoComma", "webhook-signature", strings.Replace(sig, ",", "=", 1), "malformed webhook-signature header"},
		{"OnlyV1a", "webhook-signature", "v1a" + sig[2:], "no v1 signature"},
		{"URLBase64", "webhook-signature", "v1," + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32))), "no v1 signature"},
		{"Unpadded", "webhook-signature", strings.TrimRight(sig, "="), "no v1 signature"},
		{"TooLong", "webhook-signature", sig + strings.Repeat(" ", MaxHeaderBytes), "longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := standardRequest(cur, rawBody, now)
			req.Header.Del(tc.header)
			if tc.value != "" {
				req.Header.Set(tc.header, tc.value)
			}
			mustFail(t, v, []string{cur}, req, tc.want)
		})
	}
}
