package orcheo

import (
	"context"
	"time"
)

// Worker states, as a worker reports them in its registry record.
const (
	WorkerOnline   = "online"   // consuming its queues
	WorkerDraining = "draining" // stopped fetching; finishing its runs in flight
)

// Kinds of scheduled runs (ScheduledRun.Kind).
const (
	ScheduledRetry     = "retry"     // an attempt failed and another is due
	ScheduledSuspended = "suspended" // parked at a long delay node
	ScheduledDelayed   = "delayed"   // a message with an ETA whose run is neither (a claim retried later)
)

// WorkerNameMax bounds a worker's name (orcheo worker -n).
const WorkerNameMax = 128

// WorkerInfo is what a worker process reports about itself on each
// heartbeat: who it is, what it consumes, what it executes now and what
// it has done since it started.
type WorkerInfo struct {
	// Name is the operator's name for the process (orcheo worker -n),
	// unique among online workers; default "<host>-<pid>".
	Name string `json:"name"`
	// ID is the worker's id in runs.worker_id, unique across restarts.
	ID          string   `json:"id"`
	Host        string   `json:"host"`
	PID         int      `json:"pid"`
	State       string   `json:"state"` // WorkerOnline or WorkerDraining
	Queues      []string `json:"queues"`
	Concurrency int      `json:"concurrency"`
	// Active are the runs the worker executes (claimed, not yet settled).
	Active []ActiveRun `json:"active"`
	// Reserved are messages the worker took from its queues whose run it
	// has not started yet.
	Reserved      []ReservedMessage `json:"reserved"`
	StartedAt     time.Time         `json:"started_at"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	Stats         WorkerStats       `json:"stats"`
}

// ActiveRun is one run a worker executes.
type ActiveRun struct {
	RunID      string    `json:"run_id"`
	WorkflowID string    `json:"workflow_id"`
	Queue      string    `json:"queue"`
	Attempt    int       `json:"attempt"`
	Since      time.Time `json:"since"` // when this worker claimed it
}

// ReservedMessage is a message a worker holds whose run has not started.
type ReservedMessage struct {
	RunID string `json:"run_id"`
	Queue string `json:"queue"`
}

// WorkerStats counts a worker's attempts since it started.
type WorkerStats struct {
	Processed int64 `json:"processed"` // attempts whose result was stored
	Failed    int64 `json:"failed"`    // of which failed (retried or not)
	Retried   int64 `json:"retried"`   // of which were granted another attempt
	Pool      int   `json:"pool"`      // execution slots (the concurrency)
}

// ScheduledRun is a run waiting for its due time: a retry after a failed
// attempt, or a run suspended at a long delay.
type ScheduledRun struct {
	RunID      string    `json:"run_id"`
	WorkflowID string    `json:"workflow_id,omitempty"`
	Queue      string    `json:"queue"`
	Kind       string    `json:"kind"` // ScheduledRetry, ScheduledSuspended or ScheduledDelayed
	Attempt    int       `json:"attempt,omitempty"`
	DueAt      time.Time `json:"due_at"`
}

// DelayedMessage is a message in a queue's delayed set: the run it
// carries and when it is due.
type DelayedMessage struct {
	RunID string
	Queue string
	DueAt time.Time
}

// WorkerService is what operators see of the workers and how they act on
// them (orcheo workers, inspect, control). Implemented by tasks/ on Redis.
type WorkerService interface {
	// Workers returns the workers online (a heartbeat within the consumer
	// TTL), by name.
	Workers(ctx context.Context) ([]*WorkerInfo, error)

	// Delayed returns up to limit messages waiting in the delayed sets of
	// the queues of the online workers and of queues, soonest first.
	Delayed(ctx context.Context, queues []string, limit int) ([]DelayedMessage, error)

	// Shutdown asks the named online workers, or every online worker when
	// names is empty, to drain and exit as on SIGTERM, and returns the
	// names it told. Returns ENOTFOUND, telling none, if a name is not
	// online.
	Shutdown(ctx context.Context, names []string) ([]string, error)
}

// CheckWorkerName returns EINVALID unless name is 1 to WorkerNameMax
// characters of letters, digits, '.', '_', '-' and '@' (Celery's
// "worker1@host"): no braces, colons or spaces that would change the
// Redis keys it is part of.
func CheckWorkerName(name string) error {
	if name == "" || len(name) > WorkerNameMax {
		return Errorf(EINVALID, "worker name must be 1-%d characters", WorkerNameMax)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
		default:
			return Errorf(EINVALID, "worker name %q may hold only letters, digits, '.', '_', '-' and '@'", name)
		}
	}
	return nil
}
