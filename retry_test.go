package orcheo_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

func TestRetryPolicyDelay(t *testing.T) {
	p, err := orcheo.ParseRetryPolicy([]byte(`{"max_attempts":10,"backoff":"1s","max_backoff":"5s"}`))
	if err != nil {
		t.Fatal(err)
	}
	// Backoff doubles per failed attempt up to the cap, with equal jitter:
	// between half the wait and all of it.
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 9: 5 * time.Second} {
		for range 20 {
			if d := p.Delay(n); d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %s, want %s-%s", n, d, full/2, full)
			}
		}
	}
	if d, _ := orcheo.ParseRetryPolicy(nil); d.MaxAttempts != 1 {
		t.Fatalf("default policy %+v, want one attempt", d)
	}
	if d, _ := orcheo.ParseRetryPolicy([]byte(`{"backoff":"10m"}`)); d.MaxBackoff != 10*time.Minute {
		t.Fatalf("max_backoff %s, want it raised to the backoff", d.MaxBackoff)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("no")
	err := fmt.Errorf("node %q: %w", "a", orcheo.Permanent(base))
	if !orcheo.IsPermanent(err) || !errors.Is(err, base) || err.Error() != `node "a": no` {
		t.Fatalf("wrapped permanent error %v", err)
	}
	if orcheo.IsPermanent(base) || orcheo.Permanent(nil) != nil {
		t.Fatal("unmarked error reported permanent")
	}
}
