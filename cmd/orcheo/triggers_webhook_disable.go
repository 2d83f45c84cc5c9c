package main

import (
	"context"
	"fmt"
)

// webhookDisable disables a workflow's webhook trigger and keeps the rest
// of its config (the stored secrets included) for the next enable.
type webhookDisable struct {
	*env
	cfg Config
}

func (c *webhookDisable) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers webhook disable")
	setUsage(fs, "triggers webhook disable REF", "Disables REF's webhook; its config, secrets included, stays for the next enable.")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers webhook disable REF", pos, "REF"); err != nil {
		return err
	}
	cl := c.cfg.newClient()
	view, err := cl.FindWebhookConfig(ctx, pos[0])
	if err != nil {
		return err
	}
	// The view holds no secrets; a config of the same verify type without
	// them keeps the stored ones.
	cfg := view.Config()
	cfg.Enabled = false
	if _, err := cl.SetWebhookConfig(ctx, pos[0], cfg); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "webhook of %s disabled\n", pos[0])
	return nil
}
