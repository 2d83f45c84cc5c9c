package orcheo_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
)

// jsonNames returns the JSON names of t's fields.
func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// TestWebhookConfigView_Fields: every field of WebhookConfig and
// WebhookVerify is either shown by the view or one of the secrets, so a
// new option is not silently missing from GET, and a new secret is not
// silently shown.
func TestWebhookConfigView_Fields(t *testing.T) {
	secrets := map[string]bool{"secret": true, "previous_secret": true, "sealed_secret": true, "sealed_previous_secret": true}
	for _, tc := range []struct{ config, view reflect.Type }{
		{reflect.TypeOf(orcheo.WebhookConfig{}), reflect.TypeOf(orcheo.WebhookConfigView{})},
		{reflect.TypeOf(orcheo.WebhookVerify{}), reflect.TypeOf(orcheo.WebhookVerifyView{})},
	} {
		shown := jsonNames(tc.view)
		for name := range jsonNames(tc.config) {
			if secrets[name] == shown[name] {
				t.Errorf("%s.%s: a field must be either a secret or shown by %s", tc.config.Name(), name, tc.view.Name())
			}
		}
	}
}

func TestWebhookConfigView(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := &orcheo.WebhookConfig{
		Enabled: true, Methods: []string{"POST"},
		Verify: &orcheo.WebhookVerify{
			Type: orcheo.VerifyGitHub, Secret: "plain-current", PreviousSecret: "plain-previous",
			SealedSecret: "v1:sealed-current", SealedPreviousSecret: "v1:sealed-previous",
			SecretSetAt: &at, PreviousSecretSetAt: &at,
		},
	}
	v := cfg.View()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"plain-current", "plain-previous", "sealed-current", "sealed-previous", `"secret"`, "sealed_"} {
		if strings.Contains(string(raw), s) {
			t.Fatalf("view %s holds %q", raw, s)
		}
	}
	if !v.Verify.SecretSet || !v.Verify.PreviousSecretSet || !v.Verify.SecretSetAt.Equal(at) || v.Unauthenticated || v.Warning != "" {
		t.Fatalf("view %s", raw)
	}
	back := v.Config()
	if back.Verify.Type != orcheo.VerifyGitHub || back.Verify.HasSecret() || back.Verify.SecretSetAt != nil {
		t.Fatalf("config of the view %+v", back.Verify)
	}

	for _, tc := range []struct {
		name string
		cfg  *orcheo.WebhookConfig
		want bool
	}{
		{"EnabledNoVerify", &orcheo.WebhookConfig{Enabled: true}, true},
		{"EnabledNone", &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyNone}}, true},
		{"Disabled", &orcheo.WebhookConfig{}, false},
		{"Verified", cfg, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.cfg.View()
			if v.Unauthenticated != tc.want || (v.Warning != "") != tc.want {
				t.Fatalf("unauthenticated %t, warning %q", v.Unauthenticated, v.Warning)
			}
		})
	}
}
