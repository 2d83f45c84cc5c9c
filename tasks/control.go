package tasks

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// Bounds of what the Inspector reads.
const (
	// inspectWorkersMax bounds the workers one call lists.
	inspectWorkersMax = 1000
	// shutdownKeep is how long a shutdown request waits for its worker's
	// next heartbeat: far longer than any heartbeat interval, and it is
	// removed when the worker deregisters.
	shutdownKeep = 10 * time.Minute
)

// Inspector is orcheo.WorkerService on Redis: it reads the records the
// workers write on their heartbeats (registry.go) and the queues' delayed
// sets, and asks workers to drain through their shutdown requests and the
// control channel. Safe for concurrent use; it holds no connection of its
// own beyond the process's one client.
type Inspector struct {
	rdb *rdb
	log logrus.FieldLogger
}

var _ orcheo.WorkerService = (*Inspector)(nil)

// NewInspector validates cfg and returns an Inspector on client, the
// process's one Redis client (its owner closes it).
func NewInspector(cfg Config, client redis.UniversalClient, log logrus.FieldLogger) (*Inspector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	return &Inspector{rdb: newRDBOn(client, &cfg), log: log}, nil
}

// Workers returns the online workers, by name. A record that does not
// decode is logged and left out.
func (in *Inspector) Workers(ctx context.Context) ([]*orcheo.WorkerInfo, error) {
	recs, err := in.rdb.OnlineWorkers(ctx, time.Now(), inspectWorkersMax)
	if err != nil {
		return nil, err
	}
	out := make([]*orcheo.WorkerInfo, 0, len(recs))
	for _, rec := range recs {
		info := new(orcheo.WorkerInfo)
		if err := json.Unmarshal(rec.Info, info); err != nil {
			in.log.WithError(err).WithField("worker", rec.Name).Warn("worker record does not decode; left out")
			continue
		}
		info.Name, info.ID = rec.Name, rec.ID
		if info.Active == nil {
			info.Active = []orcheo.ActiveRun{}
		}
		if info.Reserved == nil {
			info.Reserved = []orcheo.ReservedMessage{}
		}
		out = append(out, info)
	}
	return out, nil
}

// Delayed returns up to limit messages of the delayed sets of queues and
// of the online workers' queues, soonest first.
func (in *Inspector) Delayed(ctx context.Context, queues []string, limit int) ([]orcheo.DelayedMessage, error) {
	workers, err := in.Workers(ctx)
	if err != nil {
		return nil, err
	}
	all := slices.Clone(queues)
	for _, w := range workers {
		all = append(all, w.Queues...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var out []orcheo.DelayedMessage
	for _, q := range all {
		if (&orcheo.Workflow{Handle: "q", Queue: q}).Validate() != nil {
			continue // a record's queue is never trusted as a key
		}
		msgs, due, err := in.rdb.DelayedMessages(ctx, queueName(q), limit)
		if err != nil {
			return nil, err
		}
		for i, m := range msgs {
			sig, err := decodeMessage(m)
			if err != nil {
				continue
			}
			out = append(out, orcheo.DelayedMessage{RunID: runIDOf(sig), Queue: q, DueAt: due[i].UTC()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].DueAt.Equal(out[j].DueAt) {
			return out[i].DueAt.Before(out[j].DueAt)
		}
		return out[i].RunID < out[j].RunID
	})
	return out[:min(len(out), limit)], nil
}

// Shutdown asks the named online workers (all when names is empty) to
// drain, and returns the names told. A name not online is ENOTFOUND and
// tells nobody.
func (in *Inspector) Shutdown(ctx context.Context, names []string) ([]string, error) {
	workers, err := in.Workers(ctx)
	if err != nil {
		return nil, err
	}
	online := make(map[string]string, len(workers))
	for _, w := range workers {
		online[w.Name] = w.ID
	}
	ids := make(map[string]string)
	if len(names) == 0 {
		ids = online
	}
	for _, n := range names {
		id, ok := online[n]
		if !ok {
			return nil, orcheo.Errorf(orcheo.ENOTFOUND, "no worker named %q is online", n)
		}
		ids[n] = id
	}
	if _, err := in.rdb.RequestShutdown(ctx, ids, shutdownKeep); err != nil {
		return nil, err
	}
	told := make([]string, 0, len(ids))
	for n := range ids {
		told = append(told, n)
	}
	slices.Sort(told)
	in.log.WithField("workers", told).Info("workers asked to shut down")
	return told, nil
}

// requestShutdown is an operator's control shutdown reaching this worker:
// it closes ShutdownRequested's channel, so the process knows to exit, and
// drains exactly as on SIGTERM (Stop: no more fetching, runs in flight
// finish for up to DrainTimeout, the rest handed back). Only the first
// call does anything, for the worker's lifetime.
func (w *Worker) requestShutdown(how string) {
	w.shutdownOnce.Do(func() {
		w.Logger.WithFields(logrus.Fields{"component": "worker", "worker_id": w.ID, "worker": w.Name, "via": how}).
			Info("shutdown requested by an operator: draining")
		close(w.shutdown)
		go w.Stop()
	})
}

// ShutdownRequested is closed once an operator asked this worker to shut
// down (orcheo control shutdown). The worker then stops by itself; its
// process should call Stop (which waits for that drain) and exit 0.
func (w *Worker) ShutdownRequested() <-chan struct{} { return w.shutdown }
