package rules

// WorkerLost is the error of a run failed by the rescuer: its worker
// stopped renewing the lease and no attempt was left.
const WorkerLost = "worker lost"

// Lease transition kinds written to run_events.
const (
	EventReleased = "released" // a worker shutting down handed the attempt back
	EventRescued  = "rescued"  // the lease expired; the run is pending again
)
