package main

import (
	"context"
	"fmt"

	"github.com/orcheo/orcheo"
)

// webhookRotateSecret replaces the secret of a workflow's webhook. The old
// one stays valid as the previous secret, so senders can move over without
// a refused delivery, until --drop-previous removes it.
type webhookRotateSecret struct {
	*env
	cfg Config
}

const webhookRotateNotes = "With a new secret, the current one becomes the previous secret and is still accepted;\n" +
	"once every sender signs with the new one, --drop-previous stops accepting the old one.\n\n" + noSecretFlag

func (c *webhookRotateSecret) Run(ctx context.Context, args []string) error {
	if err := refuseSecretFlag(args); err != nil {
		return err
	}
	fs := c.newFlagSet("triggers webhook rotate-secret")
	synopsis := "triggers webhook rotate-secret REF (--secret-file PATH | --secret-stdin | --drop-previous)"
	setUsage(fs, synopsis, webhookRotateNotes)
	var src secretSource
	src.register(fs)
	drop := fs.Bool("drop-previous", false, "stop accepting the previous secret")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(synopsis, pos, "REF"); err != nil {
		return err
	}
	switch {
	case *drop && src.given():
		return orcheo.Errorf(orcheo.EINVALID, "rotate-secret: give a new secret or --drop-previous, not both")
	case !*drop && !src.given():
		return orcheo.Errorf(orcheo.EINVALID, "rotate-secret needs --secret-file PATH, --secret-stdin or --drop-previous")
	}
	secret, err := src.read(c.stdin)
	if err != nil {
		return err
	}
	view, err := c.cfg.newClient().RotateWebhookSecret(ctx, pos[0], secret, *drop)
	if err != nil {
		return err
	}
	if *drop {
		fmt.Fprintf(c.stdout, "previous secret of the webhook of %s dropped; only the current one is accepted\n", pos[0])
		return nil
	}
	at := ""
	if view.Verify != nil && view.Verify.SecretSetAt != nil {
		at = " (" + formatTime(view.Verify.SecretSetAt) + ")"
	}
	fmt.Fprintf(c.stdout, "secret of the webhook of %s rotated%s; the previous one is still accepted until "+
		"orcheo triggers webhook rotate-secret %s --drop-previous\n", pos[0], at, pos[0])
	return nil
}
