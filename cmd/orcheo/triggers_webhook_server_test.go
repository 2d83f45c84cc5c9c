package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/mock"
	"github.com/orcheo/orcheo/secrets"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
)

// cliBundle is a real API (server.NewServer on a SQLite store) and a way
// to run CLI commands against it in-process.
type cliBundle struct {
	url, token string
	client     *client.Client
	// outputs collects everything every command printed.
	outputs strings.Builder
}

func setupCLI(tb testing.TB) *cliBundle {
	tb.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "orcheo.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := server.NewServer()
	s.Workflows, s.Runs, s.Triggers = store.Workflows, store.Runs, store.Triggers
	// No run is started here: the queue accepts and drops.
	s.Submitter, s.Engine = &mock.RunSubmitter{}, engine.New(engine.Options{})
	s.Token, s.Addr, s.Logger = "cli-test-token", "127.0.0.1:0", log
	key, err := secrets.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	if s.Secrets, err = secrets.Parse(key); err != nil {
		tb.Fatal(err)
	}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	b := &cliBundle{url: s.URL(), token: s.Token, client: client.New(s.URL(), s.Token)}
	def, err := os.ReadFile("../../examples/hello.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := b.client.CreateWorkflow(ctx, "greet", "Greeter", "", def); err != nil {
		tb.Fatal(err)
	}
	return b
}

// run runs "orcheo args..." with stdin and returns what it printed on
// stdout and stderr.
func (b *cliBundle) run(tb testing.TB, stdin string, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	var out, errOut strings.Builder
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string {
		return map[string]string{"ORCHEO_URL": b.url, "ORCHEO_TOKEN": b.token}[k]
	}}
	err = e.run(context.Background(), args)
	b.outputs.WriteString(out.String() + errOut.String())
	if err != nil {
		b.outputs.WriteString(err.Error())
	}
	return out.String(), errOut.String(), err
}

func (b *cliBundle) mustRun(tb testing.TB, stdin string, args ...string) (stdout, stderr string) {
	tb.Helper()
	stdout, stderr, err := b.run(tb, stdin, args...)
	if err != nil {
		tb.Fatalf("orcheo %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// mustContain fails unless s contains every one of want.
func mustContain(tb testing.TB, what, s string, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			tb.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// TestWebhookCommands drives enable, show, rotate-secret and disable
// against a real API, and checks that no secret ever appears in what the
// commands print.
func TestWebhookCommands(t *testing.T) {
	t.Parallel()
	b := setupCLI(t)
	const first, second, third = "first-s3cr3t-Xq9", "second-s3cr3t-Zr7", "third-s3cr3t-Wp2"
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := b.url + "/api/workflows/greet/triggers/webhook"

	t.Run("Enable", func(t *testing.T) {
		out, errOut := b.mustRun(t, "", "triggers", "webhook", "enable", "greet", "--verify", "github", "--secret-file", secretFile,
			"--required-header", "X-Env=prod", "--required-query", "source=ci", "--rate-limit", "60/1m,per-ip=10")
		mustContain(t, "enable", out, "webhook of greet enabled: POST "+hook, "verified by github, secret set")
		if errOut != "" {
			t.Errorf("a verified webhook warns: %s", errOut)
		}
		view, err := b.client.FindWebhookConfig(context.Background(), "greet")
		if err != nil {
			t.Fatal(err)
		}
		if !view.Enabled || view.Verify == nil || view.Verify.Type != "github" || !view.Verify.SecretSet || view.Unauthenticated ||
			view.RequiredHeaders["x-env"] != "prod" || view.RequiredQuery["source"] != "ci" ||
			view.RateLimit == nil || *view.RateLimit != (orcheo.WebhookRateLimit{Limit: 60, Per: "1m", PerIP: 10}) {
			t.Fatalf("stored %+v, verify %+v", view, view.Verify)
		}
	})

	t.Run("Show", func(t *testing.T) {
		out, _ := b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show", out, "Enabled", "true", "Methods", "POST", hook, "Verify", "github", "Secret", "set (20",
			"Previous secret   not set", "x-env=prod", "source=ci", "60/1m,per-ip=10")
		if strings.Contains(out, "UNAUTHENTICATED") {
			t.Errorf("a verified webhook shown as unauthenticated:\n%s", out)
		}
		out, _ = b.mustRun(t, "", "triggers", "webhook", "show", "greet", "--json")
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("show --json: %v\n%s", err, out)
		}
		verify, _ := got["verify"].(map[string]any)
		if got["url"] != hook || got["unauthenticated"] != false || verify["secret_set"] != true || verify["type"] != "github" {
			t.Fatalf("show --json: %s", out)
		}
		for _, k := range []string{"secret", "previous_secret", "sealed_secret", "sealed_previous_secret"} {
			if _, ok := verify[k]; ok {
				t.Errorf("show --json has verify.%s: %s", k, out)
			}
		}
	})

	t.Run("EnableKeepsWhatNoFlagSays", func(t *testing.T) {
		b.mustRun(t, "", "triggers", "webhook", "enable", "greet", "--method", "POST", "--method", "PUT")
		view, err := b.client.FindWebhookConfig(context.Background(), "greet")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(view.Methods, ",") != "POST,PUT" || view.Verify == nil || view.Verify.Type != "github" || !view.Verify.SecretSet ||
			view.RequiredHeaders["x-env"] != "prod" || view.RateLimit == nil {
			t.Fatalf("after enable --method: %+v, verify %+v", view, view.Verify)
		}
	})

	t.Run("Rotate", func(t *testing.T) {
		out, _ := b.mustRun(t, second+"\n", "triggers", "webhook", "rotate-secret", "greet", "--secret-stdin")
		mustContain(t, "rotate-secret", out, "rotated", "--drop-previous")
		out, _ = b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show after rotate", out, "Previous secret   set")
		out, _ = b.mustRun(t, "", "triggers", "webhook", "rotate-secret", "greet", "--drop-previous")
		mustContain(t, "rotate-secret --drop-previous", out, "dropped")
		out, _ = b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show after --drop-previous", out, "Previous secret   not set")
	})

	t.Run("NewSecretSameType", func(t *testing.T) {
		b.mustRun(t, third, "triggers", "webhook", "enable", "greet", "--secret-stdin")
		out, _ := b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show", out, "github", "Secret            set")
	})

	t.Run("Refusals", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code string
		}{
			{[]string{"enable", "nope", "--verify", "github", "--secret-file", secretFile}, orcheo.ENOTFOUND},
			{[]string{"show", "nope"}, orcheo.ENOTFOUND},
			{[]string{"rotate-secret", "nope", "--secret-file", secretFile}, orcheo.ENOTFOUND},
			// A new type needs its own secret: the stored one is not carried over.
			{[]string{"enable", "greet", "--verify", "stripe"}, orcheo.EINVALID},
			{[]string{"enable", "greet", "--verify", "hmac", "--secret-file", secretFile}, orcheo.EINVALID},     // no --header
			{[]string{"enable", "greet", "--verify", "standard", "--secret-file", secretFile}, orcheo.EINVALID}, // not whsec_
			{[]string{"enable", "greet", "--tolerance", "2h"}, orcheo.EINVALID},
		} {
			_, _, err := b.run(t, "", append([]string{"triggers", "webhook"}, tc.args...)...)
			if orcheo.ErrorCode(err) != tc.code {
				t.Errorf("%v: %v, want %s", tc.args, err, tc.code)
			}
		}
		view, err := b.client.FindWebhookConfig(context.Background(), "greet")
		if err != nil {
			t.Fatal(err)
		}
		if view.Verify == nil || view.Verify.Type != "github" || !view.Verify.SecretSet {
			t.Fatalf("a refused change changed the config: %+v", view.Verify)
		}
	})

	t.Run("DisableKeepsSecrets", func(t *testing.T) {
		b.mustRun(t, "", "triggers", "webhook", "disable", "greet")
		b.mustRun(t, second+"\n", "triggers", "webhook", "rotate-secret", "greet", "--secret-stdin")
		b.mustRun(t, "", "triggers", "webhook", "disable", "greet")
		view, err := b.client.FindWebhookConfig(context.Background(), "greet")
		if err != nil {
			t.Fatal(err)
		}
		if view.Enabled || view.Verify == nil || !view.Verify.SecretSet || !view.Verify.PreviousSecretSet {
			t.Fatalf("after disable: %+v, verify %+v", view, view.Verify)
		}
		if _, errOut := b.mustRun(t, "", "triggers", "webhook", "enable", "greet"); errOut != "" {
			t.Errorf("enable after disable: %s", errOut)
		}
	})

	t.Run("VerifyNone", func(t *testing.T) {
		_, errOut := b.mustRun(t, "", "triggers", "webhook", "enable", "greet", "--verify", "none")
		mustContain(t, "enable --verify none (stderr)", errOut, "warning", "anyone who knows its URL can start runs")
		out, _ := b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show", out, "Verify            none", "UNAUTHENTICATED: anyone who knows this URL can start runs")
	})

	t.Run("Disable", func(t *testing.T) {
		out, _ := b.mustRun(t, "", "triggers", "webhook", "disable", "greet")
		mustContain(t, "disable", out, "webhook of greet disabled")
		out, _ = b.mustRun(t, "", "triggers", "webhook", "show", "greet")
		mustContain(t, "show", out, "Enabled           false")
		if strings.Contains(out, "UNAUTHENTICATED") {
			t.Errorf("a disabled webhook starts no runs:\n%s", out)
		}
	})

	for _, s := range []string{first, second, third} {
		if strings.Contains(b.outputs.String(), s) {
			t.Errorf("a command printed the secret %q:\n%s", s, b.outputs.String())
		}
	}
}
