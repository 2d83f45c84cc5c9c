package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// verifyGitHub checks X-Hub-Signature-256: sha256=<hex>, the HMAC-SHA256
// of the raw body. GitHub signs no timestamp and not the delivery id, so
// the id is only as trustworthy as the header it came in.
func verifyGitHub(keys [][]byte, req Request) (Result, error) {
	const name = "X-Hub-Signature-256"
	value, err := header(req.Header, name, name, MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	hexSig, ok := strings.CutPrefix(value, "sha256=")
	if !ok {
		return Result{}, fail("malformed %s header", name)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return Result{}, fail("malformed %s header", name)
	}
	if !matchAny(sha256.New, keys, [][]byte{sig}, req.Body) {
		return Result{}, errMismatch
	}
	var res Result
	if len(req.Header.Values("X-GitHub-Delivery")) > 0 {
		id, err := header(req.Header, "X-GitHub-Delivery", "X-GitHub-Delivery", MaxDeliveryIDBytes)
		if err != nil {
			return Result{}, err
		}
		if !validID(id) {
			return Result{}, fail("malformed X-GitHub-Delivery header")
		}
		res.DeliveryID = id
	}
	// GitHub signs only the body, not X-GitHub-Delivery: the server must
	// see the same body again under another delivery id as a replay, so
	// the key is set with a delivery id too.
	res.ReplayKey = replayKey("github", req.Body)
	return res, nil
}
