package main

import (
	"context"
	"fmt"
	"strings"
)

// controlCommands are the subcommands of orcheo control, after Celery's.
func controlCommands(e *env, cfg Config) map[string]command {
	return map[string]command{"shutdown": &shutdownCommand{env: e, cfg: cfg}}
}

// shutdownCommand asks workers to drain and exit as on SIGTERM: orcheo
// control shutdown [WORKER…] [--json]; no name means every online worker.
// It returns once they are told, not once they have exited: orcheo
// workers shows them "draining" until they leave.
type shutdownCommand struct {
	*env
	cfg Config
}

func (c *shutdownCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("control shutdown")
	asJSON := fs.Bool("json", false, "print JSON")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	told, err := c.cfg.newClient().Shutdown(ctx, names)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string][]string{"shutdown": told})
	}
	if len(told) == 0 {
		fmt.Fprintln(c.stdout, "no worker online")
		return nil
	}
	fmt.Fprintf(c.stdout, "shutdown requested: %s\n", strings.Join(told, ", "))
	return nil
}
