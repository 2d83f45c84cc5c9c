package maintenance

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestRequeuer_PublishesOnceRedisAnswers: a run whose publish failed
// (marked unenqueued) is handed back by a pass while Redis is down, and
// published by the first pass once Redis answers; on both stores
// (PostgreSQL claims with FOR UPDATE SKIP LOCKED).
func TestRequeuer_PublishesOnceRedisAnswers(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{db.BackendSQLite, db.BackendPostgres} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rs := testenv.StartRedis(t)
			e := newEnv(t, backend, "maintenance_requeue", rs.URL())
			rs.Kill()
			run := e.createRun(t, okDefinition)
			must(t, e.store.Runs.MarkRunUnenqueued(ctx, run.ID))

			r := NewRequeuer(RequeuerConfig{Runs: e.store.Runs, Submitter: e.submitter, Interval: 20 * time.Millisecond, Logger: testLogger()})
			r.passDone = make(chan requeueResult)
			r.Start(ctx)
			t.Cleanup(r.Stop)
			if res := <-r.passDone; res.Failed != 1 || res.Enqueued != 0 {
				t.Fatalf("pass with Redis down = %+v, want 1 failed", res)
			}
			rs.Start()
			for res := range r.passDone {
				if res.Enqueued == 1 {
					break
				}
			}
			r.Stop()
			if got := counts(t, e.rdb, orcheo.DefaultQueue, run.ID); got[0] != 1 {
				t.Fatalf("message count = %d, want the run published once", got[0])
			}
			got, err := e.store.Runs.FindRunByID(ctx, run.ID)
			must(t, err)
			if got.EnqueuedAt == nil {
				t.Fatal("the published run is not stamped enqueued")
			}
			// Nothing left to requeue.
			res, err := r.runOnce(ctx)
			if err != nil || res != (requeueResult{}) {
				t.Fatalf("pass after = %+v, %v; want nothing", res, err)
			}
		})
	}
}
