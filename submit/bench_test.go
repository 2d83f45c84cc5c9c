package submit_test

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/orcheo/orcheo/submit"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/rdb"
)

// benchConcurrency is how many callers submit at once, as the 32
// concurrent webhook senders.
const benchConcurrency = 32

// BenchmarkSubmitRun stores and publishes runs from 32 goroutines on
// PostgreSQL and a private redis-server: "unbatched" is the path before
// the submitter (one CreateRun and one EnqueueRun per run), "batched" is
// SubmitRun.
func BenchmarkSubmitRun(b *testing.B) {
	ctx := context.Background()
	store, _ := openStore(b, db.BackendPostgres, "bench")
	wf := mustWorkflow(b, store)
	redis := testenv.StartRedis(b)
	cfg := tasks.Config{RedisURL: redis.URL(), Prefix: "submit-bench", Queues: []string{orcheo.DefaultQueue}}
	client, err := rdb.Open(cfg.RedisURL)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	queue, err := tasks.NewQueue(cfg, client, quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer queue.Close()
	input := json.RawMessage(`{"action":"opened","number":42}`)
	parallel := func(b *testing.B, submitOne func() error) {
		b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := submitOne(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}

	b.Run("unbatched", func(b *testing.B) {
		parallel(b, func() error {
			run := &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, Version: wf.LatestVersion, Queue: wf.Queue,
				TriggeredBy: orcheo.TriggerWebhook, Input: input}
			if _, _, err := store.Runs.CreateRun(ctx, run); err != nil {
				return err
			}
			if err := queue.EnqueueRun(ctx, run); err != nil {
				return store.Runs.MarkRunUnenqueued(ctx, run.ID)
			}
			return nil
		})
	})

	b.Run("batched", func(b *testing.B) {
		sub := submit.New(submit.Config{Runs: store.Runs, Queue: queue, Logger: quietLogger()})
		sub.Start(ctx)
		defer sub.Stop()
		parallel(b, func() error {
			_, _, err := sub.SubmitRun(ctx, wf, &orcheo.Run{TriggeredBy: orcheo.TriggerWebhook, Input: input})
			return err
		})
	})
}
