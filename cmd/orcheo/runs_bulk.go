package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

const (
	retryUsage  = "runs retry ID | runs retry --status S [--workflow REF] [--since T] [filters] [--dry-run] [--all]"
	cancelUsage = "runs cancel [--wait] ID | runs cancel --status S [--queue Q] [filters] [--dry-run] [--all]"
)

// bulkFlags turn runs retry and runs cancel into actions on every run a
// filter selects (POST /api/runs/retry, /api/runs/cancel), the safe form of
// Celery's purge: the database says which runs, and each goes through the
// single action's path.
type bulkFlags struct {
	filters *runFilterFlags
	all     *bool
	dryRun  *bool
	limit   *int
	asJSON  *bool
}

func addBulkFlags(fs *flag.FlagSet) *bulkFlags {
	return &bulkFlags{
		filters: addRunFilterFlags(fs),
		all:     fs.Bool("all", false, "with no filter: act on every run"),
		dryRun:  fs.Bool("dry-run", false, "list the runs and what would happen to each, changing nothing"),
		limit:   fs.Int("batch", 1000, "runs per API call (1-1000); calls repeat until every match is done"),
		asJSON:  fs.Bool("json", false, "print JSON (one object per API call)"),
	}
}

// given reports whether the command is a bulk one.
func (b *bulkFlags) given() bool { return b.filters.given() || *b.all || *b.dryRun }

// run applies action ("retry" or "cancel") to every matching run, one
// page of runs per call, printing a line per run and a summary. It fails
// if a run's outcome was an error (the server stopped there).
func (b *bulkFlags) run(ctx context.Context, e *env, cfg Config, action string) error {
	if !b.filters.given() && !*b.all {
		return orcheo.Errorf(orcheo.EINVALID, "runs %s without a run id needs a filter (--status, --workflow, --queue, --since, …) or --all", action)
	}
	q, err := b.filters.query(time.Now())
	if err != nil {
		return err
	}
	q.Limit = *b.limit
	cl := cfg.newClient()
	call := cl.RetryRuns
	if action == "cancel" {
		call = cl.CancelRuns
	}
	counts := map[string]int{}
	var order []string
	cursor := ""
	var t *table
	if !*b.asJSON {
		t = newTable(e.stdout, "ID", "STATUS", "OUTCOME", "NOTE")
	}
	for {
		res, err := call(ctx, client.RunBulk{Query: q, All: *b.all, DryRun: *b.dryRun, Cursor: cursor})
		if err != nil {
			return err
		}
		if *b.asJSON {
			if err := writeJSON(e.stdout, res); err != nil {
				return err
			}
		}
		for _, r := range res.Runs {
			if counts[r.Outcome] == 0 {
				order = append(order, r.Outcome)
			}
			counts[r.Outcome]++
			if t != nil {
				t.row(r.ID, r.Status, r.Outcome, r.Error)
			}
		}
		if counts["error"] > 0 {
			if t != nil {
				_ = t.flush()
			}
			return orcheo.Errorf(orcheo.EUNAVAILABLE, "runs %s stopped: the server could not act on a run (see above); run it again to go on", action)
		}
		if !res.More {
			break
		}
		cursor = res.NextCursor
	}
	if t == nil {
		return nil
	}
	if err := t.flush(); err != nil {
		return err
	}
	total := 0
	summary := ""
	for _, o := range order {
		total += counts[o]
		summary += fmt.Sprintf(", %d %s", counts[o], o)
	}
	prefix := ""
	if *b.dryRun {
		prefix = "dry run, nothing changed: "
	}
	fmt.Fprintf(e.stdout, "%s%d runs matched%s\n", prefix, total, summary)
	return nil
}
