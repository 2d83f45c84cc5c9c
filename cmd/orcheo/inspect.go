package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// The operators' read verbs, after Celery's inspect: each asks the API
// (GET /api/workers, /api/inspect/scheduled), prints a table, or with
// --json the rows as JSON.
//
//	orcheo workers               (alias: orcheo inspect ping)
//	orcheo inspect active        runs executing now, per worker
//	orcheo inspect reserved      messages taken, not yet started
//	orcheo inspect scheduled     delayed retries and suspended runs
//	orcheo inspect stats         per worker: processed, failed, retried, uptime, pool

// inspectCommands are the subcommands of orcheo inspect.
func inspectCommands(e *env, cfg Config) map[string]command {
	return map[string]command{
		"ping":      &workersCommand{env: e, cfg: cfg, name: "inspect ping"},
		"active":    &inspectCommand{env: e, cfg: cfg, verb: "active", print: printActive},
		"reserved":  &inspectCommand{env: e, cfg: cfg, verb: "reserved", print: printReserved},
		"stats":     &inspectCommand{env: e, cfg: cfg, verb: "stats", print: printStats},
		"scheduled": &scheduledCommand{env: e, cfg: cfg},
	}
}

// workersCommand lists the online workers: orcheo workers [--json].
type workersCommand struct {
	*env
	cfg  Config
	name string
}

func (c *workersCommand) Run(ctx context.Context, args []string) error {
	asJSON, err := c.parseInspect(c.name, args)
	if err != nil {
		return err
	}
	ws, err := c.cfg.newClient().Workers(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.stdout, ws)
	}
	t := newTable(c.stdout, "NAME", "STATE", "HOST", "PID", "QUEUES", "CONCURRENCY", "ACTIVE", "STARTED", "LAST HEARTBEAT")
	for _, w := range ws {
		t.row(w.Name, w.State, w.Host, strconv.Itoa(w.PID), strings.Join(w.Queues, ","), strconv.Itoa(w.Concurrency),
			strconv.Itoa(len(w.Active)), formatTime(&w.StartedAt), formatTime(&w.LastHeartbeat))
	}
	return t.flush()
}

// parseInspect parses the one flag of the inspect verbs, --json.
func (e *env) parseInspect(name string, args []string) (asJSON bool, err error) {
	fs := e.newFlagSet(name)
	j := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return false, err
	}
	return *j, wantArgs(name, pos)
}

// inspectCommand is one per-worker view of GET /api/workers.
type inspectCommand struct {
	*env
	cfg   Config
	verb  string
	print func(c *inspectCommand, ws []*orcheo.WorkerInfo, asJSON bool) error
}

func (c *inspectCommand) Run(ctx context.Context, args []string) error {
	asJSON, err := c.parseInspect("inspect "+c.verb, args)
	if err != nil {
		return err
	}
	ws, err := c.cfg.newClient().Workers(ctx)
	if err != nil {
		return err
	}
	return c.print(c, ws, asJSON)
}

// activeRow is one run in flight, with its worker.
type activeRow struct {
	Worker string `json:"worker"`
	orcheo.ActiveRun
}

func printActive(c *inspectCommand, ws []*orcheo.WorkerInfo, asJSON bool) error {
	rows := []activeRow{}
	for _, w := range ws {
		for _, a := range w.Active {
			rows = append(rows, activeRow{Worker: w.Name, ActiveRun: a})
		}
	}
	if asJSON {
		return writeJSON(c.stdout, rows)
	}
	t := newTable(c.stdout, "WORKER", "RUN", "WORKFLOW", "QUEUE", "ATTEMPT", "SINCE")
	for _, r := range rows {
		t.row(r.Worker, r.RunID, r.WorkflowID, r.Queue, strconv.Itoa(r.Attempt), formatTime(&r.Since))
	}
	return t.flush()
}

// reservedRow is one message taken and not yet started, with its worker.
type reservedRow struct {
	Worker string `json:"worker"`
	orcheo.ReservedMessage
}

func printReserved(c *inspectCommand, ws []*orcheo.WorkerInfo, asJSON bool) error {
	rows := []reservedRow{}
	for _, w := range ws {
		for _, m := range w.Reserved {
			rows = append(rows, reservedRow{Worker: w.Name, ReservedMessage: m})
		}
	}
	if asJSON {
		return writeJSON(c.stdout, rows)
	}
	t := newTable(c.stdout, "WORKER", "RUN", "QUEUE")
	for _, r := range rows {
		t.row(r.Worker, r.RunID, r.Queue)
	}
	return t.flush()
}

// statsRow is one worker's counters.
type statsRow struct {
	Worker string `json:"worker"`
	orcheo.WorkerStats
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"` // at its last heartbeat
}

func printStats(c *inspectCommand, ws []*orcheo.WorkerInfo, asJSON bool) error {
	rows := []statsRow{}
	for _, w := range ws {
		rows = append(rows, statsRow{Worker: w.Name, WorkerStats: w.Stats, StartedAt: w.StartedAt,
			UptimeSeconds: int64(w.LastHeartbeat.Sub(w.StartedAt) / time.Second)})
	}
	if asJSON {
		return writeJSON(c.stdout, rows)
	}
	t := newTable(c.stdout, "WORKER", "PROCESSED", "FAILED", "RETRIED", "POOL", "UPTIME")
	for _, r := range rows {
		t.row(r.Worker, fmt.Sprint(r.Processed), fmt.Sprint(r.Failed), fmt.Sprint(r.Retried), strconv.Itoa(r.Pool),
			(time.Duration(r.UptimeSeconds) * time.Second).String())
	}
	return t.flush()
}

// scheduledCommand lists runs waiting for a due time: orcheo inspect
// scheduled [--limit N] [--json].
type scheduledCommand struct {
	*env
	cfg Config
}

func (c *scheduledCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("inspect scheduled")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 0, "at most this many (default 100, at most 1000)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("inspect scheduled [--limit N]", pos); err != nil {
		return err
	}
	rows, err := c.cfg.newClient().Scheduled(ctx, *limit)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []*orcheo.ScheduledRun{}
	}
	if *asJSON {
		return writeJSON(c.stdout, rows)
	}
	t := newTable(c.stdout, "RUN", "KIND", "WORKFLOW", "QUEUE", "ATTEMPT", "DUE")
	for _, r := range rows {
		t.row(r.RunID, r.Kind, r.WorkflowID, r.Queue, strconv.Itoa(r.Attempt), formatTime(&r.DueAt))
	}
	return t.flush()
}
