package webhook

import (
	"bytes"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

// BenchmarkVerifyStripeWorstCase is the most a request can make Stripe
// verification cost: a 1 MiB body (the server's limit), two secrets during
// a rotation and eight v1 signatures, none matching. The HMACs are per
// secret, not per signature.
func BenchmarkVerifyStripeWorstCase(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1<<20)
	ts := unix(now)
	req := Request{Header: headers("Stripe-Signature", "t="+ts+strings.Repeat(",v1="+hexMAC("x", "y"), MaxSignatures)), Body: body}
	v := &orcheo.WebhookVerify{Type: orcheo.VerifyStripe}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Verify(v, []string{"current-secret", "previous-secret"}, req, now); err == nil {
			b.Fatal("verified")
		}
	}
}
