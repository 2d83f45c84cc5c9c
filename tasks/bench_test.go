package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// BenchmarkEnqueueExecute measures runs per second from EnqueueRun to a
// succeeded run, through a private redis-server and one worker
// (concurrency 10) on SQLite. Creating the runs is not timed.
func BenchmarkEnqueueExecute(b *testing.B) {
	store := openStore(b, db.BackendSQLite, "")
	rs := testenv.StartRedis(b)
	f := newFixture(b, store, rs.URL())
	f.worker.cfg.Concurrency = 10
	f.worker.cfg.ResultBackend = ResultBackendNone
	f.start(b)
	ctx := context.Background()

	first := f.createRun(b, okDefinition, `{"n":1}`)
	runs := make([]*orcheo.Run, b.N)
	for i := range runs {
		run, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{
			WorkflowID: first.WorkflowID, VersionID: first.VersionID, TriggeredBy: orcheo.TriggerManual, Input: []byte(`{"n":1}`),
		})
		if err != nil {
			b.Fatal(err)
		}
		runs[i] = run
	}
	succeeded := orcheo.RunSucceeded
	filter := orcheo.RunFilter{WorkflowID: &first.WorkflowID, Status: &succeeded, Limit: 1}

	b.ResetTimer()
	start := time.Now()
	for _, run := range runs {
		if err := f.queue.EnqueueRun(ctx, run); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, n, err := store.Runs.FindRuns(ctx, filter)
		if err != nil {
			b.Fatal(err)
		}
		if n == b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d runs succeeded after 5 minutes", n, b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
	f.worker.Stop()
}
