package tasks

import (
	"context"
	"fmt"
	"sync"
	"time"

	machinery "github.com/RichardKnop/machinery/v2"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// Queue publishes execute_run tasks. It implements orcheo.RunQueue and is
// safe for concurrent use.
type Queue struct {
	cfg    Config
	logger logrus.FieldLogger
	server *machinery.Server
	broker *reliableBroker

	closeOnce sync.Once
}

var _ orcheo.RunQueue = (*Queue)(nil)

// NewQueue validates cfg and builds a Queue. It does not connect: the first
// EnqueueRun or Ping does. Returns EINVALID for a bad cfg. A nil logger
// means logrus's standard logger.
func NewQueue(cfg Config, logger logrus.FieldLogger) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = logrus.StandardLogger()
	}
	installMachineryLogger(logger)
	server, broker, err := newServer(&cfg, logger)
	if err != nil {
		return nil, err
	}
	return &Queue{
		cfg:    cfg,
		logger: logger.WithField("component", "queue"),
		server: server,
		broker: broker,
	}, nil
}

// EnqueueRun publishes execute_run(run.ID) on the run's queue
// ("<prefix>:queue:<run.Queue>"), or to that queue's delayed set until
// run.NotBefore when it is in the future. Publishing twice is harmless: the
// worker's claim skips the duplicate.
func (q *Queue) EnqueueRun(ctx context.Context, run *orcheo.Run) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("enqueue run %s: %w", run.ID, err)
	}
	sig := &mtasks.Signature{
		UUID:       q.cfg.taskKey(orcheo.NewID()),
		Name:       TaskExecuteRun,
		RoutingKey: q.cfg.queueKey(run.Queue),
		Args:       []mtasks.Arg{{Name: "run_id", Type: "string", Value: run.ID}},
	}
	if run.NotBefore != nil && run.NotBefore.After(time.Now()) {
		eta := *run.NotBefore
		sig.ETA = &eta
	}
	if _, err := q.server.SendTaskWithContext(ctx, sig); err != nil {
		return fmt.Errorf("enqueue run %s on queue %s: %w", run.ID, sig.RoutingKey, err)
	}
	q.logger.WithFields(logrus.Fields{"run_id": run.ID, "workflow_id": run.WorkflowID, "queue": run.Queue}).Debug("run enqueued")
	return nil
}

// EnqueueRuns publishes each run as EnqueueRun does. errs[i] is runs[i]'s.
// TODO(issue #10): one pipelined round trip.
func (q *Queue) EnqueueRuns(ctx context.Context, runs []*orcheo.Run) []error {
	return orcheo.EnqueueEach(ctx, runs, q.EnqueueRun)
}

// EnqueueRunFront is EnqueueRun at the front of the run's queue, where the
// next free consumer takes it: for a run that was already in line before
// the messages queued since (the Rescuer's runs of dead workers, as the
// broker does with messages handed back or reaped).
func (q *Queue) EnqueueRunFront(ctx context.Context, run *orcheo.Run) error {
	return q.EnqueueRun(withFront(ctx), run)
}

// Ping reports whether Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.broker.rdb.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close releases the Queue's Redis connections. It is safe to call twice;
// EnqueueRun fails after Close.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		// StopConsuming on a broker that never consumed closes its client.
		q.broker.StopConsuming()
	})
	return err
}
