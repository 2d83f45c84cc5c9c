package rules

import "github.com/orcheo/orcheo"

// Transition kinds of retries and cancel requests written to run_events.
const (
	EventRetryScheduled  = "retry_scheduled"
	EventRetried         = "retried"
	EventCancelRequested = "cancel_requested"
)

// NotRetryable is the ECONFLICT for retrying a run that is not failed or
// cancelled.
func NotRetryable(id string, status orcheo.RunStatus) error {
	return orcheo.Errorf(orcheo.ECONFLICT, "run %s is %s; only a failed or cancelled run can be retried", id, status)
}
