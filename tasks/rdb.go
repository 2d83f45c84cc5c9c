package tasks

import (
	"context"
	"time"

	"github.com/orcheo/orcheo"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
)

// rdb is this package's handle on the Redis layer (package tasks/rdb,
// imported as trdb in the files that name this type): the process's one
// client, the configuration, and the layer's typed methods, embedded. A
// worker's consumers, queue, cancel listener, result backend and rescuer
// leadership all reach Redis through its one rdb.
type rdb struct {
	*trdb.RDB
	client redis.UniversalClient
	cfg    *Config
	owned  bool // close closes client (newRDB made it)
}

// newRDBOn wraps the process's client for cfg (validated). close leaves
// the client open: its owner closes it.
func newRDBOn(client redis.UniversalClient, cfg *Config) *rdb {
	return &rdb{RDB: trdb.New(client, cfg.Prefix), client: client, cfg: cfg}
}

// newRDB opens a client of its own to cfg.RedisURL (validated), which
// close closes: for a Queue or Worker given no client (tests).
func newRDB(cfg *Config) (*rdb, error) {
	client, err := trdb.Open(cfg.RedisURL)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "%v", err)
	}
	r := newRDBOn(client, cfg)
	r.owned = true
	return r, nil
}

// close closes the client if this rdb opened it.
func (r *rdb) close() error {
	if !r.owned {
		return nil
	}
	return r.client.Close()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// messageCounts reports, for each run, how many of its messages Redis
// holds, under the run's queue (the rescuer's question).
func (r *rdb) messageCounts(ctx context.Context, runs []*orcheo.Run) ([]int, error) {
	queues, ids := make([]string, len(runs)), make([]string, len(runs))
	for i, run := range runs {
		queues[i], ids[i] = queueName(run.Queue), run.ID
	}
	return r.MessageCounts(ctx, queues, ids)
}
