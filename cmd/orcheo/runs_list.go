package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// runFilterFlags are the filters runs list, runs retry and runs cancel
// share.
type runFilterFlags struct {
	workflow, status, trigger, queue, since, until, id, key *string
}

func addRunFilterFlags(fs *flag.FlagSet) *runFilterFlags {
	return &runFilterFlags{
		workflow: fs.String("workflow", "", "only runs of this workflow (id or handle)"),
		status:   fs.String("status", "", "only runs with this status: "+statusList()),
		trigger:  fs.String("trigger", "", "only runs created by this trigger: manual, webhook, cron, workflow"),
		queue:    fs.String("queue", "", "only runs of this queue"),
		since:    fs.String("since", "", "only runs created at or after this: a duration ago (2h, 30m, 7d) or an RFC 3339 time"),
		until:    fs.String("until", "", "only runs created before this: a duration ago or an RFC 3339 time"),
		id:       fs.String("id", "", "only the run with this id"),
		key:      fs.String("idempotency-key", "", "only runs holding this idempotency key"),
	}
}

// given reports whether any filter was set.
func (f *runFilterFlags) given() bool {
	for _, v := range []*string{f.workflow, f.status, f.trigger, f.queue, f.since, f.until, f.id, f.key} {
		if *v != "" {
			return true
		}
	}
	return false
}

// query builds the client's query, times relative to now.
func (f *runFilterFlags) query(now time.Time) (client.RunQuery, error) {
	if *f.status != "" && !orcheo.RunStatus(*f.status).Valid() {
		return client.RunQuery{}, orcheo.Errorf(orcheo.EINVALID, "--status %q is not one of %s", *f.status, statusList())
	}
	q := client.RunQuery{Workflow: *f.workflow, Status: *f.status, Trigger: *f.trigger, Queue: *f.queue,
		ID: *f.id, IdempotencyKey: *f.key}
	var err error
	if q.Since, err = parseSince("--since", *f.since, now); err != nil {
		return q, err
	}
	if q.Until, err = parseSince("--until", *f.until, now); err != nil {
		return q, err
	}
	return q, nil
}

// parseSince reads a time given as a duration before now ("2h", "90m",
// "7d": a day is 24 hours) or as RFC 3339; "" is the zero time.
func parseSince(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok && err != nil {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			d = time.Duration(n) * 24 * time.Hour
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, orcheo.Errorf(orcheo.EINVALID, "%s %q is neither a duration (2h, 30m, 7d) nor an RFC 3339 time", name, v)
	}
	return now.Add(-d), nil
}

type runsList struct {
	*env
	cfg Config
}

func (c *runsList) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runs list")
	filters := addRunFilterFlags(fs)
	limit := fs.Int("limit", 50, "at most this many runs (1-1000)")
	cursor := fs.String("cursor", "", "the page after this one: the cursor a previous page printed")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("runs list [--workflow REF] [--status S] [--trigger T] [--queue Q] [--since T] [--until T] [--id ID] [--idempotency-key K] [--limit N] [--cursor C]", pos); err != nil {
		return err
	}
	q, err := filters.query(time.Now())
	if err != nil {
		return err
	}
	q.Limit, q.Cursor = *limit, *cursor
	cl := c.cfg.newClient()
	page, err := cl.ListRuns(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, page)
	}
	handles, err := workflowHandles(ctx, cl)
	if err != nil {
		return err
	}
	t := newTable(c.stdout, "ID", "WORKFLOW", "VERSION", "STATUS", "TRIGGER", "SCHEDULED", "ATTEMPT", "CREATED", "DURATION", "NOTE")
	for _, r := range page.Runs {
		t.row(r.ID, handles.name(r.WorkflowID), strconv.Itoa(r.Version), string(r.Status), r.TriggeredBy,
			formatTime(r.ScheduledFor), strconv.Itoa(attemptsUsed(r)), formatTime(&r.CreatedAt),
			formatDuration(r.StartedAt, r.CompletedAt), runNote(r))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if page.HasMore {
		fmt.Fprintf(c.stdout, "(more runs: add --cursor %s for the next page)\n", page.NextCursor)
	}
	return nil
}
