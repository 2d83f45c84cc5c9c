package maintenance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// TestPromoter_MovesDueMessages: messages whose ETA came move to the end
// of their queue, oldest ETA first, all of them in one pass whatever
// BatchSize; those not yet due stay delayed.
func TestPromoter_MovesDueMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRDB(t, testenv.RedisURL(t))
	const q = "default"
	now := time.Now()
	publishIDs(t, r, q, "ready")
	var msgs []rdb.Message
	for i, id := range []string{"due1", "due2", "due3", "later"} {
		eta := now.Add(time.Duration(i+1) * time.Second)
		if id == "later" {
			eta = now.Add(time.Hour)
		}
		msgs = append(msgs, rdb.Message{Queue: q, Body: id, RunID: id, ETA: eta})
	}
	for _, err := range r.Publish(ctx, now, false, msgs...) {
		must(t, err)
	}
	p := NewPromoter(PromoterConfig{RDB: r, Queues: []string{q}, BatchSize: 2, Logger: testLogger(),
		Now: func() time.Time { return now.Add(time.Minute) }})
	must(t, p.runOnce(ctx))
	if got := list(t, r, r.QueueKey(q)); !slices.Equal(got, []string{"ready", "due1", "due2", "due3"}) {
		t.Fatalf("queue = %v, want the due messages after the ready one, in ETA order", got)
	}
	if p.Promoted() != 3 {
		t.Fatalf("promoted %d, want 3", p.Promoted())
	}
	if n, err := r.Client().ZCard(ctx, r.DelayedKey(q)).Result(); err != nil || n != 1 {
		t.Fatalf("delayed = %d (%v), want the one not due", n, err)
	}
}
