package rules

import (
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

// Event is one run_events row: the audit trail of a run's transitions,
// which the root interfaces do not expose. Backends return them from
// FindRunEvents for the conformance suite.
type Event struct {
	At      time.Time
	Kind    string
	Message string
}

// EventSkipped is the run_events kind of a cron slot recorded as skipped
// (CreateSkippedRun); its message is the reason.
const EventSkipped = "skipped"

// Messages of the cancel transitions (CancelRun).
const (
	CancelledPendingMessage = "cancelled while pending"
	CancelRequestedMessage  = "cancel requested while running"
)

// EventMessageMax is how many bytes of an attempt's error a completion
// event keeps; the run row keeps all of it.
const EventMessageMax = 1000

// CreatedMessage is the message of a run's "created" event.
func CreatedMessage(triggeredBy string) string { return "triggered by " + triggeredBy }

// CompletionMessage is the message of the event CompleteRun writes for
// attempt ending with status and errText (already sanitised): the error,
// cut to EventMessageMax bytes on a rune boundary, or nothing on success.
func CompletionMessage(attempt int, status orcheo.RunStatus, errText string) string {
	if status == orcheo.RunSucceeded {
		errText = ""
	}
	return fmt.Sprintf("attempt %d: %s", attempt, orcheo.TruncateText(errText, EventMessageMax))
}

// CompletionEvent is the kind of the event CompleteRun writes when the run
// ends up with status: pending means the failed attempt was scheduled for a
// retry; otherwise the kind is the final status.
func CompletionEvent(status orcheo.RunStatus) string {
	switch status {
	case orcheo.RunPending:
		return EventRetryScheduled
	case orcheo.RunSucceeded:
		return EventSucceeded
	case orcheo.RunFailed:
		return EventFailed
	case orcheo.RunCancelled:
		return EventCancelled
	}
	return string(status)
}

// WantsRetry reports whether completion c asks for another attempt: a
// failure with a RetryAt. The store grants it only while no cancel was
// requested and AttemptsLeft holds.
func WantsRetry(c orcheo.RunCompletion) bool { return c.RetryAt != nil && c.Status == orcheo.RunFailed }

// AttemptsLeft is the SQL condition, valid in both dialects against the
// runs row being updated, that the run has an attempt left: attempts handed
// back (released or suspended) do not count. CompleteRun's retry and
// RescueExpiredRuns both apply it.
const AttemptsLeft = `(attempt - released_attempts < max_attempts)`
