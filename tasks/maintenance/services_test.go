package maintenance

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// idleDeps are real dependencies on a SQLite store and a Redis that is
// not there (port 1: every command is refused at once), enough to start
// and stop services whose passes fail and are logged.
func idleDeps(tb testing.TB) (orcheo.RunService, orcheo.RunSubmitter, *rdb.RDB) {
	tb.Helper()
	store := openStore(tb, db.BackendSQLite, "")
	client, err := rdb.Open("redis://127.0.0.1:1/0")
	must(tb, err)
	tb.Cleanup(func() { _ = client.Close() })
	r := rdb.New(client, "maintenance-idle")
	s := submit.New(submit.Config{Runs: store.Runs, Queue: testQueue{r}, Logger: testLogger()})
	s.Start(context.Background())
	tb.Cleanup(s.Stop)
	return store.Runs, s, r
}

func TestServices_Defaults(t *testing.T) {
	t.Parallel()
	runs, sub, r := idleDeps(t)
	q := []string{orcheo.DefaultQueue}

	rescuer := NewRescuer(RescuerConfig{Runs: runs, Submitter: sub, RDB: r})
	if c := rescuer.cfg; c.Interval != RescuerIntervalDefault || c.ReenqueueAfter != RescuerReenqueueAfterDefault ||
		c.BatchSize != RescuerBatchSizeDefault || c.Now == nil || c.Logger == nil {
		t.Errorf("rescuer config = %+v, want the defaults", c)
	}
	requeuer := NewRequeuer(RequeuerConfig{Runs: runs, Submitter: sub})
	if c := requeuer.cfg; c.Interval != RequeuerIntervalDefault || c.BatchSize != RequeuerBatchSizeDefault || c.Logger == nil {
		t.Errorf("requeuer config = %+v, want the defaults", c)
	}
	reaper := NewReaper(ReaperConfig{RDB: r, Queues: q})
	if c := reaper.cfg; c.Interval != ReaperIntervalDefault || c.BatchSize != ReaperBatchSizeDefault || c.Now == nil || c.Logger == nil {
		t.Errorf("reaper config = %+v, want the defaults", c)
	}
	promoter := NewPromoter(PromoterConfig{RDB: r, Queues: q})
	if c := promoter.cfg; c.Interval != PromoterIntervalDefault || c.BatchSize != PromoterBatchSizeDefault || c.Now == nil || c.Logger == nil {
		t.Errorf("promoter config = %+v, want the defaults", c)
	}
	if got := RescuerElectorTTL(RescuerIntervalDefault); got != leadership.TTLDefault {
		t.Errorf("elector TTL at the default interval = %s, want %s", got, leadership.TTLDefault)
	}
	if got := RescuerElectorTTL(time.Second); got != time.Second {
		t.Errorf("elector TTL at 1s = %s, want its 1s floor", got)
	}
}

// TestServices_ProgrammerErrors: a missing dependency or a negative value
// panics in the constructor, not later in a goroutine.
func TestServices_ProgrammerErrors(t *testing.T) {
	t.Parallel()
	runs, sub, r := idleDeps(t)
	for name, build := range map[string]func(){
		"RescuerWithoutRDB":     func() { NewRescuer(RescuerConfig{Runs: runs, Submitter: sub}) },
		"RescuerNegative":       func() { NewRescuer(RescuerConfig{Runs: runs, Submitter: sub, RDB: r, BatchSize: -1}) },
		"RequeuerWithoutRuns":   func() { NewRequeuer(RequeuerConfig{Submitter: sub}) },
		"ReaperWithoutQueues":   func() { NewReaper(ReaperConfig{RDB: r}) },
		"ReaperNegative":        func() { NewReaper(ReaperConfig{RDB: r, Queues: []string{"q"}, Interval: -time.Second}) },
		"PromoterWithoutRDB":    func() { NewPromoter(PromoterConfig{Queues: []string{"q"}}) },
		"PromoterWithoutQueues": func() { NewPromoter(PromoterConfig{RDB: r}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			build()
		})
	}
}

// TestServices_StartStop: every service tolerates Stop without Start, two
// Starts, two Stops and concurrent Starts and Stops, and starts again
// after a Stop (the rescuer does, each time its worker leads again).
func TestServices_StartStop(t *testing.T) {
	t.Parallel()
	runs, sub, r := idleDeps(t)
	q := []string{orcheo.DefaultQueue}
	fast := 5 * time.Millisecond
	for name, svc := range map[string]startstop.Service{
		"Rescuer":  NewRescuer(RescuerConfig{Runs: runs, Submitter: sub, RDB: r, Interval: fast, Logger: testLogger()}),
		"Requeuer": NewRequeuer(RequeuerConfig{Runs: runs, Submitter: sub, Interval: fast, Logger: testLogger()}),
		"Reaper":   NewReaper(ReaperConfig{RDB: r, Queues: q, Interval: fast, Logger: testLogger()}),
		"Promoter": NewPromoter(PromoterConfig{RDB: r, Queues: q, Interval: fast, Logger: testLogger()}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc.Stop()
			svc.Stop()
			svc.Start(ctx)
			svc.Start(ctx)
			svc.Stop()
			svc.Stop()
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(2)
				go func() { defer wg.Done(); svc.Start(ctx) }()
				go func() { defer wg.Done(); svc.Stop() }()
			}
			wg.Wait()
			svc.Stop()
			// A cancelled parent context stops the goroutine too; Stop
			// then returns at once.
			cctx, cancel := context.WithCancel(ctx)
			svc.Start(cctx)
			cancel()
			svc.Stop()
		})
	}
}
