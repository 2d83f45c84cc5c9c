package orcheo

import "context"

// ChangeKind says what a ChangeEvent reports.
type ChangeKind int

const (
	// ChangeWorkflow: the workflow ChangeEvent.WorkflowID changed (its
	// record, versions, archive state or webhook config).
	ChangeWorkflow ChangeKind = iota + 1
	// ChangeConnected: the subscription is (again) receiving every change
	// published from now on. Changes published while it was down are lost,
	// so a subscriber drops everything it derived from them.
	ChangeConnected
	// ChangeDisconnected: the subscription lost its connection; changes
	// published from now until the next ChangeConnected are not delivered.
	ChangeDisconnected
)

// ChangeEvent is one event of a ChangeFeed subscription.
type ChangeEvent struct {
	Kind ChangeKind
	// WorkflowID is set for ChangeWorkflow.
	WorkflowID string
}

// ChangeFeed carries the news that a workflow changed between the API
// processes serving one database, so that each can drop what it cached of
// it. The database stays the only source of truth: a feed never carries
// data, only ids, and a lost message costs staleness, never a wrong write.
// Implemented by tasks.ChangeFeed on Redis pub/sub; safe for concurrent use.
type ChangeFeed interface {
	// Publish tells every subscriber, in every process (this one included),
	// that workflowID changed. Call it after the change is committed. An
	// error means the news may not have reached anyone; the change itself
	// stands.
	Publish(ctx context.Context, workflowID string) error

	// Subscribe delivers events until ctx is done, then closes the
	// channel. The first event is ChangeConnected once the subscription
	// is in place; from then on each lost connection is reported as
	// ChangeDisconnected, and each new one as ChangeConnected. Events are
	// never dropped: a reader that stops reading stops the subscription's
	// goroutine, which the implementation owns.
	Subscribe(ctx context.Context) <-chan ChangeEvent
}
