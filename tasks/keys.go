package tasks

import "github.com/orcheo/orcheo"

// Every Redis key is built by package tasks/rdb (tasks/rdb/keys.go lists
// them). A queue is named in
// messages (their RoutingKey) and to machinery by its plain name; the rdb
// layer turns names into hash-tagged keys.

// queueName is queue, or the default queue for "".
func queueName(queue string) string {
	if queue == "" {
		return orcheo.DefaultQueue
	}
	return queue
}
