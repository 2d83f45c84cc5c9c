package main

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
)

// migrateCommand applies the embedded migrations and exits. api and worker
// also migrate on start; this is for deploys that migrate first.
type migrateCommand struct {
	*env
	cfg Config
}

func (c *migrateCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("migrate")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if c.cfg.DatabaseURL == "" {
		return orcheo.Errorf(orcheo.EINVALID, "ORCHEO_DATABASE_URL is not set")
	}
	if err := db.Migrate(ctx, c.cfg.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "database is up to date")
	return nil
}
