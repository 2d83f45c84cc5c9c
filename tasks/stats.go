package tasks

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueDepth returns how many messages wait on queue: ready in its list,
// and delayed in its delayed set (an ETA not yet promoted). One round trip.
func (q *Queue) QueueDepth(ctx context.Context, queue string) (ready, delayed int64, err error) {
	key := q.cfg.queueKey(queue)
	var llen, zcard *redis.IntCmd
	_, err = q.broker.rdb.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		llen = p.LLen(ctx, key)
		zcard = p.ZCard(ctx, delayedKey(key))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("queue depth of %s: %w", queue, err)
	}
	return llen.Val(), zcard.Val(), nil
}

// ConsumersOnline counts the consumers (one per worker process and queue)
// whose heartbeat deadline has not passed at now.
func (q *Queue) ConsumersOnline(ctx context.Context, now time.Time) (int64, error) {
	n, err := q.broker.rdb.client.ZCount(ctx, q.cfg.consumersKey(), strconv.FormatInt(ms(now), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("count consumers online: %w", err)
	}
	return n, nil
}
