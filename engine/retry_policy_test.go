package engine_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
)

// TestCompileRetryPolicy checks the top-level retry key: kept in the
// canonical form (keys sorted) and validated with messages naming the key.
func TestCompileRetryPolicy(t *testing.T) {
	e := engine.New(engine.Options{})
	got, err := e.Compile([]byte("retry:\n  max_backoff: 1m\n  max_attempts: 3\n  backoff: 1s\nnodes:\n  - {id: a, type: log, message: '\"hi\"'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"retry":{"backoff":"1s","max_attempts":3,"max_backoff":"1m"}`) {
		t.Fatalf("canonical form %s lacks the retry policy", got)
	}
	p, err := orcheo.RetryPolicyOf(got)
	if err != nil || p.MaxAttempts != 3 {
		t.Fatalf("policy %+v, %v", p, err)
	}
	if again, err := e.Compile(got); err != nil || string(again) != string(got) {
		t.Fatalf("recompiling the canonical form: %s, %v", again, err)
	}
	for def, want := range map[string]string{
		`{"retry":{"max_attempts":0},"nodes":[{"id":"a","type":"log","message":"1"}]}`:                  `field "retry.max_attempts": must be 1-100, got 0`,
		`{"retry":{"backoff":"soon"},"nodes":[{"id":"a","type":"log","message":"1"}]}`:                  `field "retry.backoff": "soon" is not a duration`,
		`{"retry":{"tries":2},"nodes":[{"id":"a","type":"log","message":"1"}]}`:                         `field "retry": must be an object`,
		`{"retry":{"backoff":"1m","max_backoff":"1s"},"nodes":[{"id":"a","type":"log","message":"1"}]}`: `field "retry.max_backoff": must not be shorter than backoff`,
	} {
		_, err := e.Compile([]byte(def))
		if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), want) {
			t.Errorf("%s: error %v, want %q", def, err, want)
		}
	}
	var noRetry json.RawMessage
	if noRetry, err = e.Compile([]byte(`{"nodes":[{"id":"a","type":"log","message":"1"}]}`)); err != nil {
		t.Fatal(err)
	}
	if p, err := orcheo.RetryPolicyOf(noRetry); err != nil || p.MaxAttempts != 1 {
		t.Fatalf("default policy %+v, %v", p, err)
	}
}
