package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/secrets"
	"github.com/sirupsen/logrus"
)

func TestDevSecretsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := devSecretsKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "secrets.key") {
		t.Fatalf("path %s", path)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want mode 0600", st, err)
	}
	first, _ := os.ReadFile(path)
	box, err := Config{SecretsKeyFile: path}.secretBox()
	if err != nil || box == nil {
		t.Fatalf("box of the dev key: %v", err)
	}
	sealed, _ := box.Seal("dev-secret")

	// The next start reuses the key, so what was sealed still opens.
	again, err := devSecretsKey(dir)
	if err != nil || again != path {
		t.Fatalf("second start: %s %v", again, err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, first) {
		t.Fatal("the key changed on the second start")
	}
	box2, _ := Config{SecretsKeyFile: path}.secretBox()
	if got, err := box2.Open(sealed); err != nil || got != "dev-secret" {
		t.Fatalf("reopened %q %v", got, err)
	}
}

func TestConfigSecretBox(t *testing.T) {
	t.Parallel()
	key, _ := secrets.NewKey()
	other, _ := secrets.NewKey()
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyID := func(k string) string { b, _ := secrets.ParseKey(k); return secrets.KeyID(b) }

	if box, err := (Config{}).secretBox(); box != nil || err != nil {
		t.Fatalf("no key: %v %v", box, err)
	}
	if box, err := (Config{SecretsKey: key, SecretsKeyFile: file}).secretBox(); err != nil || box.KeyID() != keyID(key) {
		t.Fatalf("ORCHEO_SECRETS_KEY must win over the file: %v", err)
	}
	if box, err := (Config{SecretsKeyFile: file}).secretBox(); err != nil || box.KeyID() != keyID(other) {
		t.Fatalf("key file: %v", err)
	}
	bad := "this-is-my-password"
	_, err := Config{SecretsKey: bad}.secretBox()
	if err == nil || orcheo.ErrorCode(err) != orcheo.EINVALID || strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "ORCHEO_SECRETS_KEY") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := (Config{SecretsKeyFile: file + ".missing"}).secretBox(); err == nil || !strings.Contains(err.Error(), "ORCHEO_SECRETS_KEY_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestCheckWebhookTriggers: the API refuses to start when stored secrets
// cannot be opened, and warns of every open webhook (issue 9).
func TestCheckWebhookTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "orcheo.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, _ := secrets.NewKey()
	box, _ := secrets.Parse(key)
	workflow := func(handle string, cfg *orcheo.WebhookConfig) *orcheo.Workflow {
		wf := &orcheo.Workflow{Handle: handle, Name: handle}
		if _, err := store.Workflows.CreateWorkflow(ctx, wf, []byte(`{"nodes":[{"id":"a","type":"log"}]}`)); err != nil {
			t.Fatal(err)
		}
		if err := store.Triggers.SetWebhookConfig(ctx, wf.ID, cfg); err != nil {
			t.Fatal(err)
		}
		return wf
	}
	check := func(box *secrets.Box) (error, string) {
		var logs bytes.Buffer
		l := logrus.New()
		l.SetOutput(&logs)
		err := checkWebhookTriggers(ctx, store.Triggers, box, l)
		return err, logs.String()
	}

	workflow("open", &orcheo.WebhookConfig{Enabled: true})
	workflow("none", &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyNone}})
	workflow("off", &orcheo.WebhookConfig{})
	gone := workflow("gone", &orcheo.WebhookConfig{Enabled: true})
	if _, err := store.Workflows.ArchiveWorkflow(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err, logs := check(nil); err != nil {
		t.Fatalf("no secrets stored, no key: %v", err)
	} else {
		for _, h := range []string{"open", "none"} {
			if !strings.Contains(logs, "webhook of workflow "+h+" is unauthenticated: anyone who knows its URL can start runs") || !strings.Contains(logs, "level=warning") {
				t.Fatalf("no warning for %s:\n%s", h, logs)
			}
		}
		if strings.Count(logs, "is unauthenticated") != 2 {
			t.Fatalf("want warnings for open and none only:\n%s", logs)
		}
	}

	sealed, _ := box.Seal("stored-plaintext")
	workflow("signed", &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, SealedSecret: sealed}})
	workflow("signed-off", &orcheo.WebhookConfig{Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, SealedSecret: sealed}})

	t.Run("NoKey", func(t *testing.T) {
		err, _ := check(nil)
		msg := orcheo.ErrorMessage(err)
		for _, want := range []string{"webhook secrets are stored (workflows signed, signed-off) but ORCHEO_SECRETS_KEY is not set", "openssl rand -base64 32"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("error %q does not say %q", msg, want)
			}
		}
	})
	t.Run("WrongKey", func(t *testing.T) {
		k, _ := secrets.NewKey()
		wrong, _ := secrets.Parse(k)
		err, _ := check(wrong)
		msg := orcheo.ErrorMessage(err)
		if err == nil || !strings.Contains(msg, "workflow signed") || !strings.Contains(msg, box.KeyID()) || strings.Contains(msg, "stored-plaintext") || strings.Contains(msg, sealed) {
			t.Fatalf("error %q", msg)
		}
	})
	t.Run("RotatedKey", func(t *testing.T) {
		k, _ := secrets.NewKey()
		rotated, _ := secrets.Parse(k + "," + key)
		if err, _ := check(rotated); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("RightKey", func(t *testing.T) {
		err, logs := check(box)
		if err != nil || strings.Contains(logs, "signed") {
			t.Fatalf("%v\n%s", err, logs)
		}
	})
}
