package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Retry limits.
const (
	maxRetryAttempts   = 10
	defaultRetryDelay  = time.Second
	maxRetryBackoff    = time.Minute
	retryField         = "retry"
	retryAttemptsField = "retry.max_attempts"
	retryBackoffField  = "retry.backoff"
)

// retryPolicy is a node's `retry` option: up to maxAttempts tries in all,
// waiting backoff, then twice that, … (at most maxRetryBackoff) between
// tries. Only transient failures are retried. The zero value tries once.
type retryPolicy struct {
	maxAttempts int
	backoff     time.Duration
	backoffText string
}

// parseRetry reads {max_attempts, backoff}. It returns the field at fault
// with the error.
func parseRetry(raw json.RawMessage) (retryPolicy, string, error) {
	m, ok := object(raw)
	if !ok {
		return retryPolicy{}, retryField, errors.New("must be an object {max_attempts, backoff}")
	}
	if err := checkKeys(m, []string{"max_attempts", "backoff"}, func(k string) error {
		return fmt.Errorf("unknown key %q (want \"max_attempts\", \"backoff\")", k)
	}); err != nil {
		return retryPolicy{}, retryField, err
	}
	r := retryPolicy{backoff: defaultRetryDelay}
	rawN, ok := m["max_attempts"]
	if !ok {
		return retryPolicy{}, retryAttemptsField, errors.New("required")
	}
	if json.Unmarshal(rawN, &r.maxAttempts) != nil || r.maxAttempts < 1 || r.maxAttempts > maxRetryAttempts {
		return retryPolicy{}, retryAttemptsField, fmt.Errorf("must be a whole number from 1 to %d", maxRetryAttempts)
	}
	if rawB, ok := m["backoff"]; ok {
		d, text, err := parseTimeout(rawB)
		if err != nil {
			return retryPolicy{}, retryBackoffField, err
		}
		if d > maxRetryBackoff {
			return retryPolicy{}, retryBackoffField, fmt.Errorf("must be at most %s", maxRetryBackoff)
		}
		r.backoff, r.backoffText = d, text
	}
	return r, "", nil
}

// tries is how many times the node may run.
func (r retryPolicy) tries() int {
	if r.maxAttempts < 1 {
		return 1
	}
	return r.maxAttempts
}

// delay is the wait before try n+1 after try n (n from 1).
func (r retryPolicy) delay(n int) time.Duration {
	d := r.backoff
	for i := 1; i < n && d < maxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, maxRetryBackoff)
}

func (r retryPolicy) canonical() map[string]any {
	m := map[string]any{"max_attempts": r.maxAttempts}
	if r.backoffText != "" {
		m["backoff"] = r.backoffText
	}
	return m
}

// transientError marks a failure worth retrying: a network error, a
// timeout of one try, a 5xx/429 answer.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient marks err as a transient failure, which a node's `retry` option
// retries. Node types call it for failures that may pass on their own.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err}
}

// isTransient reports whether err was marked Transient, or is the node's
// own timeout (a try that took too long may be quicker next time).
func isTransient(err error) bool {
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var to *timeoutError
	return errors.As(err, &to) && to.scope == "node"
}
