package orcheo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"
)

// Retry policy limits and defaults.
const (
	RetryMaxAttemptsLimit    = 100
	RetryBackoffDefault      = time.Second
	RetryMaxBackoffDefault   = 5 * time.Minute
	retryBackoffMin          = 10 * time.Millisecond
	retryMaxBackoffUpperEdge = 24 * time.Hour
)

// RetryPolicy is a workflow version's top-level `retry` object: how many
// attempts a run gets and how long it waits between them. The zero value
// means one attempt, no retry.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included (1-100; 0 or
	// absent means 1).
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; each later wait
	// doubles, up to MaxBackoff.
	Backoff time.Duration
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration
}

// retryDoc is the JSON form of a RetryPolicy; durations are Go duration
// strings ("1s", "1m30s").
type retryDoc struct {
	MaxAttempts *int    `json:"max_attempts"`
	Backoff     *string `json:"backoff"`
	MaxBackoff  *string `json:"max_backoff"`
}

// ParseRetryPolicy reads a `retry` object. Unknown keys, a max_attempts
// outside 1-100 and durations that do not parse or are out of range are
// EINVALID, with a message naming the key.
func ParseRetryPolicy(raw json.RawMessage) (RetryPolicy, error) {
	p := RetryPolicy{MaxAttempts: 1, Backoff: RetryBackoffDefault, MaxBackoff: RetryMaxBackoffDefault}
	if len(raw) == 0 || string(raw) == "null" {
		return p, nil
	}
	var doc retryDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return p, Errorf(EINVALID, `field "retry": must be an object with max_attempts, backoff and max_backoff (%s)`, err)
	}
	if doc.MaxAttempts != nil {
		if *doc.MaxAttempts < 1 || *doc.MaxAttempts > RetryMaxAttemptsLimit {
			return p, Errorf(EINVALID, `field "retry.max_attempts": must be 1-%d, got %d`, RetryMaxAttemptsLimit, *doc.MaxAttempts)
		}
		p.MaxAttempts = *doc.MaxAttempts
	}
	var err error
	if doc.Backoff != nil {
		if p.Backoff, err = retryDuration("backoff", *doc.Backoff); err != nil {
			return p, err
		}
	}
	if doc.MaxBackoff != nil {
		if p.MaxBackoff, err = retryDuration("max_backoff", *doc.MaxBackoff); err != nil {
			return p, err
		}
	} else if p.Backoff > p.MaxBackoff {
		p.MaxBackoff = p.Backoff
	}
	if p.MaxBackoff < p.Backoff {
		return p, Errorf(EINVALID, `field "retry.max_backoff": must not be shorter than backoff`)
	}
	return p, nil
}

func retryDuration(key, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, Errorf(EINVALID, `field "retry.%s": %q is not a duration such as "1s" or "2m"`, key, s)
	}
	if d < retryBackoffMin || d > retryMaxBackoffUpperEdge {
		return 0, Errorf(EINVALID, `field "retry.%s": must be between %s and %s`, key, retryBackoffMin, retryMaxBackoffUpperEdge)
	}
	return d, nil
}

// RetryPolicyOf returns the policy of a stored (compiled) definition: its
// top-level `retry` object, or the one-attempt default.
func RetryPolicyOf(definition json.RawMessage) (RetryPolicy, error) {
	var top struct {
		Retry json.RawMessage `json:"retry"`
	}
	if err := json.Unmarshal(definition, &top); err != nil {
		return RetryPolicy{MaxAttempts: 1}, Errorf(EINVALID, "definition is not a JSON object")
	}
	return ParseRetryPolicy(top.Retry)
}

// Delay returns the wait before the attempt after failed attempt n (n >= 1):
// Backoff·2^(n-1), capped at MaxBackoff, with "equal jitter" — a uniformly
// random value between half of that and all of it — so that runs failing
// together do not retry together.
func (p RetryPolicy) Delay(n int) time.Duration {
	d := p.Backoff
	if d <= 0 {
		d = RetryBackoffDefault
	}
	max := p.MaxBackoff
	if max < d {
		max = d
	}
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Permanent marks err as a failure that another attempt cannot fix (a
// `fail` node, an expression error), so the run is not retried. Nil stays
// nil. The message is err's own.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// CancelNotifier tells the worker executing a run that its cancel was
// requested, so the run's context is cancelled at once. The database flag
// (Run.CancelRequested) stays the source of truth: a lost notice is made
// up for by the worker's periodic check. Implemented by tasks/ on Redis
// pub/sub.
type CancelNotifier interface {
	NotifyCancel(ctx context.Context, runID string) error
}
