package rdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
)

// BenchmarkBrokerPerMessage is the broker's Redis work per run: publish,
// take and ack of one message, on a private redis-server. batch=1 is one
// message per call (a quiet queue: three round trips); batch=10 publishes,
// takes and acks ten per call, as the Queue's EnqueueRuns, a consumer
// with ten free slots and its acker do under load. ns/op is per message.
func BenchmarkBrokerPerMessage(b *testing.B) {
	rs := testenv.StartRedis(b)
	c, err := Open(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := New(c, "bench")
	ctx := context.Background()
	if _, err := r.Heartbeat(ctx, "default", "c", time.Now(), time.Hour); err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			msgs := make([]Message, batch)
			acks := make([]Ack, batch)
			for i := 0; i < b.N; i += batch {
				for j := range msgs {
					n := i + j
					body := fmt.Sprintf(`{"UUID":"bench:task:%d","Name":"execute_run","RoutingKey":"default","Args":[{"Name":"run_id","Type":"string","Value":"run-%d"}]}`, n, n)
					msgs[j] = Message{Queue: "default", Body: body, RunID: fmt.Sprint("run-", n)}
					acks[j] = Ack{Body: body, RunID: msgs[j].RunID}
				}
				for _, err := range r.Publish(ctx, time.Now(), false, msgs...) {
					if err != nil {
						b.Fatal(err)
					}
				}
				got, err := r.Take(ctx, "default", "c", batch)
				if err != nil || len(got) != batch {
					b.Fatal(len(got), err)
				}
				if n, err := r.Ack(ctx, "default", "c", acks...); err != nil || n != batch {
					b.Fatal(n, err)
				}
			}
		})
	}
}
