package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/metrics"
	"github.com/orcheo/orcheo/tasks/maintenance"
)

// runsPurge is orcheo runs purge --older-than AGE [--status S …]
// [--dry-run]: it deletes finished runs through the API, asking again
// while the API says more remain (each request is bounded in time).
type runsPurge struct {
	*env
	cfg Config
}

// statusFlags is a repeatable --status that also takes a comma list.
type statusFlags []orcheo.RunStatus

func (s *statusFlags) String() string { return fmt.Sprint(*s) }
func (s *statusFlags) Set(v string) error {
	for _, p := range splitList(v) {
		*s = append(*s, orcheo.RunStatus(p))
	}
	return nil
}

func (c *runsPurge) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runs purge")
	olderThan := fs.String("older-than", "", "delete runs that finished longer ago than this, such as 7d or 12h (required)")
	var statuses statusFlags
	fs.Var(&statuses, "status", "only runs with this status (repeatable): succeeded, failed, cancelled, skipped; default all of them")
	dryRun := fs.Bool("dry-run", false, "count the runs, delete nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	const usage = "runs purge --older-than AGE [--status S ...] [--dry-run]"
	if err := wantArgs(usage, pos); err != nil {
		return err
	}
	if *olderThan == "" {
		return orcheo.Errorf(orcheo.EINVALID, "usage: orcheo %s", usage)
	}
	if _, err := orcheo.ParseAge(*olderThan, false); err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "--older-than: %s", orcheo.ErrorMessage(err))
	}
	for _, st := range statuses { // the API checks again; this says it before any request
		if !st.Terminal() {
			return orcheo.Errorf(orcheo.EINVALID, "--status %q: only finished runs can be purged (succeeded, failed, cancelled, skipped)", st)
		}
	}
	cl := c.cfg.newClient()
	total := client.RunPurgeResult{DryRun: *dryRun}
	for {
		res, err := cl.PurgeRuns(ctx, client.RunPurge{OlderThan: *olderThan, Statuses: statuses, DryRun: *dryRun})
		if err != nil {
			if total.Count > 0 {
				fmt.Fprintf(c.stderr, "orcheo: %d runs deleted before the error\n", total.Count)
			}
			return err
		}
		total.Count += res.Count
		total.Before = res.Before
		total.More = res.More
		if !res.More || *dryRun || res.Count == 0 {
			break
		}
	}
	if *asJSON {
		return writeJSON(c.stdout, total)
	}
	what := "all finished runs"
	if len(statuses) > 0 {
		names := make([]string, len(statuses))
		for i, st := range statuses {
			names[i] = string(st)
		}
		what = strings.Join(names, ", ") + " runs"
	}
	verb, more := "deleted", ""
	if *dryRun {
		verb = "would delete"
		if total.More {
			more = " (at least)"
		}
	}
	fmt.Fprintf(c.stdout, "%s %d%s of %s that finished before %s\n", verb, total.Count, more, what, formatTime(&total.Before))
	return nil
}

// newRetention is the leader worker's retention of finished runs for
// cfg.RunRetention (nil when it is 0: keep every run), counted in m as
// orcheo_retention_deleted_runs_total.
func newRetention(cfg Config, store *db.Store, m processMetrics, log logrus.FieldLogger) *maintenance.Retention {
	if cfg.RunRetention <= 0 {
		return nil
	}
	r := maintenance.NewRetention(maintenance.RetentionConfig{Runs: store.Runs, Retention: cfg.RunRetention, Logger: log})
	metrics.RegisterRetention(m.reg, func() int64 { return r.Stats().Deleted })
	return r
}
