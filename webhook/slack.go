package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// maxChallengeBytes bounds a url_verification challenge the server echoes
// (Slack's are a few dozen characters).
const maxChallengeBytes = 1024

// verifySlack checks X-Slack-Signature: v0=<hex>, the HMAC-SHA256 of
// "v0:<X-Slack-Request-Timestamp>:<raw body>".
func verifySlack(v *orcheo.WebhookVerify, keys [][]byte, req Request, now time.Time) (Result, error) {
	const sigName, tsName = "X-Slack-Signature", "X-Slack-Request-Timestamp"
	value, err := header(req.Header, sigName, sigName, MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	ts, err := header(req.Header, tsName, tsName, maxTimestampBytes)
	if err != nil {
		return Result{}, err
	}
	hexSig, ok := strings.CutPrefix(value, "v0=")
	if !ok {
		return Result{}, fail("malformed %s header", sigName)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return Result{}, fail("malformed %s header", sigName)
	}
	t, err := timestamp(v, ts, tsName, now)
	if err != nil {
		return Result{}, err
	}
	if !matchAny(sha256.New, keys, [][]byte{sig}, []byte("v0:"), []byte(ts), []byte(":"), req.Body) {
		return Result{}, errMismatch
	}
	res := Result{Timestamp: t}
	// Slash commands and interactivity send forms, not JSON: no id there.
	obj := jsonObject(req.Body)
	if jsonString(obj, "type") == "url_verification" {
		c := jsonString(obj, "challenge")
		if !printable(c, maxChallengeBytes) {
			return Result{}, fail("malformed url_verification challenge")
		}
		res.SlackChallenge = c
	}
	// Events API retries repeat event_id (with X-Slack-Retry-Num).
	if id := jsonString(obj, "event_id"); validID(id) {
		res.DeliveryID = id
	} else {
		res.ReplayKey = replayKey("slack", []byte(ts), req.Body)
	}
	return res, nil
}
