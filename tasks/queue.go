package tasks

import (
	"context"
	"fmt"
	"sync"
	"time"

	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// Queue publishes execute_run tasks. It implements orcheo.RunQueue and is
// safe for concurrent use.
type Queue struct {
	cfg    Config
	logger logrus.FieldLogger
	rdb    *rdb
	// broker encodes and publishes messages; it never consumes.
	broker *reliableBroker

	closeOnce sync.Once
}

var _ orcheo.RunQueue = (*Queue)(nil)

// NewQueue validates cfg and builds a Queue on client, the process's one
// Redis client, which the caller closes after the Queue's last use; a nil
// client makes the Queue open one of its own to cfg.RedisURL, closed by
// Close (tests). It does not connect: the first EnqueueRun or Ping does.
// Returns EINVALID for a bad cfg. A nil logger means logrus's standard
// logger.
func NewQueue(cfg Config, client redis.UniversalClient, logger logrus.FieldLogger) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = logrus.StandardLogger()
	}
	q := &Queue{cfg: cfg, logger: logger.WithField("component", "queue")}
	if client == nil {
		r, err := newRDB(&q.cfg)
		if err != nil {
			return nil, err
		}
		q.rdb = r
	} else {
		q.rdb = newRDBOn(client, &q.cfg)
	}
	q.broker = newReliableBroker(&q.cfg, machineryConfig(&q.cfg), q.rdb, logger)
	return q, nil
}

// EnqueueRun publishes execute_run(run.ID) on the run's queue, or to that
// queue's delayed set until run.NotBefore when it is in the future.
// Publishing twice is harmless: the worker's claim skips the duplicate.
func (q *Queue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	return q.enqueue(ctx, false, run)[0]
}

// EnqueueRuns publishes each run as EnqueueRun does, all in one Redis round
// trip (one script call per queue). errs[i] is runs[i]'s.
func (q *Queue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return q.enqueue(ctx, false, runs...)
}

// EnqueueRunFront is EnqueueRun at the front of the run's queue, where the
// next free consumer takes it: for a run that was already in line before
// the messages queued since (the Rescuer's runs of dead workers, as the
// broker does with messages handed back or reaped).
func (q *Queue) EnqueueRunFront(ctx context.Context, run *orcheo.Run) error {
	return q.enqueue(ctx, true, run)[0]
}

// EnqueueRunsFront is EnqueueRunFront for each run, in one round trip:
// runs[i] goes in front of runs[:i], as calling EnqueueRunFront in order
// would leave them.
func (q *Queue) EnqueueRunsFront(ctx context.Context, runs []*orcheo.Run) []error {
	return q.enqueue(ctx, true, runs...)
}

// enqueue builds each run's message as machinery's SendTaskWithContext
// would (an execute_run signature, a "task_" UUID, the empty headers its
// tracing leaves) and publishes them together. It
// skips SendTaskWithContext's SetStatePending on the result backend: a
// pending task state is informational only, and a round trip per run.
func (q *Queue) enqueue(ctx context.Context, front bool, runs ...*orcheo.Run) []error {
	errs := make([]error, len(runs))
	if err := ctx.Err(); err != nil {
		for i, run := range runs {
			errs[i] = fmt.Errorf("enqueue run %s: %w", run.ID, err)
		}
		return errs
	}
	now := time.Now()
	sigs := make([]*mtasks.Signature, len(runs))
	for i, run := range runs {
		sig := &mtasks.Signature{
			UUID:       "task_" + orcheo.NewID(), // as machinery names tasks
			Name:       TaskExecuteRun,
			RoutingKey: queueName(run.Queue),
			Args:       []mtasks.Arg{{Name: "run_id", Type: "string", Value: run.ID}},
			Headers:    mtasks.Headers{},
		}
		if run.NotBefore != nil && run.NotBefore.After(now) {
			eta := *run.NotBefore
			sig.ETA = &eta
		}
		sigs[i] = sig
	}
	published := 0
	for i, err := range q.broker.publish(ctx, front, sigs...) {
		if err != nil {
			errs[i] = fmt.Errorf("enqueue run %s on queue %s: %w", runs[i].ID, sigs[i].RoutingKey, err)
		} else {
			published++
		}
	}
	if len(runs) == 1 && errs[0] == nil {
		q.logger.WithFields(logrus.Fields{"run_id": runs[0].ID, "workflow_id": runs[0].WorkflowID, "queue": runs[0].Queue}).Debug("run enqueued")
	} else if len(runs) > 1 {
		q.logger.WithFields(logrus.Fields{"runs": published, "failed": len(runs) - published}).Debug("runs enqueued")
	}
	return errs
}

// Ping reports whether Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.rdb.Ping(ctx); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close releases the Redis client if the Queue opened it (NewQueue with a
// nil client); a client handed in is its owner's to close. It is safe to
// call twice; EnqueueRun fails after a Close that closed the client.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() { err = q.rdb.close() })
	return err
}
