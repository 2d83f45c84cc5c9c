package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// webhookEnable enables a workflow's webhook trigger. It reads the stored
// config and changes only what the flags say: without --verify the
// verification stays, and without a secret flag the server keeps the
// stored secret.
type webhookEnable struct {
	*env
	cfg Config
}

const webhookEnableSynopsis = "triggers webhook enable REF [--method M ...] [--verify TYPE] [--secret-file PATH | --secret-stdin]\n" +
	"       [--header NAME] [--algorithm A] [--encoding E] [--prefix P] [--timestamp-header NAME]\n" +
	"       [--signed body|timestamp_body] [--separator S] [--tolerance 5m]\n" +
	"       [--required-header K=V ...] [--required-query K=V ...] [--rate-limit N/DURATION[,per-ip=M] | none]\n" +
	"       [--keep NAME ...]"

const webhookEnableNotes = "Enables REF's webhook and changes only what the flags say; the rest of the stored\n" +
	"config stays. --verify TYPE is one of github, stripe, slack, standard, hmac, secret, none;\n" +
	"a new type needs its secret, the same type keeps the stored one unless a secret flag\n" +
	"is given, which replaces it at once (rotate-secret keeps the old one valid meanwhile).\n" +
	"--header … --separator describe an hmac signature (--header alone, the\n" +
	"secret type's header). --verify none means anyone who knows the URL can start runs.\n" +
	"A repeated flag (--method, --required-header, --required-query, --keep) replaces the\n" +
	"stored list; given as \"\" it clears it.\n\n" + noSecretFlag

// webhookVerifyOptions are the flags that set a WebhookVerify option, with
// the field each sets.
var webhookVerifyOptions = []struct {
	flag, usage string
	field       func(*orcheo.WebhookVerify) *string
}{
	{"header", "hmac: the signature's header; secret: the header carrying the secret", func(v *orcheo.WebhookVerify) *string { return &v.Header }},
	{"algorithm", "hmac: sha1, sha256 (default) or sha512", func(v *orcheo.WebhookVerify) *string { return &v.Algorithm }},
	{"encoding", "hmac: hex (default) or base64", func(v *orcheo.WebhookVerify) *string { return &v.Encoding }},
	{"prefix", `hmac: what precedes the signature in the header, e.g. "sha256="`, func(v *orcheo.WebhookVerify) *string { return &v.Prefix }},
	{"timestamp-header", "hmac: the header carrying the signed Unix timestamp", func(v *orcheo.WebhookVerify) *string { return &v.TimestampHeader }},
	{"signed", "hmac: body (default) or timestamp_body", func(v *orcheo.WebhookVerify) *string { return &v.Signed }},
	{"separator", `hmac: what joins timestamp and body (default ".")`, func(v *orcheo.WebhookVerify) *string { return &v.Separator }},
	{"tolerance", "how far a signed timestamp may be from now (default 5m, at most 1h)", func(v *orcheo.WebhookVerify) *string { return &v.Tolerance }},
}

// webhookEdit is what the flags of "triggers webhook enable" change.
type webhookEdit struct {
	methods, keep  listFlag
	headers, query kvFlag
	rateLimit      rateLimitFlag
	verify         string
	secret         secretSource
	// options holds the verify options given, by flag name.
	options map[string]string
}

// parseWebhookEdit parses the flags of "triggers webhook enable" and
// returns them with the positional arguments.
func (e *env) parseWebhookEdit(args []string) (*webhookEdit, []string, error) {
	if err := refuseSecretFlag(args); err != nil {
		return nil, nil, err
	}
	var ed webhookEdit
	fs := e.newFlagSet("triggers webhook enable")
	setUsage(fs, webhookEnableSynopsis, webhookEnableNotes)
	fs.Var(&ed.methods, "method", "an HTTP method to accept, repeatable or comma-separated (default POST)")
	fs.Var(&ed.methods, "methods", "same as --method")
	fs.StringVar(&ed.verify, "verify", "", "how requests prove their sender: "+strings.Join(orcheo.VerifyTypes, ", "))
	ed.secret.register(fs)
	opts := map[string]*string{}
	for _, o := range webhookVerifyOptions {
		opts[o.flag] = fs.String(o.flag, "", o.usage)
	}
	fs.Var(&ed.headers, "required-header", "NAME=VALUE a request must carry as a header, repeatable")
	fs.Var(&ed.query, "required-query", "NAME=VALUE a request must carry in its query, repeatable")
	fs.Var(&ed.rateLimit, "rate-limit", "at most N requests per DURATION (60/1m, 60/m, 600/1h,per-ip=60), or none")
	fs.Var(&ed.keep, "keep", "a header or query name to keep in the run input although it looks like a credential, repeatable")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, err
	}
	ed.options = map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if p, ok := opts[f.Name]; ok {
			ed.options[f.Name] = *p
		}
	})
	if ed.verify != "" {
		ed.verify = strings.ToLower(strings.TrimSpace(ed.verify))
		if !slices.Contains(orcheo.VerifyTypes, ed.verify) {
			return nil, nil, orcheo.Errorf(orcheo.EINVALID, "--verify: %q is not one of %s", ed.verify, strings.Join(orcheo.VerifyTypes, ", "))
		}
	}
	if ed.verify == orcheo.VerifyNone && (ed.secret.given() || len(ed.options) > 0) {
		return nil, nil, orcheo.Errorf(orcheo.EINVALID, "--verify none takes no secret and no verify options")
	}
	if ed.secret.file != "" && ed.secret.stdin {
		return nil, nil, orcheo.Errorf(orcheo.EINVALID, "--secret-file and --secret-stdin: give one")
	}
	return &ed, pos, nil
}

// apply changes cfg (the stored config, without secrets) as the flags say;
// secret is the one read from --secret-file or --secret-stdin, if any, and
// stored tells whether the stored config has one.
func (ed *webhookEdit) apply(cfg *orcheo.WebhookConfig, secret string, stored bool) error {
	cfg.Enabled = true
	if ed.methods.set {
		cfg.Methods = nil
		for _, m := range ed.methods.values {
			cfg.Methods = append(cfg.Methods, strings.ToUpper(m))
		}
	}
	if ed.keep.set {
		cfg.Keep = ed.keep.values
	}
	if ed.headers.set {
		cfg.RequiredHeaders = nonEmpty(ed.headers.values)
	}
	if ed.query.set {
		cfg.RequiredQuery = nonEmpty(ed.query.values)
	}
	if ed.rateLimit.set {
		cfg.RateLimit = ed.rateLimit.limit
	}

	v := cfg.Verify
	switch {
	case ed.verify == orcheo.VerifyNone:
		cfg.Verify = &orcheo.WebhookVerify{Type: orcheo.VerifyNone}
		return nil
	case ed.verify != "" && (v == nil || v.Type != ed.verify):
		// Options of another type do not carry over, nor does its secret.
		v, stored = &orcheo.WebhookVerify{Type: ed.verify}, false
	case ed.verify == "" && (v == nil || v.Type == orcheo.VerifyNone):
		if secret != "" || len(ed.options) > 0 {
			return orcheo.Errorf(orcheo.EINVALID, "this webhook has no verification: give --verify TYPE with its secret and options")
		}
		return nil
	}
	for _, o := range webhookVerifyOptions {
		if val, ok := ed.options[o.flag]; ok {
			*o.field(v) = val
		}
	}
	if secret != "" {
		v.Secret = secret
	} else if !stored {
		return orcheo.Errorf(orcheo.EINVALID, "--verify %s needs its secret: --secret-file PATH or --secret-stdin", v.Type)
	}
	cfg.Verify = v
	return nil
}

// nonEmpty returns m, or nil for an empty map (a flag given as "").
func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (c *webhookEnable) Run(ctx context.Context, args []string) error {
	ed, pos, err := c.parseWebhookEdit(args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers webhook enable REF [flags] (orcheo triggers webhook enable -h lists them)", pos, "REF"); err != nil {
		return err
	}
	// The secret is read before any request, so a bad file costs nothing.
	secret, err := ed.secret.read(c.stdin)
	if err != nil {
		return err
	}
	var replaced bool
	view, err := changeWebhookConfig(ctx, c.cfg.newClient(), pos[0], func(view *orcheo.WebhookConfigView) (*orcheo.WebhookConfig, error) {
		cfg := view.Config()
		stored := view.Verify != nil && view.Verify.SecretSet
		if err := ed.apply(cfg, secret, stored); err != nil {
			return nil, err
		}
		replaced = stored && secret != "" && cfg.Verify != nil && cfg.Verify.Type == view.Verify.Type
		return cfg, cfg.Validate()
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "webhook of %s enabled: %s %s\n", pos[0], strings.Join(webhookMethods(view.Methods), "|"), c.cfg.webhookURL(pos[0]))
	if v := view.Verify; v != nil && v.Type != orcheo.VerifyNone {
		fmt.Fprintf(c.stdout, "verified by %s, secret %s\n", v.Type, secretState(v.SecretSet, v.SecretSetAt))
	}
	if replaced {
		fmt.Fprintf(c.stderr, "note: the old secret of the webhook of %s no longer verifies requests "+
			"(orcheo triggers webhook rotate-secret keeps it valid while senders move over)\n", pos[0])
	}
	if ed.verify == orcheo.VerifyNone || view.Unauthenticated {
		fmt.Fprintf(c.stderr, "warning: the webhook of %s has no verification: anyone who knows its URL can start runs (add one with --verify TYPE --secret-file PATH)\n", pos[0])
	}
	return nil
}

// webhookChangeAttempts bounds how many times changeWebhookConfig reads
// and changes a config that keeps changing under it.
const webhookChangeAttempts = 5

// changeWebhookConfig stores what edit makes of ref's config as read, on
// the condition (If-Match) that nobody changed it in between, so a change
// made meanwhile (another operator's rate limit, a rotation) is kept: when
// the server answers that it changed, the config is read and edited again,
// at most webhookChangeAttempts times. It returns the stored view.
func changeWebhookConfig(ctx context.Context, cl *client.Client, ref string,
	edit func(*orcheo.WebhookConfigView) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfigView, error) {
	for attempt := 1; ; attempt++ {
		view, etag, err := cl.FindWebhookConfigETag(ctx, ref)
		if err != nil {
			return nil, err
		}
		cfg, err := edit(view)
		if err != nil {
			return nil, err
		}
		// A server that sends no ETag stores unconditionally, as before.
		stored, _, err := cl.UpdateWebhookConfig(ctx, ref, cfg, etag)
		if orcheo.ErrorCode(err) != orcheo.EPRECONDITION {
			return stored, err
		}
		if attempt == webhookChangeAttempts {
			return nil, orcheo.Errorf(orcheo.EPRECONDITION,
				"the webhook config of %s changed each of the %d times this command read it; nothing was changed: run it again", ref, attempt)
		}
	}
}
