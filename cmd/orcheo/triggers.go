package main

import (
	"context"
	"fmt"
	"strings"
)

func triggerCommands(e *env, cfg Config) map[string]command {
	return map[string]command{
		"cron": cronCommands(e, cfg),
		"webhook": &group{name: "triggers webhook", cmds: map[string]command{
			"enable":  &webhookSet{env: e, cfg: cfg, enable: true},
			"disable": &webhookSet{env: e, cfg: cfg},
			"show":    &webhookShow{env: e, cfg: cfg},
		}},
	}
}

// webhookSet enables or disables a workflow's webhook trigger, keeping the
// rest of its config.
type webhookSet struct {
	*env
	cfg    Config
	enable bool
}

func (c *webhookSet) Run(ctx context.Context, args []string) error {
	name := "triggers webhook disable"
	if c.enable {
		name = "triggers webhook enable"
	}
	fs := c.newFlagSet(name)
	methods := fs.String("methods", "", "comma-separated methods to accept (default POST)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(name+" REF", pos, "REF"); err != nil {
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
	cfg.Enabled = c.enable
	if *methods != "" {
		cfg.Methods = splitList(strings.ToUpper(*methods))
	}
	if view, err = cl.SetWebhookConfig(ctx, pos[0], cfg); err != nil {
		return err
	}
	if !c.enable {
		fmt.Fprintf(c.stdout, "webhook of %s disabled\n", pos[0])
		return nil
	}
	fmt.Fprintf(c.stdout, "webhook of %s enabled: %s %s/api/workflows/%s/triggers/webhook\n",
		pos[0], strings.Join(webhookMethods(view.Methods), "|"), c.cfg.URL, pos[0])
	return nil
}

func webhookMethods(methods []string) []string {
	if len(methods) == 0 {
		return []string{"POST"}
	}
	return methods
}

type webhookShow struct {
	*env
	cfg Config
}

func (c *webhookShow) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers webhook show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers webhook show REF", pos, "REF"); err != nil {
		return err
	}
	cfg, err := c.cfg.newClient().FindWebhookConfig(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, cfg)
	}
	fmt.Fprintf(c.stdout, "Enabled  %t\nMethods  %s\nURL      %s/api/workflows/%s/triggers/webhook\n",
		cfg.Enabled, strings.Join(webhookMethods(cfg.Methods), ", "), c.cfg.URL, pos[0])
	return nil
}
