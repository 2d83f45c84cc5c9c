package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	brokersiface "github.com/RichardKnop/machinery/v2/brokers/iface"
	"github.com/RichardKnop/machinery/v2/config"
	mtasks "github.com/RichardKnop/machinery/v2/tasks"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// Broker timings that are not configuration.
const (
	// dequeueTimeout is how long one wait on an empty queue (BLMOVE) lasts;
	// it bounds how long a stop waits for the fetcher.
	dequeueTimeout = time.Second
	// backoffMin and backoffMax bound the wait after a Redis error, so an
	// outage costs no CPU and recovery is noticed within backoffMax.
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	// settleTimeout bounds retrying an ack or a hand-back while Redis is
	// down; past it the message stays in the processing list, which goes
	// back to the queue when this consumer deregisters or is reaped.
	settleTimeout = 30 * time.Second
	// processErrorDelay is when a message whose processing failed inside
	// machinery (its result backend) comes back.
	processErrorDelay = time.Second
)

// reliableBroker implements machinery's broker interface on Redis with
// at-least-once delivery (the "reliable queue" pattern), through the
// scripts of package tasks/rdb:
//
//   - a consumer moves messages from its queue into its own processing
//     list, as many per script call as it has free slots and free hold
//     capacity, and only while it is registered, so it never executes more
//     than its concurrency nor holds more than holdCapacity messages; it
//     waits with BLMOVE only when the queue is empty;
//   - a task's slot is freed as soon as the task returns (as River's
//     producer frees a slot once the job has executed), while its message
//     stays held until it is settled: acked, only after the task returned
//     and after the commit of its run's completion when the task left that
//     to finish later (settleLater); acks that come while one is being
//     written go together in the next script call (acker); a task that
//     hands its run back puts the message back at the front of the queue
//     instead, and one whose run was granted a retry into the delayed set;
//   - the consumer renews a heartbeat deadline in its queue's consumers,
//     and registers again if it finds itself forgotten; consumers whose
//     deadline passed (killed, hung) get their processing lists returned
//     to the front of the queue by the Reaper every worker runs for its
//     queues (tasks/maintenance), and delayed messages (ETA) are moved to
//     the queue by its Promoter;
//   - on stop the consumer stops fetching, waits for its tasks (the Worker
//     bounds that with its drain timeout) and returns what it still holds.
//
// Redis errors never stop consuming: the fetcher backs off and retries, and
// go-redis reconnects. Redis is not the source of truth: a duplicate
// delivery is skipped by the run's claim, and runs whose messages were lost
// with Redis are found in the database by the rescuer, using each queue's
// message counts to tell which pending runs still have a message.
//
// One broker consumes at most once (StartConsuming after StopConsuming
// returns at once); the Worker builds one per queue per start, all on the
// process's one Redis client, which the broker never closes.
type reliableBroker struct {
	cnf    *config.Config
	cfg    *Config
	rdb    *rdb
	logger logrus.FieldLogger
	now    func() time.Time

	namesMu sync.RWMutex
	names   []string

	mu       sync.Mutex
	started  bool
	stopped  bool
	stop     chan struct{} // closed by StopConsuming
	consumed chan struct{} // closed when StartConsuming has returned

	// handback holds the signatures whose task asked for its message to go
	// back to the queue (see handBack); the consuming goroutine reads them.
	// The Worker shares one map among its brokers.
	handback *sync.Map // *mtasks.Signature → struct{}
	// later holds the signatures whose task left its message to be settled
	// after it returned (see settleLater); the consuming goroutine takes
	// them. The Worker shares one map among its brokers.
	later *sync.Map // *mtasks.Signature → func() time.Time
	// holdFull, if set (tests), is called each time the fetcher has a free
	// slot but must wait for a hold: the consumer holds holdCapacity.
	holdFull func()
	// progress, if set, is told of the fetch loop's iterations and Redis
	// calls, for the worker's health (health.go).
	progress *fetchProgress
	// results, if set, is the machinery server's result backend: the
	// terminal state of each task processed here is held and written with
	// the message's ack, in its round trip, not on the task's slot.
	results *resultBackend
	// claims, if set, is the worker's claimer: it hears of each run's
	// message as soon as it is taken (expect), so the runs of one take are
	// claimed in one batch, and once its task has returned (forget).
	claims *claimer

	// ready is closed once the consumer is registered and about to fetch.
	ready     chan struct{}
	readyOnce sync.Once

	inflightMu sync.Mutex
	inflight   map[string]int // messages taken and not yet settled → how many copies
}

var _ brokersiface.Broker = (*reliableBroker)(nil)

func newReliableBroker(cfg *Config, cnf *config.Config, r *rdb, logger logrus.FieldLogger) *reliableBroker {
	return &reliableBroker{
		cnf: cnf, cfg: cfg, rdb: r, now: time.Now,
		logger:   logger.WithField("component", "broker"),
		stop:     make(chan struct{}),
		consumed: make(chan struct{}),
		inflight: make(map[string]int),
		handback: new(sync.Map),
		later:    new(sync.Map),
		ready:    make(chan struct{}),
	}
}

// GetConfig returns machinery's configuration.
func (b *reliableBroker) GetConfig() *config.Config { return b.cnf }

// SetRegisteredTaskNames records the tasks this worker can run.
func (b *reliableBroker) SetRegisteredTaskNames(names []string) {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	b.names = append([]string(nil), names...)
}

// IsTaskRegistered reports whether name was registered.
func (b *reliableBroker) IsTaskRegistered(name string) bool {
	b.namesMu.RLock()
	defer b.namesMu.RUnlock()
	for _, n := range b.names {
		if n == name {
			return true
		}
	}
	return false
}

// AdjustRoutingKey sends a message without a routing key (its queue's
// name) to the default queue.
func (b *reliableBroker) AdjustRoutingKey(s *mtasks.Signature) {
	if s.RoutingKey == "" {
		s.RoutingKey = b.cnf.DefaultQueue
	}
}

// frontKey marks a context whose publish goes to the front of the queue
// (withFront): machinery passes the caller's context through to Publish.
type frontKey struct{}

// withFront returns a context whose messages Publish puts at the front of
// their queue instead of the end.
func withFront(ctx context.Context) context.Context { return context.WithValue(ctx, frontKey{}, true) }

// Publish adds a message to its queue (at the end, or at the front when ctx
// comes from withFront), or to the queue's delayed set when its ETA is in
// the future, and counts it for its run. machinery calls it (a task retried
// later); the Queue publishes many at once with publish.
func (b *reliableBroker) Publish(ctx context.Context, sig *mtasks.Signature) error {
	front, _ := ctx.Value(frontKey{}).(bool)
	return b.publish(ctx, front, sig)[0]
}

// publish adds sigs to their queues in one round trip (see Publish); errs[i]
// is sigs[i]'s.
func (b *reliableBroker) publish(ctx context.Context, front bool, sigs ...*mtasks.Signature) (errs []error) {
	errs = make([]error, len(sigs))
	msgs := make([]trdb.Message, 0, len(sigs))
	idx := make([]int, 0, len(sigs))
	for i, sig := range sigs {
		b.AdjustRoutingKey(sig)
		body, err := json.Marshal(sig)
		if err != nil {
			errs[i] = fmt.Errorf("encode message: %w", err)
			continue
		}
		m := trdb.Message{Queue: sig.RoutingKey, Body: string(body), RunID: runIDOf(sig)}
		if sig.ETA != nil {
			m.ETA = *sig.ETA
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	for j, err := range b.rdb.Publish(ctx, b.now(), front, msgs...) {
		errs[idx[j]] = err
	}
	return errs
}

// GetPendingTasks returns the messages waiting in a queue (by name).
func (b *reliableBroker) GetPendingTasks(queue string) ([]*mtasks.Signature, error) {
	if queue == "" {
		queue = b.cnf.DefaultQueue
	}
	msgs, _, err := b.rdb.Pending(context.Background(), queue)
	if err != nil {
		return nil, err
	}
	return decodeAll(msgs)
}

// GetDelayedTasks returns the messages waiting for their ETA on the default
// queue.
func (b *reliableBroker) GetDelayedTasks() ([]*mtasks.Signature, error) {
	_, msgs, err := b.rdb.Pending(context.Background(), b.cnf.DefaultQueue)
	if err != nil {
		return nil, err
	}
	return decodeAll(msgs)
}

func decodeAll(msgs []string) ([]*mtasks.Signature, error) {
	out := make([]*mtasks.Signature, 0, len(msgs))
	for _, m := range msgs {
		sig, err := decodeMessage(m)
		if err != nil {
			return nil, err
		}
		out = append(out, sig)
	}
	return out, nil
}

func decodeMessage(msg string) (*mtasks.Signature, error) {
	sig := new(mtasks.Signature)
	dec := json.NewDecoder(bytes.NewReader([]byte(msg)))
	dec.UseNumber()
	if err := dec.Decode(sig); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	return sig, nil
}

// runIDOf is the run a message is for: execute_run's one argument.
func runIDOf(sig *mtasks.Signature) string {
	if sig.Name != TaskExecuteRun || len(sig.Args) != 1 {
		return ""
	}
	id, _ := sig.Args[0].Value.(string)
	return id
}

// handBack asks that the message of sig go back to the front of its queue
// once its task returns, instead of being acked. The task calls it with
// the signature machinery put in its context.
func (b *reliableBroker) handBack(sig *mtasks.Signature) { b.handback.Store(sig, struct{}{}) }

// settleLater asks that the message of sig be settled once wait returns
// rather than when its task returns: the task's slot takes the next
// message at once, while this one stays held (within the consumer's hold
// capacity) until wait returns; it is then acked, or moved to its queue's
// delayed set until the time wait returned if that is not zero. The task
// calls it with the signature machinery put in its context; wait runs on
// the consumer's goroutine for the message, and StopConsuming waits for it.
func (b *reliableBroker) settleLater(sig *mtasks.Signature, wait func() time.Time) {
	b.later.Store(sig, wait)
}

// StopConsuming stops fetching and waits until StartConsuming has returned
// (in-flight tasks finished, their acks written and unacked messages handed
// back). Safe to call twice, concurrently, or without StartConsuming.
func (b *reliableBroker) StopConsuming() {
	b.stopFetching()
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	if started {
		<-b.consumed
	}
}

// stopFetching is StopConsuming without the wait: from its return the
// consumer takes no message (a take already in flight is handed back).
// The Worker calls it before it reports draining.
func (b *reliableBroker) stopFetching() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.stopped = true
		close(b.stop)
	}
}

// stopping reports whether StopConsuming was called. A select between the
// stop and a free slot picks either when both are ready, so the fetch asks
// this before each take, and again after it.
func (b *reliableBroker) stopping() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// StartConsuming consumes the processor's queue with concurrency slots
// until StopConsuming. It returns (false, nil) when stopped: it handles
// Redis errors itself, so machinery never restarts it.
func (b *reliableBroker) StartConsuming(tag string, concurrency int, p brokersiface.TaskProcessor) (bool, error) {
	b.mu.Lock()
	if b.stopped || b.started {
		b.mu.Unlock()
		return false, nil
	}
	b.started = true
	b.mu.Unlock()
	defer close(b.consumed)

	if concurrency < 1 {
		concurrency = 1
	}
	queue := p.CustomQueue()
	if queue == "" {
		queue = b.cnf.DefaultQueue
	}
	c := &consumerLoop{b: b, id: tag, queue: queue, p: p,
		log: b.logger.WithFields(logrus.Fields{"consumer": tag, "queue": queue})}
	c.run(concurrency)
	return false, nil
}

// consumerLoop is one StartConsuming: a fetcher, task goroutines, an acker
// and a maintenance goroutine (heartbeat, orphan sweep: what needs this
// consumer's own state; the queue's reaper and promoter are the worker's,
// in tasks/maintenance).
type consumerLoop struct {
	b     *reliableBroker
	id    string // consumer id: "<worker id>:<queue>"
	queue string // queue name
	p     brokersiface.TaskProcessor
	log   logrus.FieldLogger

	// slots holds a token per message whose task is executing, at most
	// the concurrency; held holds one per message taken and not yet
	// settled (acked or handed back), at most holdCapacity: the processing
	// list never holds more. A message has both until its task returns,
	// then only its hold until it is settled.
	slots chan struct{}
	held  chan struct{}
}

func (c *consumerLoop) run(concurrency int) {
	b := c.b
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Register before the first fetch, so a message taken is never in the
	// list of a consumer the reaper does not know.
	if !c.retry(ctx, "register consumer", func() error {
		_, err := b.rdb.Heartbeat(ctx, c.queue, c.id, b.now(), b.cfg.ConsumerTTL)
		return err
	}) {
		return
	}
	b.readyOnce.Do(func() { close(b.ready) })

	var maint sync.WaitGroup
	maintStop := make(chan struct{})
	maint.Add(1)
	go func() {
		defer maint.Done()
		c.maintain(ctx, maintStop)
	}()

	c.slots = make(chan struct{}, concurrency)
	c.held = make(chan struct{}, holdCapacity(concurrency))
	acks := newAcker(ctx, c, cap(c.held))

	var tasks sync.WaitGroup
	backoff := backoffMin
	failing := false
	for {
		b.progress.tick()
		msgs, stopped, err := c.fetch(ctx)
		if stopped {
			break
		}
		b.progress.redisCall(err)
		if err != nil {
			if !failing {
				c.log.WithError(err).Warn("redis unavailable; consumer retrying with backoff")
				failing = true
			}
			select {
			case <-b.stop:
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		if failing {
			c.log.Info("redis available again; consumer resumed")
			failing = false
		}
		backoff = backoffMin
		if b.stopping() && len(msgs) > 0 {
			c.handBackUnstarted(ctx, msgs) // the stop came during the take
			break
		}
		// Every run of the take is announced to the claimer before any
		// task starts, so the first task to claim claims them all.
		sigs, errs := make([]*mtasks.Signature, len(msgs)), make([]error, len(msgs))
		for i, msg := range msgs {
			c.track(msg, 1)
			sigs[i], errs[i] = decodeMessage(msg)
			if errs[i] == nil && b.claims != nil && b.IsTaskRegistered(sigs[i].Name) {
				if id := runIDOf(sigs[i]); id != "" {
					b.claims.expect(sigs[i], id)
				}
			}
		}
		for i, msg := range msgs {
			tasks.Add(1)
			go func() {
				defer tasks.Done()
				c.process(ctx, msg, sigs[i], errs[i], acks)
			}()
		}
	}
	tasks.Wait()
	acks.close() // writes the last acks
	close(maintStop)
	maint.Wait()
	c.retryFor(ctx, settleTimeout, "deregister consumer", func() error {
		n, err := b.rdb.Deregister(ctx, c.queue, c.id)
		if err == nil && n > 0 {
			c.log.WithField("messages", n).Info("handed unfinished messages back to the queue")
		}
		return err
	})
}

// holdCapacity is how many messages a consumer of concurrency slots may
// hold: one per slot, plus as many again whose task has returned and whose
// settlement waits (a completion not yet committed, settleLater). So a
// slot never waits for a commit, as long as commits keep up with twice
// the concurrency, and when they do not, the fetcher stops taking: the
// backlog of a slow database is bounded by the concurrency, per consumer.
// One completion batch is in flight while the next fills, so a backlog of
// one concurrency's worth covers a commit that takes as long as a slot's
// whole cycle; a longer backlog would only hold more messages a crash
// sends back through the reaper.
func holdCapacity(concurrency int) int { return 2 * concurrency }

// fetch waits for a free slot and a free hold, then takes as many messages
// as there are both (min(free slots, free holds)) in one script call,
// holding one of each per message; when the queue is empty it waits on it
// (up to dequeueTimeout) and returns none. stopped is set once the broker
// stops.
func (c *consumerLoop) fetch(ctx context.Context) (msgs []string, stopped bool, err error) {
	b := c.b
	// Waiting for a slot or a hold is not a stall: every slot is busy.
	b.progress.waitCapacity(true)
	defer b.progress.waitCapacity(false) // also when stopped
	select {
	case <-b.stop:
		return nil, true, nil
	case c.slots <- struct{}{}:
	}
	select {
	case c.held <- struct{}{}:
	default:
		if b.holdFull != nil {
			b.holdFull()
		}
		select {
		case <-b.stop:
			c.freeSlots(1)
			return nil, true, nil
		case c.held <- struct{}{}:
		}
	}
	b.progress.waitCapacity(false) // Redis calls below count: they may hang
	free := 1
fill:
	for free < cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
		default:
			break fill
		}
		select {
		case c.held <- struct{}{}:
			free++
		default:
			c.freeSlots(1)
			break fill
		}
	}
	// The selects above may have taken a slot over a stop that was ready
	// too: a draining consumer takes nothing more (orcheo control
	// shutdown, SIGTERM), so what is published now goes to other workers.
	if b.stopping() {
		c.freeSlots(free)
		c.unhold(free)
		return nil, true, nil
	}
	msgs, err = b.rdb.Take(ctx, c.queue, c.id, free)
	c.freeSlots(free - len(msgs))
	c.unhold(free - len(msgs))
	if errors.Is(err, trdb.ErrReaped) && c.reregister(ctx) {
		// Paused past ConsumerTTL: the reaper returned what we held
		// (tasks still running here settle harmlessly: their acks find
		// nothing to remove). Registered again, we may take messages.
		return nil, false, nil
	}
	if err != nil || len(msgs) > 0 {
		return msgs, false, err
	}
	if _, err := b.rdb.Wait(ctx, c.queue, dequeueTimeout); err != nil {
		return nil, false, err
	}
	return nil, false, nil
}

// handBackUnstarted returns msgs, which a take moved as the consumer was
// being stopped, to the front of the queue in their order, before any of
// their tasks started, so another consumer runs them now rather than
// after this one's drain (as deregister would). Each holds a slot and a
// hold, which are freed.
func (c *consumerLoop) handBackUnstarted(ctx context.Context, msgs []string) {
	c.freeSlots(len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- { // each goes to the front: the last first
		c.track(msgs[i], 1)
		c.requeue(ctx, msgs[i], time.Time{})
	}
	c.log.WithField("messages", len(msgs)).Info("stopping: handed messages taken as the stop came back to the queue")
}

// freeSlots frees n execution slots.
func (c *consumerLoop) freeSlots(n int) {
	for range n {
		<-c.slots
	}
}

// unhold frees n holds: their messages are settled.
func (c *consumerLoop) unhold(n int) {
	for range n {
		<-c.held
	}
}

// track counts a message in or out of the in-flight set the orphan sweep
// compares the processing list with.
func (c *consumerLoop) track(msg string, delta int) {
	c.b.inflightMu.Lock()
	defer c.b.inflightMu.Unlock()
	if n := c.b.inflight[msg] + delta; n > 0 {
		c.b.inflight[msg] = n
	} else {
		delete(c.b.inflight, msg)
	}
}

// process runs one message's task (sig, or err when msg could not be
// decoded), frees its slot and settles the message: an ack for the acker
// to write, or a hand-back when the task asked for it or machinery failed
// around it. When the task left the message to be settled later
// (settleLater), process waits for that here, off the slot, and then acks
// it, or delays it until the retry the wait reported.
func (c *consumerLoop) process(ctx context.Context, msg string, sig *mtasks.Signature, err error, acks *acker) {
	b := c.b
	if err != nil { // decodeMessage's
		// It can never be processed: drop it rather than loop on it.
		c.freeSlots(1)
		c.log.WithError(err).Error("undecodable message dropped")
		acks.add(msg, "", nil)
		return
	}
	runID := runIDOf(sig)
	log := c.log.WithField("run_id", runID)
	if !b.IsTaskRegistered(sig.Name) {
		c.freeSlots(1)
		log.WithField("task", sig.Name).Warn("task not registered here; message handed back")
		c.requeue(ctx, msg, b.now().Add(processErrorDelay))
		return
	}
	if b.results != nil {
		b.results.hold(sig)
	}
	perr := c.p.Process(sig)
	if b.claims != nil {
		b.claims.forget(sig) // a claim expected for a task that never asked
	}
	c.freeSlots(1) // the next message may run while this one is settled
	var result *trdb.TaskResult
	if b.results != nil {
		result = b.results.take(sig)
	}
	if _, ok := b.handback.LoadAndDelete(sig); ok {
		c.writeResult(result)
		c.requeue(ctx, msg, time.Time{})
		return
	}
	if wait, ok := b.later.LoadAndDelete(sig); ok {
		// Wait for the task's run to be committed before the ack, so a
		// crash meanwhile leaves the message held, to be reaped and
		// delivered again. A retry goes to the delayed set in one script
		// (no window in which the message is in neither place).
		if eta := wait.(func() time.Time)(); !eta.IsZero() {
			if !eta.After(b.now()) {
				eta = time.Time{} // due already: the front of the queue
			}
			c.writeResult(result)
			c.requeue(ctx, msg, eta)
			return
		}
	}
	if perr != nil {
		// machinery failed before or after the task (its result backend);
		// the claim makes a second delivery harmless.
		log.WithError(perr).Warn("processing failed outside the task; message comes back shortly")
		c.writeResult(result)
		c.requeue(ctx, msg, b.now().Add(processErrorDelay))
		return
	}
	acks.add(msg, runID, result)
}

// writeResult writes a held task state whose message is not acked (so no
// ack carries it), as machinery's own write would have; a failure is
// logged only: states are informational.
func (c *consumerLoop) writeResult(result *trdb.TaskResult) {
	if result == nil {
		return
	}
	if err := c.b.results.write(result); err != nil {
		c.log.WithError(err).Warn("result backend: task state not kept")
	}
}

// requeue hands msg back (at the front of the queue, or delayed until eta)
// and frees its hold.
func (c *consumerLoop) requeue(ctx context.Context, msg string, eta time.Time) {
	c.retryFor(ctx, settleTimeout, "hand back", func() error {
		_, err := c.b.rdb.Requeue(ctx, c.queue, c.id, msg, eta)
		return err
	})
	c.track(msg, -1)
	c.unhold(1)
}

// retry calls fn until it succeeds or the broker stops; it reports success.
func (c *consumerLoop) retry(ctx context.Context, what string, fn func() error) bool {
	backoff := backoffMin
	for {
		err := fn()
		if err == nil {
			return true
		}
		c.log.WithError(err).Warn(what + "; retrying")
		select {
		case <-c.b.stop:
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// retryFor calls fn until it succeeds or d has passed, whether or not the
// broker is stopping.
func (c *consumerLoop) retryFor(ctx context.Context, d time.Duration, what string, fn func() error) bool {
	deadline := time.Now().Add(d)
	backoff := backoffMin
	for {
		err := fn()
		if err == nil {
			return true
		}
		if time.Now().Add(backoff).After(deadline) {
			c.log.WithError(err).Error(what + ": giving up; the reaper returns the message once this consumer is gone")
			return false
		}
		c.log.WithError(err).Warn(what + "; retrying")
		time.Sleep(backoff)
		backoff = min(backoff*2, backoffMax)
	}
}

// maintain renews the heartbeat and sweeps orphans until stop is closed.
// Errors are logged and retried at the next tick.
func (c *consumerLoop) maintain(ctx context.Context, stop <-chan struct{}) {
	beat := time.NewTicker(c.b.cfg.HeartbeatInterval)
	defer beat.Stop()
	suspects := map[string]bool{}
	for {
		select {
		case <-stop:
			return
		case <-beat.C:
			if c.reregister(ctx) {
				suspects = c.sweep(ctx, suspects)
			}
		}
	}
}

// reregister renews the consumer's heartbeat, which registers it again if
// the reaper had forgotten it; it reports success.
func (c *consumerLoop) reregister(ctx context.Context) bool {
	added, err := c.b.rdb.Heartbeat(ctx, c.queue, c.id, c.b.now(), c.b.cfg.ConsumerTTL)
	c.b.progress.redisCall(err)
	if err != nil {
		c.log.WithError(err).Warn("consumer heartbeat")
		return false
	}
	if added {
		c.log.Warn("consumer had been reaped (paused past its TTL); registered again")
	}
	return true
}

// sweep hands back messages that sit in this consumer's processing list
// but are not being processed (a take whose reply was lost in a network
// failure). A message must look orphaned on two sweeps in a row, so one
// that was just taken and not yet tracked is left alone.
func (c *consumerLoop) sweep(ctx context.Context, suspects map[string]bool) map[string]bool {
	msgs, err := c.b.rdb.Processing(ctx, c.queue, c.id)
	if err != nil {
		return suspects
	}
	c.b.inflightMu.Lock()
	next := map[string]bool{}
	for _, m := range msgs {
		if c.b.inflight[m] == 0 {
			next[m] = true
		}
	}
	c.b.inflightMu.Unlock()
	for m := range next {
		if !suspects[m] {
			continue
		}
		if _, err := c.b.rdb.Requeue(ctx, c.queue, c.id, m, time.Time{}); err == nil {
			c.log.Warn("orphaned message in the processing list handed back")
			delete(next, m)
		}
	}
	return next
}
