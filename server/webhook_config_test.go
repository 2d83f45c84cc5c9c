package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/secrets"
	"github.com/orcheo/orcheo/server"
	verifier "github.com/orcheo/orcheo/webhook"
	"github.com/sirupsen/logrus"
)

// syncBuffer is a log sink tests read after the server wrote to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretsEnv is a server with a SecretBox (nil box: without one), the
// webhook verifier, and its logs at debug level in logs.
func secretsEnv(t *testing.T, box orcheo.SecretBox) (*env, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	e := newEnv(t, envOptions{setup: func(s *server.Server, _ *db.Store) {
		if box != nil {
			s.Secrets = box
		}
		s.Verifier = verifier.Verifier{}
		l := logrus.New()
		l.SetLevel(logrus.DebugLevel)
		l.SetOutput(logs)
		s.Logger = l
	}})
	return e, logs
}

func mustSecretBox(tb testing.TB) *secrets.Box {
	tb.Helper()
	key, err := secrets.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	box, err := secrets.Parse(key)
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

// putConfig PUTs body as ref's webhook config.
func putConfig(t *testing.T, e *env, ref, body string) (*http.Response, string) {
	t.Helper()
	return do(t, e, "PUT", "/api/workflows/"+ref+"/triggers/webhook/config", testToken, "application/json", body)
}

// rotate POSTs body to ref's rotate-secret.
func rotate(t *testing.T, e *env, ref, body string) (*http.Response, string) {
	t.Helper()
	return do(t, e, "POST", "/api/workflows/"+ref+"/triggers/webhook/rotate-secret", testToken, "application/json", body)
}

// view decodes a 200 answer holding a config view.
func view(t *testing.T, resp *http.Response, body string) *orcheo.WebhookConfigView {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	var v orcheo.WebhookConfigView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// putView PUTs body as ref's config and returns the answer's view.
func putView(t *testing.T, e *env, ref, body string) *orcheo.WebhookConfigView {
	t.Helper()
	resp, b := putConfig(t, e, ref, body)
	return view(t, resp, b)
}

// getView GETs ref's config view.
func getView(t *testing.T, e *env, ref string) *orcheo.WebhookConfigView {
	t.Helper()
	resp, b := do(t, e, "GET", "/api/workflows/"+ref+"/triggers/webhook/config", testToken, "", "")
	return view(t, resp, b)
}

// stored reads ref's config as the store holds it.
func stored(t *testing.T, e *env, wf *orcheo.Workflow) *orcheo.WebhookConfig {
	t.Helper()
	cfg, err := e.store.Triggers.FindWebhookConfig(context.Background(), wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// notIn fails the test if any of values is in s.
func notIn(t *testing.T, what, s string, values ...string) {
	t.Helper()
	for _, v := range values {
		if v != "" && strings.Contains(s, v) {
			t.Fatalf("%s holds %q: %s", what, v, s)
		}
	}
}

// deliver sends a webhook carrying secret in X-Token and returns the status.
func deliver(t *testing.T, e *env, ref, secret string) int {
	t.Helper()
	resp, body := webhook(t, e, "POST", ref, "", http.Header{"Content-Type": {"application/json"}, "X-Token": {secret}}, `{"n":1}`)
	if resp.StatusCode == http.StatusAccepted {
		run, _ := acceptedRun(t, e, resp, body)
		notIn(t, "run", string(run.Input), secret)
	}
	return resp.StatusCode
}

// TestWebhookSecrets: secrets are write-only, sealed at rest, kept across
// a PUT without them, and never in an answer or a log line (issue 9).
func TestWebhookSecrets(t *testing.T) {
	t.Parallel()
	box := mustSecretBox(t)
	e, logs := secretsEnv(t, box)
	wf := e.mustWorkflow(t, "sec")
	const plain = "gh-plaintext-secret-1"

	resp, body := putConfig(t, e, "sec", `{"enabled":true,"verify":{"type":"GitHub","secret":"`+plain+`"}}`)
	put := view(t, resp, body)
	cfg := stored(t, e, wf)
	sealed := cfg.Verify.SealedSecret
	if sealed == "" || cfg.Verify.Secret != "" || cfg.Verify.SecretSetAt == nil {
		t.Fatalf("stored verify %+v", cfg.Verify)
	}
	raw, _ := json.Marshal(cfg)
	notIn(t, "stored config", string(raw), plain)
	if got, err := box.Open(sealed); err != nil || got != plain {
		t.Fatalf("stored secret opens to %q, %v", got, err)
	}
	if v := put.Verify; v == nil || v.Type != "github" || !v.SecretSet || v.SecretSetAt == nil || v.PreviousSecretSet || put.Unauthenticated || put.Warning != "" {
		t.Fatalf("PUT answer %s", body)
	}
	notIn(t, "PUT answer", body, plain, sealed, "sealed")

	resp, body = do(t, e, "GET", "/api/workflows/sec/triggers/webhook/config", testToken, "", "")
	got := view(t, resp, body)
	notIn(t, "GET answer", body, plain, sealed, "sealed", `"secret"`)
	if !got.Verify.SecretSet || !got.Verify.SecretSetAt.Equal(*cfg.Verify.SecretSetAt) {
		t.Fatalf("GET answer %s", body)
	}

	t.Run("PutWithoutSecretKeepsIt", func(t *testing.T) {
		// What `triggers webhook enable --methods …` does: the view's
		// config back, without the secret.
		v, err := e.client.FindWebhookConfig(context.Background(), "sec")
		if err != nil {
			t.Fatal(err)
		}
		c := v.Config()
		c.Methods = []string{"POST", "PUT"}
		after, err := e.client.SetWebhookConfig(context.Background(), "sec", c)
		if err != nil {
			t.Fatal(err)
		}
		if !after.Verify.SecretSet || stored(t, e, wf).Verify.SealedSecret != sealed {
			t.Fatalf("secret not kept: %+v, stored %+v", after.Verify, stored(t, e, wf).Verify)
		}
		if s := stored(t, e, wf).Verify.SecretSetAt; s == nil || !s.Equal(*cfg.Verify.SecretSetAt) {
			t.Fatalf("secret_set_at changed to %v", s)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		for _, tc := range []struct{ name, body, want string }{
			{"SealedSecret", `{"enabled":true,"verify":{"type":"github","sealed_secret":"v1:x"}}`, "sealed_secret"},
			{"SealedPrevious", `{"enabled":true,"verify":{"type":"github","sealed_previous_secret":"v1:x"}}`, "sealed_previous_secret"},
			{"SecretSetAt", `{"enabled":true,"verify":{"type":"github","secret_set_at":"2025-01-01T00:00:00Z"}}`, "secret_set_at"},
			{"SecretSetFlag", `{"enabled":true,"verify":{"type":"github","secret_set":true}}`, "secret_set"},
			{"OtherTypeNoSecret", `{"enabled":true,"verify":{"type":"slack"}}`, "verify.secret is required for type slack"},
			{"PreviousOnly", `{"enabled":true,"verify":{"type":"stripe","previous_secret":"whatever-plain"}}`, "previous_secret"},
			{"NoneWithSecret", `{"enabled":true,"verify":{"type":"none","secret":"` + plain + `"}}`, "type none takes no secret"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := putConfig(t, e, "sec", tc.body)
				wantError(t, resp, body, 400, orcheo.EINVALID)
				if !strings.Contains(body, tc.want) {
					t.Fatalf("error %s does not say %q", body, tc.want)
				}
				notIn(t, "error", body, plain, "whatever-plain")
			})
		}
		if stored(t, e, wf).Verify.SealedSecret != sealed {
			t.Fatal("a refused PUT changed the stored secret")
		}
	})

	t.Run("Required", func(t *testing.T) {
		e.mustWorkflow(t, "fresh")
		resp, body := putConfig(t, e, "fresh", `{"enabled":true,"verify":{"type":"github"}}`)
		wantError(t, resp, body, 400, orcheo.EINVALID)
		if !strings.Contains(body, "verify.secret is required for type github") {
			t.Fatalf("error %s", body)
		}
	})

	t.Run("NewSecretReplacesPair", func(t *testing.T) {
		e.mustWorkflow(t, "pair")
		putView(t, e, "pair", `{"enabled":true,"verify":{"type":"github","secret":"a-1","previous_secret":"a-0"}}`)
		v := putView(t, e, "pair", `{"enabled":true,"verify":{"type":"github","secret":"b-1"}}`)
		if !v.Verify.SecretSet || v.Verify.PreviousSecretSet {
			t.Fatalf("after a new secret: %+v", v.Verify)
		}
		// Another type drops the stored secrets: they were the other
		// scheme's.
		v = putView(t, e, "pair", `{"enabled":true,"verify":{"type":"none"}}`)
		if v.Verify.SecretSet || !v.Unauthenticated {
			t.Fatalf("after type none: %+v", v)
		}
	})

	if l := logs.String(); strings.Contains(l, plain) || strings.Contains(l, sealed) {
		t.Fatalf("logs hold a secret:\n%s", l)
	}
}

// TestWebhookSecretsWithoutKey: with no SecretBox a secret is refused with
// what to do, and nothing is stored; configs without secrets still work.
func TestWebhookSecretsWithoutKey(t *testing.T) {
	t.Parallel()
	e, _ := secretsEnv(t, nil)
	wf := e.mustWorkflow(t, "nokey")
	resp, body := putConfig(t, e, "nokey", `{"enabled":true,"verify":{"type":"github","secret":"plain-nokey"}}`)
	wantError(t, resp, body, 503, orcheo.EUNAVAILABLE)
	if !strings.Contains(body, "ORCHEO_SECRETS_KEY") {
		t.Fatalf("error %s does not name ORCHEO_SECRETS_KEY", body)
	}
	notIn(t, "error", body, "plain-nokey")
	if cfg := stored(t, e, wf); cfg.Enabled || cfg.Verify != nil {
		t.Fatalf("stored %+v", cfg)
	}
	putView(t, e, "nokey", `{"enabled":true,"verify":{"type":"none"}}`)
}

// TestWebhookConfigUnauthenticated: GET says plainly that an enabled
// webhook without verification is open to anyone with its URL.
func TestWebhookConfigUnauthenticated(t *testing.T) {
	t.Parallel()
	e, _ := secretsEnv(t, mustSecretBox(t))
	e.mustWorkflow(t, "open")
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"NoVerify", `{"enabled":true}`, true},
		{"None", `{"enabled":true,"verify":{"type":"none"}}`, true},
		{"Disabled", `{"enabled":false}`, false},
		{"Verified", `{"enabled":true,"verify":{"type":"secret","header":"x-token","secret":"s"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put := putView(t, e, "open", tc.body)
			got := getView(t, e, "open")
			for _, v := range []*orcheo.WebhookConfigView{put, got} {
				if v.Unauthenticated != tc.want || (v.Warning == orcheo.UnauthenticatedWebhookWarning) != tc.want {
					t.Fatalf("view %+v", v)
				}
			}
		})
	}
}

// TestWebhookSecretRotate: rotation keeps the old secret verifying until
// it is dropped, so no delivery is lost (issue 9).
func TestWebhookSecretRotate(t *testing.T) {
	t.Parallel()
	box := mustSecretBox(t)
	e, logs := secretsEnv(t, box)
	wf := e.mustWorkflow(t, "rot")
	const old, next = "old-shared-secret", "next-shared-secret"
	putView(t, e, "rot", `{"enabled":true,"verify":{"type":"secret","header":"X-Token","secret":"`+old+`"}}`)
	oldSealed := stored(t, e, wf).Verify.SealedSecret
	if deliver(t, e, "rot", old) != 202 || deliver(t, e, "rot", next) != 401 {
		t.Fatal("before rotation: want the old secret only")
	}

	v, err := e.client.RotateWebhookSecret(context.Background(), "rot", next, false)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify.SecretSet || !v.Verify.PreviousSecretSet || v.Verify.PreviousSecretSetAt == nil {
		t.Fatalf("after rotation %+v", v.Verify)
	}
	cfg := stored(t, e, wf)
	if cfg.Verify.SealedPreviousSecret != oldSealed || cfg.Verify.SealedSecret == oldSealed {
		t.Fatalf("stored after rotation %+v", cfg.Verify)
	}
	if deliver(t, e, "rot", old) != 202 || deliver(t, e, "rot", next) != 202 || deliver(t, e, "rot", "neither") != 401 {
		t.Fatal("during rotation: want both secrets")
	}

	// A retried rotation keeps the old secret as the previous one.
	resp, body := rotate(t, e, "rot", `{"secret":"`+next+`"}`)
	view(t, resp, body)
	notIn(t, "rotate answer", body, old, next, oldSealed, cfg.Verify.SealedSecret)
	if again := stored(t, e, wf); again.Verify.SealedPreviousSecret != oldSealed || again.Verify.SealedSecret != cfg.Verify.SealedSecret {
		t.Fatalf("a repeated rotation changed %+v", again.Verify)
	}

	v, err = e.client.RotateWebhookSecret(context.Background(), "rot", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify.SecretSet || v.Verify.PreviousSecretSet || stored(t, e, wf).Verify.SealedPreviousSecret != "" {
		t.Fatalf("after drop_previous %+v", v.Verify)
	}
	if deliver(t, e, "rot", old) != 401 || deliver(t, e, "rot", next) != 202 {
		t.Fatal("after drop: want the new secret only")
	}

	t.Run("Refused", func(t *testing.T) {
		e.mustWorkflow(t, "rot-none")
		putView(t, e, "rot-none", `{"enabled":true}`)
		for _, tc := range []struct {
			name, ref, body string
			status          int
			code            string
		}{
			{"Empty", "rot", `{}`, 400, orcheo.EINVALID},
			{"UnknownField", "rot", `{"secret":"x","previous_secret":"y"}`, 400, orcheo.EINVALID},
			{"NoVerify", "rot-none", `{"secret":"x"}`, 400, orcheo.EINVALID},
			{"TooLong", "rot", `{"secret":"` + strings.Repeat("z", orcheo.MaxSecretBytes+1) + `"}`, 400, orcheo.EINVALID},
			{"UnknownWorkflow", "nope", `{"secret":"x"}`, 404, orcheo.ENOTFOUND},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := rotate(t, e, tc.ref, tc.body)
				wantError(t, resp, body, tc.status, tc.code)
				notIn(t, "error", body, strings.Repeat("z", 20))
			})
		}
		resp, body := do(t, e, "POST", "/api/workflows/rot/triggers/webhook/rotate-secret", "", "application/json", `{"secret":"x"}`)
		wantError(t, resp, body, 401, orcheo.EUNAUTHORIZED)
		resp, body = do(t, e, "GET", "/api/workflows/rot/triggers/webhook/rotate-secret", testToken, "", "")
		wantError(t, resp, body, 405, orcheo.EMETHOD)
		if deliver(t, e, "rot", next) != 202 {
			t.Fatal("a refused rotation changed the secret")
		}
	})

	if l := logs.String(); strings.Contains(l, old) || strings.Contains(l, next) {
		t.Fatalf("logs hold a secret:\n%s", l)
	}
}

// TestWebhookConfigRequest_Fields: the PUT body takes every field of a
// config except what only the server writes.
func TestWebhookConfigRequest_Fields(t *testing.T) {
	t.Parallel()
	e, _ := secretsEnv(t, mustSecretBox(t))
	e.mustWorkflow(t, "fields")
	serverOnly := map[string]bool{"sealed_secret": true, "sealed_previous_secret": true, "secret_set_at": true, "previous_secret_set_at": true}
	verify := map[string]any{}
	vt := reflect.TypeOf(orcheo.WebhookVerify{})
	for i := 0; i < vt.NumField(); i++ {
		name, _, _ := strings.Cut(vt.Field(i).Tag.Get("json"), ",")
		if !serverOnly[name] {
			verify[name] = ""
		}
	}
	cfg := map[string]any{}
	ct := reflect.TypeOf(orcheo.WebhookConfig{})
	for i := 0; i < ct.NumField(); i++ {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("json"), ",")
		cfg[name] = nil
	}
	cfg["verify"] = verify
	raw, _ := json.Marshal(cfg)
	// Empty values fail validation (an empty type), but no field is unknown.
	if _, body := putConfig(t, e, "fields", string(raw)); strings.Contains(body, "unknown field") {
		t.Fatalf("PUT %s: %s", raw, body)
	}
}
