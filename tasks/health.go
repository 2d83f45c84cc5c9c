package tasks

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	"github.com/sirupsen/logrus"
)

// Health defaults.
const (
	// HealthGraceDefault is how long Redis or the database may go without
	// one successful call before the worker reports itself unhealthy: long
	// enough for a restart or a failover, short enough that a worker cut
	// off for good is restarted.
	HealthGraceDefault = 30 * time.Second
	// FetchStallAfterDefault is how long a consumer's fetch loop may go
	// without an iteration, while not waiting for a free slot, before the
	// worker reports it stalled. An iteration lasts at most about a
	// dequeueTimeout, a Redis read timeout and a backoffMax, well under it.
	FetchStallAfterDefault = 30 * time.Second
	// healthProbeMax bounds the interval and the timeout of the probes.
	healthProbeMax = 5 * time.Second
)

// Health check names, as they appear in a HealthReport.
const (
	HealthCheckFetch    = "fetch"
	HealthCheckRedis    = "redis"
	HealthCheckDatabase = "database"
	HealthCheckDraining = "draining"
)

// HealthReport is a worker's answer to /healthz (Health) or /readyz
// (Readiness): "ok" when every check passes, else the names of those that
// failed. Checks holds "ok" or "error: …" per check, as the API's /readyz
// does; the text never holds a driver's error (hosts, users), which the
// worker logs instead.
type HealthReport struct {
	Status   string            `json:"status"` // "ok", "unhealthy" (Health) or "unavailable" (Readiness)
	WorkerID string            `json:"worker_id"`
	Failed   []string          `json:"failed,omitempty"`
	Checks   map[string]string `json:"checks"`
}

// OK reports whether every check passed.
func (r HealthReport) OK() bool { return len(r.Failed) == 0 }

// dependency is what the worker last learned of one dependency: when a
// call to it last succeeded and last failed (unix nanoseconds; zero:
// never). Safe for concurrent use.
type dependency struct {
	ok, fail atomic.Int64
}

func (d *dependency) succeeded(at time.Time) { d.ok.Store(at.UnixNano()) }
func (d *dependency) failed(at time.Time)    { d.fail.Store(at.UnixNano()) }

// observe records a call's outcome.
func (d *dependency) observe(err error, at time.Time) {
	if err != nil {
		d.failed(at)
		return
	}
	d.succeeded(at)
}

// reachableNow reports whether the last call succeeded (readiness).
func (d *dependency) reachableNow() bool { return d.ok.Load() >= d.fail.Load() && d.ok.Load() > 0 }

// downFor is how long since the last success; zero while the last call
// succeeded.
func (d *dependency) downFor(now time.Time) time.Duration {
	if d.reachableNow() {
		return 0
	}
	return now.Sub(time.Unix(0, d.ok.Load()))
}

// fetchProgress is one consumer's fetch loop as its health check sees it:
// when it last went round, and whether it is waiting for a free slot or
// hold (a worker whose every slot is busy is not stalled). The broker
// updates it; a nil *fetchProgress ignores updates.
type fetchProgress struct {
	last    atomic.Int64 // unix nanoseconds of the last iteration
	waiting atomic.Bool
	redis   *dependency // the worker's, told of the loop's Redis calls
	hook    func()      // workerHealth.fetchHook (tests)
}

// tick records an iteration of the loop.
func (p *fetchProgress) tick() {
	if p == nil {
		return
	}
	p.last.Store(time.Now().UnixNano())
	if p.hook != nil {
		p.hook()
	}
}

// waitCapacity records that the loop waits for (true) or got (false) a
// free slot and hold.
func (p *fetchProgress) waitCapacity(waiting bool) {
	if p == nil {
		return
	}
	p.waiting.Store(waiting)
	if !waiting {
		p.last.Store(time.Now().UnixNano())
	}
}

// redisCall records the outcome of one of the loop's Redis calls (a take,
// a wait, a heartbeat).
func (p *fetchProgress) redisCall(err error) {
	if p == nil || p.redis == nil {
		return
	}
	p.redis.observe(err, time.Now())
}

// stalledFor is how long the loop has gone without an iteration while not
// waiting for capacity; zero when it is not stalled.
func (p *fetchProgress) stalledFor(now time.Time) time.Duration {
	if p.waiting.Load() {
		return 0
	}
	return max(now.Sub(time.Unix(0, p.last.Load())), 0)
}

// workerHealth is what a worker knows of its own health: its consumers'
// fetch loops, Redis and the database (from the probes and from the calls
// the worker makes anyway: takes, heartbeats, claims), and whether it is
// draining (Worker.draining). The zero value is ready; reset starts it
// over.
type workerHealth struct {
	mu       sync.Mutex
	fetchers map[string]*fetchProgress // consumer id → its loop

	redis, db dependency
	// fetchHook, if set before Start (tests in this package only), is
	// called at every iteration of each consumer's fetch loop, on that
	// loop's goroutine: a test that blocks in it stalls the loop.
	fetchHook func()
}

// reset forgets every consumer and marks both dependencies reachable as
// of now (Start has just pinged Redis, and the store answered when cmd
// opened it).
func (h *workerHealth) reset(now time.Time) {
	h.mu.Lock()
	h.fetchers = map[string]*fetchProgress{}
	h.mu.Unlock()
	for _, d := range []*dependency{&h.redis, &h.db} {
		d.fail.Store(0)
		d.succeeded(now)
	}
}

// consumer returns the progress record of consumer id's fetch loop, new
// and fresh.
func (h *workerHealth) consumer(id string) *fetchProgress {
	p := &fetchProgress{redis: &h.redis, hook: h.fetchHook}
	p.last.Store(time.Now().UnixNano())
	h.mu.Lock()
	if h.fetchers == nil {
		h.fetchers = map[string]*fetchProgress{}
	}
	h.fetchers[id] = p
	h.mu.Unlock()
	return p
}

// Draining reports whether the worker is stopping (SIGTERM, or a control
// shutdown that calls Stop): it takes no new messages and finishes its
// runs in flight. A draining worker reports itself unhealthy and not ready,
// so a load balancer or supervisor stops counting on it.
func (w *Worker) Draining() bool { return w.draining.Load() }

// Health reports whether the worker works (/healthz): no consumer's fetch
// loop stalled for longer than FetchStallAfter, Redis and the database
// each answered within HealthGrace, and not draining. Status is "ok" or
// "unhealthy".
func (w *Worker) Health() HealthReport {
	now := time.Now()
	r := HealthReport{Status: "ok", WorkerID: w.ID, Checks: map[string]string{}}
	check := func(name string, failure string) {
		if failure == "" {
			r.Checks[name] = "ok"
			return
		}
		r.Checks[name] = "error: " + failure
		r.Failed = append(r.Failed, name)
	}
	check(HealthCheckFetch, w.stalledFetchers(now))
	grace := w.healthGrace()
	for _, d := range []struct {
		name string
		dep  *dependency
	}{{HealthCheckRedis, &w.health.redis}, {HealthCheckDatabase, &w.health.db}} {
		failure := ""
		if down := d.dep.downFor(now); down > grace {
			failure = fmt.Sprintf("unreachable for %s (grace %s)", down.Round(time.Second), grace)
		}
		check(d.name, failure)
	}
	check(HealthCheckDraining, w.drainingFailure())
	if !r.OK() {
		r.Status = "unhealthy"
	}
	return r
}

// Readiness reports whether the worker can take work now (/readyz): the
// last call to Redis and to the database succeeded, and it is not
// draining. Status is "ok" or "unavailable".
func (w *Worker) Readiness() HealthReport {
	r := HealthReport{Status: "ok", WorkerID: w.ID, Checks: map[string]string{}}
	check := func(name string, failure string) {
		if failure == "" {
			r.Checks[name] = "ok"
			return
		}
		r.Checks[name] = "error: " + failure
		r.Failed = append(r.Failed, name)
	}
	for _, d := range []struct {
		name string
		dep  *dependency
	}{{HealthCheckRedis, &w.health.redis}, {HealthCheckDatabase, &w.health.db}} {
		failure := ""
		if !d.dep.reachableNow() {
			failure = "unreachable"
		}
		check(d.name, failure)
	}
	check(HealthCheckDraining, w.drainingFailure())
	if !r.OK() {
		r.Status = "unavailable"
	}
	return r
}

func (w *Worker) drainingFailure() string {
	if w.Draining() {
		return "draining: taking no new runs"
	}
	return ""
}

// stalledFetchers names the consumers whose loop stalled, or "".
func (w *Worker) stalledFetchers(now time.Time) string {
	bound := w.FetchStallAfter
	if bound <= 0 {
		bound = FetchStallAfterDefault
	}
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	var stalled []string
	for id, p := range w.health.fetchers {
		if d := p.stalledFor(now); d > bound {
			stalled = append(stalled, fmt.Sprintf("%s stalled for %s", id, d.Round(time.Second)))
		}
	}
	sort.Strings(stalled)
	if len(stalled) == 0 {
		return ""
	}
	return fmt.Sprintf("%v (bound %s)", stalled, bound)
}

func (w *Worker) healthGrace() time.Duration {
	if w.HealthGrace > 0 {
		return w.HealthGrace
	}
	return HealthGraceDefault
}

// healthProbe pings Redis and the database (if the worker has a DB) every
// interval, so an idle worker, which makes no claim and whose heartbeat
// may be seconds apart, still knows within a fraction of its grace
// whether they answer. It logs each change of a dependency's state once.
type healthProbe struct {
	startstop.BaseStartStop
	w        *Worker
	interval time.Duration
	log      logrus.FieldLogger
}

// newHealthProbe probes four times per grace period, between 100 ms and
// healthProbeMax apart.
func newHealthProbe(w *Worker, log logrus.FieldLogger) *healthProbe {
	return &healthProbe{w: w, interval: min(max(w.healthGrace()/4, 100*time.Millisecond), healthProbeMax),
		log: log.WithField("component", "health")}
}

// Start launches the probe goroutine.
func (p *healthProbe) Start(ctx context.Context) {
	ctx, shouldStart, stopped := p.StartInit(ctx)
	if !shouldStart {
		return
	}
	go func() {
		defer stopped()
		ticker := time.NewTicker(p.interval)
		defer ticker.Stop()
		up := map[string]bool{HealthCheckRedis: true, HealthCheckDatabase: true}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			p.runOnce(ctx, up)
		}
	}()
}

// runOnce pings each dependency once, within the probe interval.
func (p *healthProbe) runOnce(ctx context.Context, up map[string]bool) {
	probe := func(name string, dep *dependency, ping func(context.Context) error) {
		pctx, cancel := context.WithTimeout(ctx, p.interval)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return // stopping: a cancelled ping says nothing
		}
		dep.observe(err, time.Now())
		switch {
		case err != nil && up[name]:
			p.log.WithError(err).WithField("check", name).Warn("health probe failed")
		case err == nil && !up[name]:
			p.log.WithField("check", name).Info("health probe answered again")
		}
		up[name] = err == nil
	}
	probe(HealthCheckRedis, &p.w.health.redis, p.w.rdb.Ping)
	if p.w.DB != nil {
		probe(HealthCheckDatabase, &p.w.health.db, p.w.DB.Ping)
	}
}

// claimed is the claimer's report of each batch (claimer.claimed): the
// batch's outcome tells of the database, and each run claimed goes to the
// Observer's RunClaimed when it listens (pickup latency).
func (w *Worker) claimed(claims []orcheo.RunClaim, err error, at time.Time) {
	w.health.db.observe(err, at)
	co, ok := w.Observer.(ClaimObserver)
	if !ok || err != nil {
		return
	}
	for _, c := range claims {
		if c.Err == nil && c.Run != nil {
			co.RunClaimed(c.Run, at)
		}
	}
}
