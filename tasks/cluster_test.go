package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestWorker_OnRedisCluster runs a queue and a worker (broker, acker,
// reaper, promoter, cancel listener, result backend, rescuer election) on
// one go-redis Cluster client against a real three-node Redis Cluster:
// runs on two queues, one of them delayed, all succeed, and each queue's
// keys stay in its own slot.
func TestWorker_OnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs, MaxRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	store := openStore(t, db.BackendSQLite, "")
	cfg := Config{RedisURL: "redis://" + cluster.Addrs[0] + "/0", Prefix: "tasks-cluster", Concurrency: 4,
		Queues: []string{orcheo.DefaultQueue, "reports"}}
	q, err := NewQueue(cfg, client, testLogger())
	must(t, err)
	eng := engine.New(engine.Options{Logger: testLogger()})
	w := NewWorker(cfg)
	w.Runs, w.Workflows, w.Engine, w.Logger, w.Redis = store.Runs, store.Workflows, eng, testLogger(), client
	w.Submitter = startSubmitter(t, store.Runs, q)
	t.Cleanup(w.Stop)
	f := &fixture{store: store, engine: eng, cfg: cfg, queue: q, worker: w}
	f.start(t)

	var runs []*orcheo.Run
	for i := range 12 {
		run := f.createRun(t, okDefinition, `{"n":3}`)
		if i%2 == 1 {
			run.Queue = "reports"
		}
		if i == 0 {
			at := time.Now().Add(300 * time.Millisecond)
			run.NotBefore = &at
		}
		runs = append(runs, run)
	}
	for _, err := range q.EnqueueRuns(context.Background(), runs) {
		must(t, err)
	}
	for _, run := range runs {
		if got := f.waitTerminal(t, run.ID); got.Status != orcheo.RunSucceeded {
			t.Fatalf("run %s on queue %q: %s (error %q), want succeeded", run.ID, run.Queue, got.Status, got.Error)
		}
	}
	if n, err := q.ConsumersOnline(context.Background(), time.Now()); err != nil || n != 2 {
		t.Fatalf("consumers online = %d, %v; want one per queue", n, err)
	}
}
