package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	machinery "github.com/RichardKnop/machinery/v2"
	"github.com/RichardKnop/machinery/v2/brokers/errs"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/maintenance"
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
	// Name is the operator's name of the process in the worker registry
	// (orcheo worker -n, orcheo control shutdown NAME), unique among live
	// workers (orcheo.CheckWorkerName); default DefaultWorkerName().
	Name string
	// DrainTimeout bounds how long Stop waits for in-flight runs before
	// cancelling their context; default WorkerDrainTimeoutDefault.
	DrainTimeout time.Duration
	// Observer, if set, is told of every attempt whose result was stored
	// (metrics); nil means nobody listens.
	Observer AttemptObserver
	// Submitter publishes the runs the rescuer returns to work (required):
	// the process's one orcheo.RunSubmitter, which cmd builds.
	Submitter orcheo.RunSubmitter
	// Redis is the process's one Redis client (cmd builds it with
	// rdb.Open and closes it after Stop): the consumers, the rescuer's
	// queue and elector, the cancel listener and the result backend all
	// use it. Nil: Start opens one of its own and Stop closes it (tests).
	Redis redis.UniversalClient
	// LeaderServices run beside the rescuer, under its leadership: each
	// starts when this worker gains it and stops before it is resigned, so
	// one worker at a time runs them (the retention of finished runs,
	// which cmd builds).
	LeaderServices []startstop.Service
	// DB, if set, is the database the health probe pings (the store), so
	// an idle worker knows whether it answers; claims count too.
	DB orcheo.Pinger
	// HealthGrace is how long Redis or the database may be unreachable
	// before Health reports the worker unhealthy; default
	// HealthGraceDefault. FetchStallAfter bounds a fetch loop's silence;
	// default FetchStallAfterDefault (health.go).
	HealthGrace     time.Duration
	FetchStallAfter time.Duration

	cfg      Config
	rdb      *rdb // on Redis, from Start to Stop
	versions versionCache
	leases   leaseTracker
	// handback is shared by the consumers' brokers: executeRun marks the
	// messages of runs it released at shutdown (see handBack).
	handback sync.Map
	// later is shared by the consumers' brokers too: executeRun leaves in
	// it the wait for a run's completion, which the broker settles the
	// message after, off the slot (settleLater).
	later sync.Map
	stats struct {
		handedBack                 atomic.Int64
		processed, failed, retried atomic.Int64 // countAttempt (registry.go)
	}
	startedAt time.Time // the last Start, for the registry
	// registry keeps this worker's record in Redis and hears operators'
	// shutdown requests (registry.go, control.go).
	registry     *registry
	shutdown     chan struct{} // closed by requestShutdown
	shutdownOnce sync.Once

	// health is what Health and Readiness report, kept up by the
	// consumers, the claimer and the probe (health.go).
	health workerHealth
	probe  *healthProbe
	// draining is set from the start of Stop (SIGTERM, a control
	// shutdown) until the next Start: Draining, Health, the registry.
	draining atomic.Bool

	claimer   *claimer   // group-commit claims (claimer.go)
	completer *completer // batched completions (completer.go)
	heartbeat *heartbeat
	cancels   *cancelListener // operator cancels of running runs (cancel.go)
	// reaper and promoter keep this worker's queues: dead consumers'
	// messages back to the front, delayed messages to the end when due.
	reaper   *maintenance.Reaper
	promoter *maintenance.Promoter
	rescuer  *maintenance.Rescuer
	// leader is this worker's candidacy for the rescuer's leadership;
	// stopRescuer ends the rescuer's following of it (RunWhileLeader).
	leader      *leadership.Elector
	stopRescuer func()

	mu        sync.Mutex
	running   bool
	stopping  chan struct{} // closed when the Stop in progress finishes
	consumers []*consumer
	// runCtx is the context of every run: machinery never cancels task
	// contexts, so Stop cancels this one after the drain timeout.
	runCtx     context.Context
	cancelRuns context.CancelFunc
}

// AttemptObserver is told of each attempt whose result the worker stored.
// It is called once the result has committed, before the run's message is
// acked, on the goroutine settling that message, so it must be quick and
// safe for concurrent use.
type AttemptObserver interface {
	// AttemptFinished receives the run as stored (pending again when a
	// retry was granted), the attempt's own outcome (succeeded, failed or
	// cancelled) and how long the attempt took from its claim.
	AttemptFinished(run *orcheo.Run, outcome orcheo.RunStatus, took time.Duration)
}

// ClaimObserver is an optional extension of AttemptObserver: told of each
// run the worker claimed, at the time its claim batch returned (pickup
// latency). Called on the claimer's goroutine, so it must be quick.
type ClaimObserver interface {
	RunClaimed(run *orcheo.Run, at time.Time)
}

// consumer is one machinery worker on one queue.
type consumer struct {
	queue  string
	worker *machinery.Worker
	broker *reliableBroker // what it holds, for the registry's "reserved"
	done   chan struct{}   // closed once machinery's consume loop has returned
}

// NewWorker returns a worker for cfg. cfg is validated by Start.
func NewWorker(cfg Config) *Worker {
	return &Worker{cfg: cfg, ID: defaultWorkerID(), shutdown: make(chan struct{})}
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
	if w.Runs == nil || w.Workflows == nil || w.Engine == nil || w.Submitter == nil {
		return fmt.Errorf("start worker: Runs, Workflows, Engine and Submitter must be set")
	}
	var err error
	if err = w.cfg.Validate(); err != nil {
		return err
	}
	if w.Logger == nil {
		w.Logger = logrus.StandardLogger()
	}
	if w.ID == "" {
		w.ID = defaultWorkerID()
	}
	if w.Name == "" {
		w.Name = DefaultWorkerName()
	}
	if err := orcheo.CheckWorkerName(w.Name); err != nil {
		return err
	}
	if w.shutdown == nil {
		w.shutdown = make(chan struct{})
	}
	if w.DrainTimeout <= 0 {
		w.DrainTimeout = WorkerDrainTimeoutDefault
	}
	installMachineryLogger(w.Logger)
	log := w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID})

	if w.Redis != nil {
		w.rdb = newRDBOn(w.Redis, &w.cfg)
	} else if w.rdb, err = newRDB(&w.cfg); err != nil {
		return err
	}
	if err := w.rdb.Ping(ctx); err != nil {
		_ = w.rdb.close()
		return fmt.Errorf("start worker: ping redis: %w", err)
	}
	w.health.reset(time.Now())
	w.draining.Store(false)
	// The first record is written before anything is consumed, so a name
	// another live worker holds is refused at once.
	w.startedAt = time.Now().UTC()
	w.registry = &registry{w: w, log: log.WithField("component", "registry")}
	if err := w.registry.registerFirst(ctx); err != nil {
		_ = w.rdb.close()
		return err
	}

	w.runCtx, w.cancelRuns = context.WithCancel(context.Background())
	w.consumers = nil
	w.startServices(log)
	shares := splitConcurrency(w.cfg.Concurrency, len(w.cfg.Queues))
	started := make([]chan struct{}, 0, len(w.cfg.Queues))
	for i, queue := range w.cfg.Queues {
		c, consuming, err := w.launch(queue, shares[i], log)
		if err != nil {
			w.stopConsumers(log)
			w.stopServices()
			return fmt.Errorf("start worker on queue %s: %w", queue, err)
		}
		w.consumers = append(w.consumers, c)
		started = append(started, consuming)
	}
	w.registry.watch(w.consumers)
	timeout := time.NewTimer(workerStartTimeout)
	defer timeout.Stop()
	for i, ch := range started {
		select {
		case <-ch:
		case <-timeout.C:
			log.WithField("queue", w.cfg.Queues[i]).Warn("consumer did not start polling in time; it keeps retrying")
		case <-ctx.Done():
			w.stopConsumers(log)
			w.stopServices()
			return fmt.Errorf("start worker: %w", ctx.Err())
		}
	}
	w.running = true
	log.WithFields(logrus.Fields{"queues": w.cfg.Queues, "concurrency": w.cfg.Concurrency}).Info("worker consuming")
	return nil
}

// launch starts one machinery worker on queue with concurrency slots. The
// returned channel is closed when its consumer is registered in Redis and
// fetching.
func (w *Worker) launch(queue string, concurrency int, log logrus.FieldLogger) (*consumer, chan struct{}, error) {
	server, broker, err := newServer(&w.cfg, w.rdb, log)
	if err != nil {
		return nil, nil, err
	}
	broker.handback, broker.later = &w.handback, &w.later
	broker.progress = w.health.consumer(w.ID + ":" + queue)
	broker.results, _ = server.GetBackend().(*resultBackend) // states go with the acks
	broker.claims = w.claimer                                // a take's runs claimed in one batch
	if err := server.RegisterTask(TaskExecuteRun, w.executeRun); err != nil {
		return nil, nil, fmt.Errorf("register %s: %w", TaskExecuteRun, err)
	}
	qlog := log.WithField("queue", queue)
	mw := server.NewCustomQueueWorker(w.ID+":"+queue, concurrency, queue)
	// machinery calls the error handler for tasks that failed without
	// retry; the reliable broker handles its own errors and never asks
	// machinery to restart it.
	mw.SetErrorHandler(func(err error) {
		qlog.WithError(err).Error("machinery task error")
	})
	c := &consumer{queue: queue, worker: mw, broker: broker, done: make(chan struct{})}
	errc := make(chan error, 1)
	mw.LaunchAsync(errc)
	go func() {
		defer close(c.done)
		// machinery sends once, when consuming has stopped for good.
		if err := <-errc; err != nil && !errors.Is(err, errs.ErrConsumerStopped) {
			qlog.WithError(err).Error("consumer stopped")
		}
	}()
	return c, broker.ready, nil
}

// startServices starts what runs beside the consumers: the claimer and
// completer, the heartbeat that renews leases, the cancel listener, the
// reaper and promoter of this worker's queues, and the elector whose
// leadership runs the rescuer while this worker holds it. The reaper
// makes its first pass before the consumers start, so a dead consumer's
// messages are taken before anything queued since.
func (w *Worker) startServices(log logrus.FieldLogger) {
	w.claimer = newClaimer(w.Runs, w.ID, w.cfg.LeaseDuration)
	w.claimer.claimed = w.claimed
	w.claimer.Start(context.Background())
	w.completer = newCompleter(w.Runs, completeTimeout)
	w.completer.Start(context.Background())
	w.heartbeat = &heartbeat{w: w, log: log.WithField("component", "heartbeat")}
	w.heartbeat.Start(context.Background())
	w.cancels = &cancelListener{w: w, log: log.WithField("component", "cancel")}
	w.cancels.Start(context.Background())
	w.reaper = maintenance.NewReaper(maintenance.ReaperConfig{
		RDB: w.rdb.RDB, Queues: w.cfg.Queues, Interval: w.cfg.HeartbeatInterval, Logger: log,
	})
	w.reaper.Start(context.Background())
	w.promoter = maintenance.NewPromoter(maintenance.PromoterConfig{RDB: w.rdb.RDB, Queues: w.cfg.Queues, Logger: log})
	w.promoter.Start(context.Background())
	w.rescuer = maintenance.NewRescuer(maintenance.RescuerConfig{
		Runs: w.Runs, Submitter: w.Submitter, RDB: w.rdb.RDB,
		Interval: w.cfg.RescueInterval, ReenqueueAfter: w.cfg.ReenqueueAfter, Logger: w.Logger,
	})
	w.leader = newRescuerElector(w.rdb.Leaders(), w.ID, w.cfg.RescueInterval, log)
	// The rescuer makes a pass at once when this worker gains the
	// leadership, then one every interval, until it loses it.
	stops := []func(){leadership.RunWhileLeader(w.leader, w.rescuer)}
	for _, svc := range w.LeaderServices {
		stops = append(stops, leadership.RunWhileLeader(w.leader, svc))
	}
	w.stopRescuer = func() {
		for _, stop := range stops {
			stop()
		}
	}
	w.leader.Start(context.Background())
	w.registry.Start(context.Background())
	w.probe = newHealthProbe(w, log)
	w.probe.Start(context.Background())
}

// newRescuerElector returns holder's (unstarted) candidacy for the
// rescuer's leadership, with maintenance.RescuerElectorTTL's TTL: failover
// within one rescue interval.
func newRescuerElector(store leadership.Store, holder string, rescueInterval time.Duration, log logrus.FieldLogger) *leadership.Elector {
	return leadership.NewElector(leadership.Config{
		Store: store, Name: maintenance.RescuerLeadership, Holder: holder, TTL: maintenance.RescuerElectorTTL(rescueInterval),
		Logger: log.WithField("component", "elector"),
	})
}

// stopServices stops what startServices started, after the consumers: the
// heartbeat must outlive the last run.
func (w *Worker) stopServices() {
	if w.probe != nil {
		w.probe.Stop()
	}
	if w.leader != nil {
		w.stopRescuer() // the rescuer stops before the lease is resigned
		w.leader.Stop() // resigns: another worker's rescuer starts at once
	}
	if w.claimer != nil {
		w.claimer.Stop()
	}
	if w.completer != nil {
		w.completer.Stop() // writes what is still waiting; the runs have returned
	}
	if w.heartbeat != nil {
		w.heartbeat.Stop()
	}
	if w.cancels != nil {
		w.cancels.Stop()
	}
	if w.reaper != nil {
		w.reaper.Stop()
		w.promoter.Stop()
	}
	if w.registry != nil {
		w.registry.Stop() // removes the record: the worker has drained
	}
	if w.rdb != nil {
		_ = w.rdb.close() // only a client Start opened
	}
	w.leader, w.stopRescuer, w.rescuer, w.heartbeat, w.cancels = nil, nil, nil, nil, nil
	w.reaper, w.promoter = nil, nil
}

// RescuerStats returns what this worker's rescuer did while it led (since
// the worker's last Start).
func (w *Worker) RescuerStats() maintenance.RescuerStats {
	w.mu.Lock()
	r := w.rescuer
	w.mu.Unlock()
	if r == nil {
		return maintenance.RescuerStats{}
	}
	return r.Stats()
}

// HandedBack is how many runs this worker handed back at shutdown.
func (w *Worker) HandedBack() int64 { return w.stats.handedBack.Load() }

// Stop stops fetching, lets in-flight runs finish for up to DrainTimeout,
// then cancels their context and waits for them. Runs interrupted that way
// are handed back at once: back to pending without using up an attempt,
// their messages back at the front of their queues, for another worker.
// Stop is safe to call twice, concurrently, or without Start; the worker
// may be started again after.
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
	// No consumer takes a message from here on, before anyone is told the
	// worker drains: what is published after that goes to other workers.
	for _, c := range w.consumers {
		c.broker.stopFetching()
	}
	w.draining.Store(true) // Health, Readiness and the registry say so from now

	log := w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID})
	log.Info("worker stopping")
	w.stopConsumers(log)
	w.stopServices()
	log.WithField("handed_back", w.HandedBack()).Info("worker stopped")

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
