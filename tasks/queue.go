package tasks

import (
	"context"
	"fmt"
	"sync"

	machinery "github.com/RichardKnop/machinery/v2"
	brokersiface "github.com/RichardKnop/machinery/v2/brokers/iface"
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
	server *machinery.Server
	broker brokersiface.Broker
	client *redis.Client // for Ping: machinery exposes no client

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
	server, broker, err := newServer(&cfg)
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "redis url: %v", redactErr(err, cfg.RedisURL))
	}
	return &Queue{
		cfg:    cfg,
		logger: logger.WithField("component", "queue"),
		server: server,
		broker: broker,
		client: redis.NewClient(opt),
	}, nil
}

// EnqueueRun publishes execute_run(run.ID) on the run's queue
// ("<prefix>:queue:<run.Queue>"). Publishing twice is harmless: the worker's
// claim skips the duplicate. machinery ignores ctx once publishing starts;
// go-redis's dial and write timeouts bound the call instead.
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
	if _, err := q.server.SendTaskWithContext(ctx, sig); err != nil {
		return fmt.Errorf("enqueue run %s on queue %s: %w", run.ID, sig.RoutingKey, err)
	}
	q.logger.WithFields(logrus.Fields{"run_id": run.ID, "workflow_id": run.WorkflowID, "queue": run.Queue}).Debug("run enqueued")
	return nil
}

// Ping reports whether Redis answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close releases the Queue's Redis connections. It is safe to call twice;
// EnqueueRun fails after Close.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		// BrokerGR has no Close: StopConsuming on a broker that never
		// consumed only closes its stop channel and its client.
		q.broker.StopConsuming()
		err = q.client.Close()
	})
	return err
}
