package main

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
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
	_, err = changeWebhookConfig(ctx, c.cfg.newClient(), pos[0], func(view *orcheo.WebhookConfigView) (*orcheo.WebhookConfig, error) {
		// The view holds no secrets; a config of the same verify type
		// without them keeps the stored ones.
		cfg := view.Config()
		cfg.Enabled = false
		return cfg, nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "webhook of %s disabled\n", pos[0])
	return nil
}
