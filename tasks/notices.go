package tasks

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// heedNotices subscribes to channel on client (pub/sub takes a connection
// of its own from the process's one client; go-redis resubscribes by
// itself after a loss) and launches the goroutine that calls heard with
// each message's payload and tick every interval, until ctx ends; then it
// closes the subscription and calls stopped. A notice acts at once; the
// tick catches what a lost notice missed, since pub/sub delivers at most
// once. Used by the cancel listener and the worker registry.
func heedNotices(ctx context.Context, client redis.UniversalClient, channel string, every time.Duration,
	heard func(payload string), tick func(ctx context.Context), stopped func()) {
	sub := client.Subscribe(ctx, channel)
	go func() {
		defer stopped()
		defer sub.Close()
		notices := sub.Channel()
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-notices:
				if !ok {
					return
				}
				heard(msg.Payload)
			case <-ticker.C:
				tick(ctx)
			}
		}
	}()
}
