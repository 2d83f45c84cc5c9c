package main

import (
	"context"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
)

func cronCommands(e *env, cfg Config) command {
	return &group{name: "triggers cron", cmds: map[string]command{
		"set":    &cronSet{env: e, cfg: cfg},
		"show":   &cronShow{env: e, cfg: cfg},
		"delete": &cronDelete{env: e, cfg: cfg},
	}}
}

// cronSet creates or replaces a workflow's cron trigger; every flag not
// given takes its default (the config is replaced, not merged).
type cronSet struct {
	*env
	cfg Config
}

func (c *cronSet) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers cron set")
	expr := fs.String("expression", "", `cron expression, e.g. "*/5 * * * *" or "@hourly" (required)`)
	tz := fs.String("timezone", "UTC", "IANA time zone of the expression")
	overlap := fs.Bool("allow-overlapping", false, "fire even while the previous run is pending or running")
	startAt := fs.String("start-at", "", "first time a slot may fire (RFC 3339)")
	endAt := fs.String("end-at", "", "last time a slot may fire (RFC 3339)")
	catchup := fs.String("catchup", "none", "missed slots: none, latest or all")
	limit := fs.Int("catchup-limit", 0, "with --catchup all: at most this many missed slots (default 10)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers cron set REF --expression EXPR [flags]", pos, "REF"); err != nil {
		return err
	}
	t := &orcheo.CronTrigger{Expression: *expr, Timezone: *tz, AllowOverlapping: *overlap,
		Catchup: orcheo.CatchupPolicy(*catchup), CatchupLimit: *limit}
	for _, f := range []struct {
		name string
		v    string
		dst  **time.Time
	}{{"--start-at", *startAt, &t.StartAt}, {"--end-at", *endAt, &t.EndAt}} {
		if f.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, f.v)
		if err != nil {
			return orcheo.Errorf(orcheo.EINVALID, "%s: %q is not an RFC 3339 time such as 2025-01-31T09:00:00Z", f.name, f.v)
		}
		*f.dst = &v
	}
	got, err := c.cfg.newClient().SetCronTrigger(ctx, pos[0], t)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, got)
	}
	fmt.Fprintf(c.stdout, "cron trigger of %s set: %q in %s, next at %s\n", pos[0], got.Expression, got.Timezone, nextAt(got))
	return nil
}

func nextAt(t *orcheo.CronTrigger) string {
	if t.NextAt == nil {
		return "never (outside its start/end window)"
	}
	loc, err := t.Location()
	if err != nil {
		loc = time.UTC
	}
	return t.NextAt.In(loc).Format(time.RFC3339)
}

type cronShow struct {
	*env
	cfg Config
}

func (c *cronShow) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers cron show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers cron show REF", pos, "REF"); err != nil {
		return err
	}
	t, err := c.cfg.newClient().FindCronTrigger(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, t)
	}
	opt := func(v *time.Time) string {
		if v == nil {
			return "-"
		}
		return v.UTC().Format(time.RFC3339)
	}
	catchup := string(t.Catchup)
	if t.Catchup == orcheo.CatchupAll {
		catchup = fmt.Sprintf("all (at most %d)", t.Limit())
	}
	fmt.Fprintf(c.stdout, "Expression        %s\nTimezone          %s\nAllow overlapping %t\nStart at          %s\nEnd at            %s\n"+
		"Catch-up          %s\nLast dispatched   %s\nNext at           %s\n",
		t.Expression, t.Timezone, t.AllowOverlapping, opt(t.StartAt), opt(t.EndAt), catchup, opt(t.LastDispatchedAt), nextAt(t))
	return nil
}

type cronDelete struct {
	*env
	cfg Config
}

func (c *cronDelete) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers cron delete")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers cron delete REF", pos, "REF"); err != nil {
		return err
	}
	if err := c.cfg.newClient().DeleteCronTrigger(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "cron trigger of %s deleted\n", pos[0])
	return nil
}
