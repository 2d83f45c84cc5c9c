package beat_test

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/schedule"
)

// fakeFeed is an orcheo.ChangeFeed whose events the test sends.
type fakeFeed struct{ events chan orcheo.ChangeEvent }

func newFakeFeed() *fakeFeed { return &fakeFeed{events: make(chan orcheo.ChangeEvent)} }

func (f *fakeFeed) Publish(ctx context.Context, workflowID string) error {
	f.events <- orcheo.ChangeEvent{Kind: orcheo.ChangeWorkflow, WorkflowID: workflowID}
	return nil
}

func (f *fakeFeed) Subscribe(ctx context.Context) <-chan orcheo.ChangeEvent {
	out := make(chan orcheo.ChangeEvent)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// TestChangeFeed_ReloadsAtOnce: with the periodic reload an hour away, a
// change heard on the feed reloads the triggers within a few tens of
// milliseconds, so a trigger set a moment ago gets its timer (and its
// first slot) at once; a deleted one loses it. A (re)connection reloads
// too, since changes may have been missed while the feed was down; a
// disconnection does not.
func TestChangeFeed_ReloadsAtOnce(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	feed := newFakeFeed()
	b := beat.New(beat.Config{API: api, Scheduler: schedule.Scheduler{Seconds: true}, Interval: time.Hour,
		ReloadInterval: time.Hour, Changes: feed, Logger: quiet()})
	b.Start(context.Background())
	defer b.Stop()
	waitFor(t, "the start-up reload", func() bool { return api.reloads() == 1 })

	api.setTriggers(&orcheo.CronTrigger{WorkflowID: "w", Expression: "* * * * * *", UpdatedAt: time.Now()})
	changed := time.Now()
	_ = feed.Publish(context.Background(), "w")
	waitFor(t, "a reload after the change", func() bool { return b.Status().Triggers == 1 })
	if took := time.Since(changed); took > 500*time.Millisecond {
		t.Fatalf("the change was loaded %s after it was heard", took)
	}
	dispatches := b.Status().Dispatches
	waitFor(t, "the new trigger's slot to dispatch", func() bool { return b.Status().Dispatches >= dispatches+2 })

	api.setTriggers()
	feed.events <- orcheo.ChangeEvent{Kind: orcheo.ChangeDisconnected}
	time.Sleep(400 * time.Millisecond)
	if n := b.Status().Triggers; n != 1 {
		t.Fatalf("a disconnection reloaded the triggers (%d now)", n)
	}
	feed.events <- orcheo.ChangeEvent{Kind: orcheo.ChangeConnected}
	waitFor(t, "a reload after the reconnection", func() bool { return b.Status().Triggers == 0 })
}

// TestChangeFeed_ReloadsBounded: a burst of changes (every change of any
// workflow is heard) costs a few reloads, at most one per 250 ms, not one
// each.
func TestChangeFeed_ReloadsBounded(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{}
	feed := newFakeFeed()
	b := beat.New(beat.Config{API: api, Scheduler: schedule.Scheduler{}, Interval: time.Hour,
		ReloadInterval: time.Hour, Changes: feed, Logger: quiet()})
	b.Start(context.Background())
	defer b.Stop()
	waitFor(t, "the start-up reload", func() bool { return api.reloads() == 1 })
	start := time.Now()
	for time.Since(start) < time.Second {
		_ = feed.Publish(context.Background(), "w")
		time.Sleep(time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the last one's reload
	// One second of changes: at most one reload per 250 ms gap, plus the
	// one asked for by the last change.
	if n := api.reloads() - 1; n < 1 || n > 6 {
		t.Fatalf("%d reloads for a second of changes, want 1 to 6", n)
	}
}
