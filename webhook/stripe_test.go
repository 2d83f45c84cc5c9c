package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

const stripeSecret = "whsec_stripe_test_current"

func stripeRequest(secret string, body []byte, t time.Time) Request {
	ts := unix(t)
	// As Stripe sends it: t, then v1, then a test-mode v0 to be ignored.
	h := "t=" + ts + ",v1=" + hexMAC(secret, ts, ".", string(body)) + ",v0=" + hexMAC("legacy", ts, ".", string(body))
	return Request{Header: headers("Stripe-Signature", h), Body: body}
}

func TestVerifyStripe(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyStripe}
	testCommon(t, scheme{v: v, cur: stripeSecret, prev: "whsec_stripe_test_previous", wrong: "whsec_stripe_test_wrong", sign: stripeRequest, timed: true})
	testCommon(t, scheme{v: &orcheo.WebhookVerify{Type: orcheo.VerifyStripe, Tolerance: "30s"}, cur: "a-secret", prev: "b-secret", wrong: "c-secret", sign: stripeRequest, timed: true})

	ts := unix(now)
	good := hexMAC(stripeSecret, ts, ".", string(rawBody))
	other := hexMAC("whsec_other", ts, ".", string(rawBody))
	t.Run("EventID", func(t *testing.T) {
		res := mustVerify(t, v, []string{stripeSecret}, stripeRequest(stripeSecret, rawBody, now))
		if res.DeliveryID != "evt_1" || res.ReplayKey != "" || !res.Timestamp.Equal(now) {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("NoEventID", func(t *testing.T) {
		for _, body := range []string{`{"ID":"evt_upper"}`, `{"id":7}`, `["evt_1"]`, `not json`, `{"data":{"id":"evt_nested"}}`} {
			res := mustVerify(t, v, []string{stripeSecret}, stripeRequest(stripeSecret, []byte(body), now))
			if res.DeliveryID != "" || len(res.ReplayKey) != 64 {
				t.Fatalf("%s: got %+v", body, res)
			}
		}
	})
	t.Run("ReplayKeyIgnoresWhichSignature", func(t *testing.T) {
		// The same signed content under either secret, or with its v1s in
		// another order, is the same request.
		body := []byte(`{"no":"id"}`)
		a := mustVerify(t, v, []string{"k1", "k2"}, Request{Header: headers("Stripe-Signature", "t="+ts+",v1="+hexMAC("k1", ts, ".", string(body))), Body: body})
		b := mustVerify(t, v, []string{"k1", "k2"}, Request{Header: headers("Stripe-Signature", "t="+ts+",v1="+hexMAC("k2", ts, ".", string(body))+",v1="+other), Body: body})
		if a.ReplayKey == "" || a.ReplayKey != b.ReplayKey {
			t.Fatalf("replay keys %q and %q", a.ReplayKey, b.ReplayKey)
		}
	})
	t.Run("RollingSecretSendsTwoV1", func(t *testing.T) {
		h := "t=" + ts + ",v1=" + other + ",v1=" + good
		mustVerify(t, v, []string{stripeSecret}, Request{Header: headers("Stripe-Signature", h), Body: rawBody})
	})
	t.Run("UnknownSchemesIgnored", func(t *testing.T) {
		h := "v2=abc,t=" + ts + ",scheme=x,v1=" + good
		mustVerify(t, v, []string{stripeSecret}, Request{Header: headers("Stripe-Signature", h), Body: rawBody})
	})
	t.Run("EightV1", func(t *testing.T) {
		h := "t=" + ts + strings.Repeat(",v1="+other, MaxSignatures-1) + ",v1=" + good
		mustVerify(t, v, []string{stripeSecret}, Request{Header: headers("Stripe-Signature", h), Body: rawBody})
	})
	t.Run("TimestampNotSigned", func(t *testing.T) {
		// Moving t (here by one second) breaks the signature.
		h := "t=" + unix(now.Add(time.Second)) + ",v1=" + good
		mustFail(t, v, []string{stripeSecret}, Request{Header: headers("Stripe-Signature", h), Body: rawBody}, "signature mismatch")
	})
	for _, tc := range []struct{ name, h, want string }{
		{"Missing", "", "missing Stripe-Signature header"},
		{"NoTimestamp", "v1=" + good, "malformed Stripe-Signature header"},
		{"TwoTimestamps", "t=" + ts + ",t=" + ts + ",v1=" + good, "malformed Stripe-Signature header"},
		{"NoEquals", "t=" + ts + ",v1" + good, "malformed Stripe-Signature header"},
		{"OnlyV0", "t=" + ts + ",v0=" + good, "no v1 signature"},
		{"V1NotHex", "t=" + ts + ",v1=xyz", "no v1 signature"},
		{"BadTimestamp", "t=-" + ts + ",v1=" + good, "malformed Stripe-Signature timestamp"},
		{"FractionTimestamp", "t=" + ts + ".0,v1=" + good, "malformed Stripe-Signature timestamp"},
		{"HugeTimestamp", "t=99999999999999999999999,v1=" + good, "malformed Stripe-Signature timestamp"},
		{"EmptyTimestamp", "t=,v1=" + good, "malformed Stripe-Signature timestamp"},
		{"NineV1", "t=" + ts + strings.Repeat(",v1="+other, MaxSignatures) + ",v1=" + good, "more than 8 v1 signatures"},
		{"TooLong", "t=" + ts + ",v1=" + good + ",x=" + strings.Repeat("a", MaxHeaderBytes), "longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Header: headers(), Body: rawBody}
			if tc.h != "" {
				req.Header.Set("Stripe-Signature", tc.h)
			}
			mustFail(t, v, []string{stripeSecret}, req, tc.want)
		})
	}
}
