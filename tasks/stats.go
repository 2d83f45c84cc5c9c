package tasks

import (
	"context"
	"time"
)

// QueueDepth returns how many messages wait on queue: ready in its list,
// and delayed in its delayed set (an ETA not yet promoted). One round trip.
func (q *Queue) QueueDepth(ctx context.Context, queue string) (ready, delayed int64, err error) {
	return q.rdb.QueueDepth(ctx, queueName(queue))
}

// ConsumersOnline counts the consumers (one per worker process and queue)
// of the Queue's configured queues whose heartbeat deadline has not passed
// at now. One round trip.
func (q *Queue) ConsumersOnline(ctx context.Context, now time.Time) (int64, error) {
	return q.rdb.ConsumersOnline(ctx, q.cfg.Queues, now)
}
