package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestWebhookVerifyCLI configures a verified webhook through the CLI, as
// the README does, against `orcheo dev`: a GitHub-signed request starts a
// run, an unsigned or wrongly signed one does not; rotate-secret keeps the
// old secret valid until --drop-previous; no command prints a secret.
func TestWebhookVerifyCLI(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{"ORCHEO_DATA_DIR=" + t.TempDir(), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port), "ORCHEO_URL=" + url}
	dev := startProcess(t, env, "dev")
	waitHealthy(t, dev, url)

	const first, second = "e2e-first-s3cr3t-7Hq", "e2e-second-s3cr3t-9Kz"
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(baseEnv(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		printed.Write(out)
		if err != nil {
			t.Fatalf("orcheo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// GitHub signs only the body, so the same body twice is a replay:
	// every request has its own.
	sent := 0
	post := func(secret string) int {
		t.Helper()
		sent++
		body := fmt.Sprintf(`{"name":"Ada","n":%d}`, sent)
		req, err := http.NewRequest(http.MethodPost, url+"/api/workflows/greet/triggers/webhook", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			mac := hmac.New(sha256.New, []byte(secret))
			mac.Write([]byte(body))
			req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(what, secret string, want int) {
		t.Helper()
		if got := post(secret); got != want {
			t.Errorf("%s: webhook answered %d, want %d", what, got, want)
		}
	}

	run("", "workflows", "create", "-f", "../examples/hello.yaml", "--handle", "greet")
	out := run("", "triggers", "webhook", "enable", "greet", "--verify", "github", "--secret-file", secretFile)
	if !strings.Contains(out, "verified by github") || strings.Contains(out, "warning") {
		t.Fatalf("enable --verify github:\n%s", out)
	}
	expect("unsigned", "", http.StatusUnauthorized)
	expect("signed with another secret", "not-the-secret", http.StatusUnauthorized)
	expect("signed with the file's secret, its newline trimmed", first, http.StatusAccepted)
	// The README's way of signing: openssl and curl.
	if _, err := exec.LookPath("openssl"); err == nil {
		script := `BODY='{"name":"Grace"}'
SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$(cat "$SECRET_FILE")" | awk '{print $NF}')
curl -s -o /dev/null -w '%{http_code}' -X POST "$ORCHEO_URL/api/workflows/greet/triggers/webhook" \
  -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$SIG" -d "$BODY"`
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Env = append(baseEnv(), "ORCHEO_URL="+url, "SECRET_FILE="+secretFile)
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != "202" {
			t.Errorf("openssl-signed curl: %v: %s", err, out)
		}
	}

	out = run("", "triggers", "webhook", "show", "greet")
	if !strings.Contains(out, "github") || !strings.Contains(out, "set (") || strings.Contains(out, "UNAUTHENTICATED") {
		t.Fatalf("show:\n%s", out)
	}

	run(second+"\n", "triggers", "webhook", "rotate-secret", "greet", "--secret-stdin")
	expect("new secret after rotate", second, http.StatusAccepted)
	expect("previous secret after rotate", first, http.StatusAccepted)
	run("", "triggers", "webhook", "rotate-secret", "greet", "--drop-previous")
	expect("new secret after --drop-previous", second, http.StatusAccepted)
	expect("previous secret after --drop-previous", first, http.StatusUnauthorized)

	// Enabling again without --verify or a secret flag keeps both.
	run("", "triggers", "webhook", "enable", "greet", "--method", "POST")
	expect("after enable without --verify", second, http.StatusAccepted)

	out = run("", "triggers", "webhook", "enable", "greet", "--verify", "none")
	if !strings.Contains(out, "anyone who knows its URL can start runs") {
		t.Fatalf("enable --verify none does not warn:\n%s", out)
	}
	expect("unsigned after --verify none", "", http.StatusAccepted)
	if out = run("", "triggers", "webhook", "show", "greet"); !strings.Contains(out, "UNAUTHENTICATED") {
		t.Fatalf("show after --verify none:\n%s", out)
	}

	for _, s := range []string{first, second} {
		if strings.Contains(printed.String(), s) {
			t.Errorf("a command printed the secret %q:\n%s", s, printed.String())
		}
	}
}
