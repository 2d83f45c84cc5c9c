package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/startstop"
	trdb "github.com/orcheo/orcheo/tasks/rdb"
	"github.com/sirupsen/logrus"
)

// deregisterTimeout bounds removing a worker's record at Stop; past it
// the record expires by itself within the consumer TTL.
const deregisterTimeout = 5 * time.Second

// DefaultWorkerName is "<host>-<pid>", the name of a worker started
// without one (Celery's default nodename is "celery@<host>"; the pid
// keeps several workers of one host apart).
func DefaultWorkerName() string {
	return sanitizeHost(hostname()) + "-" + fmt.Sprint(os.Getpid())
}

// ExpandWorkerName replaces "%h" in name with the host name, as Celery's
// -n does ("w1@%h").
func ExpandWorkerName(name string) string {
	return strings.ReplaceAll(name, "%h", sanitizeHost(hostname()))
}

func hostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "worker"
	}
	return host
}

// sanitizeHost keeps a host name within orcheo.CheckWorkerName's
// characters.
func sanitizeHost(host string) string {
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), orcheo.WorkerNameMax-16)])
}

// registry keeps a worker's record in Redis, for operators (orcheo
// workers, inspect) and their control (orcheo control shutdown): it writes
// the record every HeartbeatInterval, valid for ConsumerTTL, removes it at
// Stop, and hears shutdown requests at once on the control channel and,
// should it miss the notice, in the answer of its next write. It runs
// from Worker.Start until after the consumers have drained.
type registry struct {
	startstop.BaseStartStop
	w   *Worker
	log logrus.FieldLogger
	// consumers are the worker's, for "reserved": set by Start once they
	// are launched. Not read under the worker's mu, which Start holds
	// while it writes the first record.
	consumers atomic.Pointer[[]*consumer]
}

// watch makes the record list what cs hold.
func (g *registry) watch(cs []*consumer) {
	cs = slices.Clone(cs)
	g.consumers.Store(&cs)
}

// snapshot is the worker's record now.
func (g *registry) snapshot(now time.Time) orcheo.WorkerInfo {
	w := g.w
	state := orcheo.WorkerOnline
	if w.draining.Load() {
		state = orcheo.WorkerDraining
	}
	active := w.leases.snapshot()
	var consumers []*consumer
	if cs := g.consumers.Load(); cs != nil {
		consumers = *cs
	}
	return orcheo.WorkerInfo{
		Name: w.Name, ID: w.ID, Host: hostname(), PID: os.Getpid(), State: state,
		Queues: w.cfg.Queues, Concurrency: w.cfg.Concurrency,
		Active: active, Reserved: reserved(consumers, active),
		StartedAt: w.startedAt, LastHeartbeat: now.UTC(),
		Stats: orcheo.WorkerStats{
			Processed: w.stats.processed.Load(), Failed: w.stats.failed.Load(),
			Retried: w.stats.retried.Load(), Pool: w.cfg.Concurrency,
		},
	}
}

// beat writes the record once. It returns trdb.ErrWorkerNameTaken when
// another live process holds the name, and asks the worker to drain when
// an operator asked it to.
func (g *registry) beat(ctx context.Context) error {
	now := time.Now()
	info, err := json.Marshal(g.snapshot(now))
	if err != nil {
		return fmt.Errorf("encode worker record: %w", err)
	}
	shutdown, err := g.w.rdb.RegisterWorker(ctx, g.w.Name, g.w.ID, info, now, g.w.cfg.ConsumerTTL)
	if err != nil {
		return err
	}
	if shutdown {
		g.w.requestShutdown("found at heartbeat")
	}
	return nil
}

// Start subscribes to the control channel, on the worker's one client,
// and launches the goroutine that writes the record every
// HeartbeatInterval and hears the channel.
func (g *registry) Start(ctx context.Context) {
	ctx, shouldStart, stopped := g.StartInit(ctx)
	if !shouldStart {
		return
	}
	heedNotices(ctx, g.w.rdb.client, g.w.rdb.ControlChannel(), g.w.cfg.HeartbeatInterval,
		func(payload string) {
			if payload == g.w.ID {
				g.w.requestShutdown("control channel")
			}
		},
		func(ctx context.Context) {
			if err := g.beat(ctx); err != nil && ctx.Err() == nil {
				g.log.WithError(err).Warn("write worker record; retrying at the next heartbeat")
			}
		}, stopped)
}

// Stop ends the goroutine and removes the record (a clean stop).
func (g *registry) Stop() {
	g.BaseStartStop.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), deregisterTimeout)
	defer cancel()
	if err := g.w.rdb.DeregisterWorker(ctx, g.w.Name, g.w.ID); err != nil {
		g.log.WithError(err).Warn("remove worker record; it expires by itself")
	}
}

// reserved are the messages consumers hold whose run is not among active
// (taken, not yet claimed here), by queue and run id.
func reserved(consumers []*consumer, active []orcheo.ActiveRun) []orcheo.ReservedMessage {
	running := make(map[string]bool, len(active))
	for _, a := range active {
		running[a.RunID] = true
	}
	out := []orcheo.ReservedMessage{}
	for _, c := range consumers {
		if c.broker == nil {
			continue
		}
		for _, msg := range c.broker.held() {
			sig, err := decodeMessage(msg)
			if err != nil {
				continue
			}
			if id := runIDOf(sig); id != "" && !running[id] {
				out = append(out, orcheo.ReservedMessage{RunID: id, Queue: c.queue})
			}
		}
	}
	slices.SortFunc(out, func(a, b orcheo.ReservedMessage) int {
		return strings.Compare(a.Queue+" "+a.RunID, b.Queue+" "+b.RunID)
	})
	return out
}

// held returns the messages the broker took and has not settled.
func (b *reliableBroker) held() []string {
	b.inflightMu.Lock()
	defer b.inflightMu.Unlock()
	out := make([]string, 0, len(b.inflight))
	for m := range b.inflight {
		out = append(out, m)
	}
	return out
}

// countAttempt counts an attempt whose result was stored (WorkerStats):
// stored is the run as stored, outcome the attempt's own.
func (w *Worker) countAttempt(stored *orcheo.Run, outcome orcheo.RunStatus) {
	if stored == nil {
		return
	}
	w.stats.processed.Add(1)
	if outcome == orcheo.RunFailed {
		w.stats.failed.Add(1)
	}
	if stored.Status == orcheo.RunPending {
		w.stats.retried.Add(1)
	}
}

// errNameTaken is Start's error for a name another live worker holds.
func errNameTaken(name string) error {
	return orcheo.Errorf(orcheo.ECONFLICT, "worker name %q is held by another live worker: choose another -n, or wait for its record to expire", name)
}

// registerFirst writes the worker's first record, at Start, so that a
// name held by another live process is refused before anything is
// consumed.
func (g *registry) registerFirst(ctx context.Context) error {
	err := g.beat(ctx)
	if errors.Is(err, trdb.ErrWorkerNameTaken) {
		return errNameTaken(g.w.Name)
	}
	return err
}
