// Package maintenance holds the services that return lost work to the
// queues, after River's internal/maintenance: each is small, built from
// plain dependencies (the root's RunService and RunSubmitter, the Redis
// layer's *rdb.RDB, configuration values), started and stopped the same
// way (startstop.Service: Start(ctx) launches one goroutine, Stop cancels
// it and waits; both idempotent, Stop safe without Start) and tested
// alone against real PostgreSQL, SQLite and Redis.
//
//   - Rescuer (leader worker only): runs whose lease expired go back to
//     pending at the front of their queues, or fail as "worker lost";
//     pending runs whose message Redis lost are published again.
//   - Requeuer (every API process): runs whose publish failed
//     (MarkRunUnenqueued) are published again.
//   - Reaper (every worker, for its queues): the processing lists of dead
//     consumers go back to the front of their queues.
//   - Promoter (every worker, for its queues): delayed messages whose ETA
//     came are moved to the end of their queues.
//
// Each service's Start makes a pass at once, then one every interval;
// errors are logged, never returned, so a Redis or database outage only
// delays the next pass. runOnce makes one bounded pass, so tests call it
// directly. The package imports the root, tasks/rdb and tasks/leadership
// (for the rescuer's leadership TTL), never tasks, which starts these
// services: the worker (tasks/worker.go) the rescuer, reaper and
// promoter, cmd/orcheo's api the requeuer.
package maintenance

import "github.com/orcheo/orcheo"

// queueName is queue, or the default queue for "" (a run stored without
// one).
func queueName(queue string) string {
	if queue == "" {
		return orcheo.DefaultQueue
	}
	return queue
}

// published counts the nil errors of a PublishRuns and returns the first
// other one.
func published(errs []error) (int, error) {
	n := 0
	var first error
	for _, err := range errs {
		if err == nil {
			n++
		} else if first == nil {
			first = err
		}
	}
	return n, first
}
