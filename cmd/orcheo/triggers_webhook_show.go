package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// webhookShow prints a workflow's webhook config as the API shows it:
// whether each secret is set and since when, never a secret.
type webhookShow struct {
	*env
	cfg Config
}

func (c *webhookShow) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("triggers webhook show")
	setUsage(fs, "triggers webhook show REF [--json]", "Prints REF's webhook config. Secrets are write-only: only whether each is set, and since when.")
	asJSON := fs.Bool("json", false, "print JSON (the API's view, with the webhook's url)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("triggers webhook show REF", pos, "REF"); err != nil {
		return err
	}
	view, err := c.cfg.newClient().FindWebhookConfig(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, struct {
			*orcheo.WebhookConfigView
			URL string `json:"url"`
		}{view, c.cfg.webhookURL(pos[0])})
	}
	return printWebhookView(c.stdout, view, c.cfg.webhookURL(pos[0]))
}

// printWebhookView prints the human form of show.
func printWebhookView(w io.Writer, v *orcheo.WebhookConfigView, url string) error {
	t := newTable(w, "Enabled", fmt.Sprint(v.Enabled))
	t.row("Methods", strings.Join(webhookMethods(v.Methods), ", "))
	t.row("URL", url)
	if s := v.Verify; s == nil || s.Type == orcheo.VerifyNone {
		t.row("Verify", "none")
	} else {
		t.row("Verify", s.Type)
		t.row("Secret", secretState(s.SecretSet, s.SecretSetAt))
		t.row("Previous secret", secretState(s.PreviousSecretSet, s.PreviousSecretSetAt))
		for _, o := range []struct{ name, value string }{
			{"Header", s.Header}, {"Algorithm", s.Algorithm}, {"Encoding", s.Encoding}, {"Prefix", s.Prefix},
			{"Timestamp header", s.TimestampHeader}, {"Signed", s.Signed}, {"Separator", s.Separator},
			{"Tolerance", s.Tolerance},
		} {
			if o.value != "" {
				t.row(o.name, o.value)
			}
		}
	}
	t.row("Required headers", formatValues(v.RequiredHeaders))
	t.row("Required query", formatValues(v.RequiredQuery))
	if v.RateLimit == nil {
		t.row("Rate limit", "none")
	} else {
		t.row("Rate limit", formatRateLimit(v.RateLimit))
	}
	if len(v.Keep) > 0 {
		t.row("Keep", strings.Join(v.Keep, ", "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if v.Unauthenticated {
		_, err := fmt.Fprintln(w, "UNAUTHENTICATED: anyone who knows this URL can start runs")
		return err
	}
	return nil
}

// secretState says whether a secret is set, and since when; never what it is.
func secretState(set bool, at *time.Time) string {
	switch {
	case !set:
		return "not set"
	case at == nil:
		return "set"
	}
	return "set (" + formatTime(at) + ")"
}

// formatValues prints required values as K=V, sorted by name, or "-".
func formatValues(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for i, k := range names {
		names[i] = k + "=" + m[k]
	}
	return strings.Join(names, ", ")
}
