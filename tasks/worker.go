package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	machinery "github.com/RichardKnop/machinery/v2"
	"github.com/RichardKnop/machinery/v2/brokers/errs"
	brokersiface "github.com/RichardKnop/machinery/v2/brokers/iface"
	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// Worker defaults.
const (
	// WorkerDrainTimeoutDefault is how long Stop lets in-flight runs finish
	// before cancelling their context.
	WorkerDrainTimeoutDefault = 30 * time.Second
	// workerStartTimeout bounds how long Start waits for machinery's
	// fetchers to begin; past it the consumers keep retrying on their own.
	workerStartTimeout = 10 * time.Second
)

// Worker consumes the configured queues and executes runs. Its exported
// fields are its dependencies; set them before Start.
type Worker struct {
	Runs      orcheo.RunService
	Workflows orcheo.WorkflowService
	Engine    orcheo.Engine
	Logger    logrus.FieldLogger
	// ID names the worker in runs.worker_id; default hostname-pid-random.
	ID string
	// DrainTimeout bounds how long Stop waits for in-flight runs before
	// cancelling their context; default WorkerDrainTimeoutDefault.
	DrainTimeout time.Duration

	cfg      Config
	versions versionCache

	mu        sync.Mutex
	running   bool
	stopping  chan struct{} // closed when the Stop in progress finishes
	consumers []*consumer
	// runCtx is the context of every run: machinery never cancels task
	// contexts, so Stop cancels this one after the drain timeout.
	runCtx     context.Context
	cancelRuns context.CancelFunc
}

// consumer is one machinery worker on one queue.
type consumer struct {
	queue  string
	worker *machinery.Worker
	done   chan struct{} // closed once machinery's consume loop has returned
}

// NewWorker returns a worker for cfg. cfg is validated by Start.
func NewWorker(cfg Config) *Worker {
	return &Worker{cfg: cfg, ID: defaultWorkerID()}
}

// defaultWorkerID is hostname-pid-random, unique across restarts.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Start validates the config, checks that Redis answers, registers
// execute_run and starts consuming every configured queue in goroutines
// owned by the worker. It returns once machinery's fetchers are polling
// (or after workerStartTimeout, if Redis goes away meanwhile). ctx bounds
// only the start: the worker runs until Stop, so that a signal context can
// trigger a graceful Stop instead of cancelling runs. Starting a running
// worker does nothing.
//
// Each queue gets its own machinery server, broker and worker
// (NewCustomQueueWorker): BrokerGR consumes one list per StartConsuming and
// can be stopped only once, so consumers cannot share a broker. The
// concurrency budget is split across the queues (at least one slot each),
// so a process never executes more than max(Concurrency, len(Queues)) runs
// at once and each broker prefetches at most about twice its share. An idle
// queue's share stays unused; run several workers with different queue
// sets if that matters.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return nil
	}
	if w.Runs == nil || w.Workflows == nil || w.Engine == nil {
		return fmt.Errorf("start worker: Runs, Workflows and Engine must be set")
	}
	if err := w.cfg.Validate(); err != nil {
		return err
	}
	if w.Logger == nil {
		w.Logger = logrus.StandardLogger()
	}
	if w.ID == "" {
		w.ID = defaultWorkerID()
	}
	if w.DrainTimeout <= 0 {
		w.DrainTimeout = WorkerDrainTimeoutDefault
	}
	installMachineryLogger(w.Logger)
	log := w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID})

	if err := pingRedis(ctx, w.cfg.RedisURL); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}

	w.runCtx, w.cancelRuns = context.WithCancel(context.Background())
	w.consumers = nil
	shares := splitConcurrency(w.cfg.Concurrency, len(w.cfg.Queues))
	started := make([]chan struct{}, 0, len(w.cfg.Queues))
	for i, queue := range w.cfg.Queues {
		c, consuming, err := w.launch(queue, shares[i], log)
		if err != nil {
			w.stopConsumers(log)
			return fmt.Errorf("start worker on queue %s: %w", queue, err)
		}
		w.consumers = append(w.consumers, c)
		started = append(started, consuming)
	}
	timeout := time.NewTimer(workerStartTimeout)
	defer timeout.Stop()
	for i, ch := range started {
		select {
		case <-ch:
		case <-timeout.C:
			log.WithField("queue", w.cfg.Queues[i]).Warn("consumer did not start polling in time; it keeps retrying")
		case <-ctx.Done():
			w.stopConsumers(log)
			return fmt.Errorf("start worker: %w", ctx.Err())
		}
	}
	w.running = true
	log.WithFields(logrus.Fields{"queues": w.cfg.Queues, "concurrency": w.cfg.Concurrency}).Info("worker consuming")
	return nil
}

// launch starts one machinery worker on queue with concurrency slots. The
// returned channel is closed when its fetcher starts polling Redis.
func (w *Worker) launch(queue string, concurrency int, log logrus.FieldLogger) (*consumer, chan struct{}, error) {
	server, broker, err := newServer(&w.cfg)
	if err != nil {
		return nil, nil, err
	}
	consuming := make(chan struct{})
	server.SetBroker(&signalBroker{Broker: broker, consuming: consuming})
	if err := server.RegisterTask(TaskExecuteRun, w.executeRun); err != nil {
		return nil, nil, fmt.Errorf("register %s: %w", TaskExecuteRun, err)
	}
	qlog := log.WithField("queue", queue)
	mw := server.NewCustomQueueWorker(w.ID+":"+queue, concurrency, w.cfg.queueKey(queue))
	// machinery calls the error handler for consumer errors (after which it
	// restarts the consumer) and for tasks that failed without retry.
	mw.SetErrorHandler(func(err error) {
		qlog.WithError(err).Error("machinery consumer error")
	})
	c := &consumer{queue: queue, worker: mw, done: make(chan struct{})}
	errc := make(chan error, 1)
	mw.LaunchAsync(errc)
	go func() {
		defer close(c.done)
		// machinery sends once, when consuming has stopped for good.
		if err := <-errc; err != nil && !errors.Is(err, errs.ErrConsumerStopped) {
			qlog.WithError(err).Error("consumer stopped")
		}
	}()
	return c, consuming, nil
}

// Stop stops fetching, lets in-flight runs finish for up to DrainTimeout,
// then cancels their context and waits for them. Runs interrupted that way
// stay running until their lease expires. Stop is safe to call twice,
// concurrently, or without Start; the worker may be started again after.
func (w *Worker) Stop() {
	w.mu.Lock()
	if w.stopping != nil {
		ch := w.stopping
		w.mu.Unlock()
		<-ch
		return
	}
	if !w.running {
		w.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	w.stopping = ch
	w.mu.Unlock()

	log := w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID})
	log.Info("worker stopping")
	w.stopConsumers(log)
	log.Info("worker stopped")

	w.mu.Lock()
	w.running = false
	w.stopping = nil
	w.mu.Unlock()
	close(ch)
}

// stopConsumers quits every consumer in parallel, cancels runs still going
// after DrainTimeout, and waits until machinery's loops have returned.
func (w *Worker) stopConsumers(log logrus.FieldLogger) {
	quit := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, c := range w.consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Quit returns once the fetcher stopped and in-flight
				// tasks finished. It is called once per broker.
				c.worker.Quit()
			}()
		}
		wg.Wait()
		close(quit)
	}()
	drain := time.NewTimer(w.DrainTimeout)
	defer drain.Stop()
	select {
	case <-quit:
	case <-drain.C:
		log.WithField("drain_timeout", w.DrainTimeout.String()).Warn("drain timeout: cancelling in-flight runs")
		w.cancelRuns()
		<-quit
	}
	for _, c := range w.consumers {
		<-c.done
	}
	w.cancelRuns()
	w.consumers = nil
}

// splitConcurrency divides total slots over n queues, at least one each.
func splitConcurrency(total, n int) []int {
	shares := make([]int, n)
	for i := range shares {
		shares[i] = total / n
		if i < total%n {
			shares[i]++
		}
		if shares[i] < 1 {
			shares[i] = 1
		}
	}
	return shares
}

// pingRedis checks that the Redis at rawURL answers, so a misconfigured
// worker fails at start instead of retrying silently.
func pingRedis(ctx context.Context, rawURL string) error {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "redis url: %v", redactErr(err, rawURL))
	}
	client := redis.NewClient(opt)
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// signalBroker tells Start when machinery's fetcher begins polling: the
// fetcher asks the task processor for its queue just before each BLPOP,
// after BrokerGR.StartConsuming has registered itself, so a Stop after
// Start returns does not find a consumer that is still starting.
//
// `go test -race` still reports a WaitGroup race inside BrokerGR on Stop:
// it adds to its delayed-task WaitGroup after spawning the fetcher, with no
// synchronisation the race detector can see. The counter is already 1 when
// Stop waits, so it is harmless; the reliable broker that replaces BrokerGR
// removes it.
type signalBroker struct {
	brokersiface.Broker
	consuming chan struct{}
	once      sync.Once
}

// StartConsuming wraps p to observe the fetcher's first queue lookup.
func (b *signalBroker) StartConsuming(tag string, concurrency int, p brokersiface.TaskProcessor) (bool, error) {
	return b.Broker.StartConsuming(tag, concurrency, &signalProcessor{TaskProcessor: p, b: b})
}

type signalProcessor struct {
	brokersiface.TaskProcessor
	b *signalBroker
}

// CustomQueue reports the queue and signals that polling has begun.
func (p *signalProcessor) CustomQueue() string {
	p.b.once.Do(func() { close(p.b.consuming) })
	return p.TaskProcessor.CustomQueue()
}
