package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/orcheo/orcheo"
)

// statusCommand reports whether the API answers and its dependencies are
// ready; it exits non-zero when anything is not.
type statusCommand struct {
	*env
	cfg Config
}

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("status")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("status", pos); err != nil {
		return err
	}
	checks, readyErr := c.cfg.newClient().Ready(ctx)
	if checks == nil && readyErr != nil {
		return readyErr
	}
	if *asJSON {
		if err := writeJSON(c.stdout, map[string]interface{}{"url": c.cfg.URL, "checks": checks}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "API       %s\n", c.cfg.URL)
		names := make([]string, 0, len(checks))
		for n := range checks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(c.stdout, "%-9s %s\n", n, checks[n])
		}
	}
	if readyErr != nil {
		return orcheo.Errorf(orcheo.EUNAVAILABLE, "orcheo is not ready")
	}
	return nil
}
