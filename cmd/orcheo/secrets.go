package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/secrets"
	"github.com/sirupsen/logrus"
)

// howToSetKey ends every message about a missing or wrong key.
const howToSetKey = "ORCHEO_SECRETS_KEY is 32 random bytes in base64 (generate one with: openssl rand -base64 32), " +
	"or ORCHEO_SECRETS_KEY_FILE names a file holding it; several keys, comma-separated, open what each sealed " +
	"and seal with the first"

// secretBox returns the Box of ORCHEO_SECRETS_KEY, else of the file
// ORCHEO_SECRETS_KEY_FILE names; nil when neither is set. Errors never
// hold the key.
func (c Config) secretBox() (*secrets.Box, error) {
	key, from := c.SecretsKey, "ORCHEO_SECRETS_KEY"
	if key == "" && c.SecretsKeyFile != "" {
		raw, err := os.ReadFile(c.SecretsKeyFile)
		if err != nil {
			return nil, orcheo.Errorf(orcheo.EINVALID, "ORCHEO_SECRETS_KEY_FILE: %v", err)
		}
		key, from = strings.TrimSpace(string(raw)), "ORCHEO_SECRETS_KEY_FILE "+c.SecretsKeyFile
	}
	if key == "" {
		return nil, nil
	}
	box, err := secrets.Parse(key)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "%s: %v", from, err)
	}
	return box, nil
}

// devSecretsKey returns the path of orcheo dev's key in dir, generating
// the key (mode 0600) the first time.
func devSecretsKey(dir string) (string, error) {
	path := filepath.Join(dir, "secrets.key")
	key, err := secrets.NewKey()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return path, nil
	} else if err != nil {
		return "", fmt.Errorf("create the secrets key: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write the secrets key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write the secrets key: %w", err)
	}
	return path, nil
}

// checkWebhookTriggers is the API's start-up check of the stored webhook
// configs. It refuses to start (EINVALID, saying what to do) when secrets
// are sealed and box is nil, or when box does not open one of them, since
// every delivery to those webhooks would fail. It logs one warning per
// enabled webhook of a live workflow that anyone who knows its URL can
// call.
func checkWebhookTriggers(ctx context.Context, triggers orcheo.TriggerService, box *secrets.Box, log logrus.FieldLogger) error {
	list, err := triggers.FindWebhookTriggers(ctx)
	if err != nil {
		return fmt.Errorf("check webhook triggers: %w", err)
	}
	var sealed []string
	for _, t := range list {
		v := t.Config.Verify
		if v == nil || (v.SealedSecret == "" && v.SealedPreviousSecret == "") {
			continue
		}
		sealed = append(sealed, t.Handle)
		if box == nil {
			continue
		}
		for _, s := range []struct{ name, value string }{{"secret", v.SealedSecret}, {"previous secret", v.SealedPreviousSecret}} {
			if s.value == "" {
				continue
			}
			if _, err := box.Open(s.value); err != nil {
				return orcheo.Errorf(orcheo.EINVALID, "the webhook %s of workflow %s does not open with ORCHEO_SECRETS_KEY (key id %s): %v. "+
					"Set it to the key the secret was sealed with, or to \"NEW,OLD\" to seal with a new key and still open what the old one sealed. %s",
					s.name, t.Handle, box.KeyID(), err, howToSetKey)
			}
		}
	}
	if len(sealed) > 0 && box == nil {
		return orcheo.Errorf(orcheo.EINVALID, "webhook secrets are stored (workflows %s) but ORCHEO_SECRETS_KEY is not set: "+
			"set it to the key they were sealed with. %s", listNames(sealed, 10), howToSetKey)
	}
	for _, t := range list {
		if t.Config.Enabled && !t.Archived && t.Config.Unauthenticated() {
			log.WithFields(logrus.Fields{"workflow": t.Handle, "workflow_id": t.WorkflowID}).
				Warnf("webhook of workflow %s is unauthenticated: anyone who knows its URL can start runs", t.Handle)
		}
	}
	return nil
}

// listNames joins up to max names, then says how many more there are.
func listNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}
