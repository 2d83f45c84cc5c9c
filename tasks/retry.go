package tasks

import (
	"encoding/json"
	"time"

	"github.com/orcheo/orcheo"
)

// retryAt decides whether a failed attempt of run gets another one, and
// when: it returns nil for a failure another attempt cannot fix — one
// marked orcheo.Permanent (a `fail` node, an expression error) or an
// EINVALID definition — and when the run's attempts are used up
// (released attempts do not count). Otherwise the wait is the backoff of
// the version's retry policy (definition may be nil when the version could
// not be loaded: the default backoff applies). Timeouts and every other
// failure are transient. The store applies the same attempt check, so a
// late decision cannot over-retry.
func retryAt(run *orcheo.Run, definition json.RawMessage, failure error, now time.Time) *time.Time {
	if orcheo.IsPermanent(failure) || orcheo.ErrorCode(failure) == orcheo.EINVALID {
		return nil
	}
	used := run.Attempt - run.ReleasedAttempts
	if used >= run.MaxAttempts {
		return nil
	}
	policy := orcheo.RetryPolicy{Backoff: orcheo.RetryBackoffDefault, MaxBackoff: orcheo.RetryMaxBackoffDefault}
	if definition != nil {
		if p, err := orcheo.RetryPolicyOf(definition); err == nil {
			policy = p
		}
	}
	at := now.Add(policy.Delay(used))
	return &at
}
