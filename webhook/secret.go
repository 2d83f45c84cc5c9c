package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/orcheo/orcheo"
)

// verifySecret checks that the header v.Header carries one of the secrets
// as is. Nothing is signed, so a captured request can be replayed, body
// changed, as long as the secret holds: no ReplayKey would help, and none
// is given. Both sides are hashed first so the comparison takes the same
// time whatever the lengths.
func verifySecret(v *orcheo.WebhookVerify, keys [][]byte, req Request) (Result, error) {
	name := strings.ToLower(v.Header)
	if name == "" {
		return Result{}, fail("no secret header configured")
	}
	got, err := header(req.Header, name, name, MaxHeaderBytes)
	if err != nil {
		return Result{}, err
	}
	g := sha256.Sum256([]byte(got))
	ok := 0
	for _, k := range keys {
		w := sha256.Sum256(k)
		ok |= subtle.ConstantTimeCompare(g[:], w[:])
	}
	if ok != 1 {
		return Result{}, fail("secret mismatch")
	}
	return Result{}, nil
}
