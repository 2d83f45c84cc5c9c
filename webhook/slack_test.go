package webhook

import (
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func slackRequest(secret string, body []byte, t time.Time) Request {
	ts := unix(t)
	return Request{
		Header: headers("X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0="+hexMAC(secret, "v0:", ts, ":", string(body))),
		Body:   body,
	}
}

func TestVerifySlack(t *testing.T) {
	v := &orcheo.WebhookVerify{Type: orcheo.VerifySlack}
	testCommon(t, scheme{v: v, cur: "slack-current", prev: "slack-previous", wrong: "slack-wrong", sign: slackRequest, timed: true})

	t.Run("DocsVector", func(t *testing.T) {
		// From Slack's "Verifying requests from Slack": a slash command.
		req := Request{
			Header: headers("X-Slack-Request-Timestamp", "1531420618", "X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
			Body:   []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"),
		}
		secret := []string{"8f742231b10e8888abcd99yyyzzz85a5"}
		signed := time.Unix(1531420618, 0)
		res, err := Verify(v, secret, req, signed.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res.DeliveryID != "" || len(res.ReplayKey) != 64 || !res.Timestamp.Equal(signed) || res.SlackChallenge != "" {
			t.Fatalf("got %+v", res)
		}
		if _, err := Verify(v, secret, req, signed.Add(5*time.Minute+time.Second)); err == nil {
			t.Fatal("a request over 5 minutes old verified")
		}
	})
	t.Run("EventID", func(t *testing.T) {
		res := mustVerify(t, v, []string{"slack-key"}, slackRequest("slack-key", rawBody, now))
		if res.DeliveryID != "Ev01" || res.ReplayKey != "" || res.SlackChallenge != "" {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("URLVerification", func(t *testing.T) {
		body := []byte(`{"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",  "challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}`)
		res := mustVerify(t, v, []string{"slack-key"}, slackRequest("slack-key", body, now))
		if res.SlackChallenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
			t.Fatalf("got %+v", res)
		}
		// Unsigned, the challenge is nobody's to answer.
		mustFail(t, v, []string{"slack-key"}, slackRequest("other", body, now), "signature mismatch")
		bad := []byte(`{"type":"url_verification","challenge":"a\u0000b"}`)
		mustFail(t, v, []string{"slack-key"}, slackRequest("slack-key", bad, now), "malformed url_verification challenge")
	})
	good := slackRequest("slack-key", rawBody, now)
	for _, tc := range []struct {
		name string
		edit func(r Request)
		want string
	}{
		{"MissingSignature", func(r Request) { r.Header.Del("X-Slack-Signature") }, "missing X-Slack-Signature header"},
		{"MissingTimestamp", func(r Request) { r.Header.Del("X-Slack-Request-Timestamp") }, "missing X-Slack-Request-Timestamp header"},
		{"NoVersion", func(r Request) { r.Header.Set("X-Slack-Signature", good.Header.Get("X-Slack-Signature")[3:]) }, "malformed X-Slack-Signature header"},
		{"OtherVersion", func(r Request) { r.Header.Set("X-Slack-Signature", "v1="+good.Header.Get("X-Slack-Signature")[3:]) }, "malformed X-Slack-Signature header"},
		{"NotHex", func(r Request) { r.Header.Set("X-Slack-Signature", "v0=nothex") }, "malformed X-Slack-Signature header"},
		{"BadTimestamp", func(r Request) { r.Header.Set("X-Slack-Request-Timestamp", "17e8") }, "malformed X-Slack-Request-Timestamp timestamp"},
		{"LongTimestamp", func(r Request) { r.Header.Set("X-Slack-Request-Timestamp", "0000000000000000000001700000000") }, "longer than"},
		{"TimestampChanged", func(r Request) { r.Header.Set("X-Slack-Request-Timestamp", unix(now.Add(-time.Second))) }, "signature mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := slackRequest("slack-key", rawBody, now)
			tc.edit(req)
			mustFail(t, v, []string{"slack-key"}, req, tc.want)
		})
	}
}
