package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// signedBody is what a sender signs: key order, spacing and escapes that
// a decode and re-encode would change, so only a check over the raw bytes
// verifies it.
const signedBody = "{\"zeta\":1,  \"alpha\" : [2,3],\n \"s\":\"caf\\u00e9\"}"

// Secrets the test configures; none may ever show in an answer or a log.
const (
	githubSecret   = "gh-e2e-secret-5f1c2a9d"
	githubRotated  = "gh-e2e-rotated-77ab3e01"
	stripeSecret   = "whsec_stripe-e2e-0c3d9e1f"
	slackSecret    = "slack-e2e-secret-a4b8c2d6"
	standardSecret = "whsec_" + "c3RhbmRhcmQtZTJlLXNlY3JldC1rZXktMzJieXRlcw=="
)

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// webhookPost sends body to handle's webhook ("handle?query" adds a
// query) with the headers (name, value pairs) and returns the status, the
// body and Retry-After.
func webhookPost(t *testing.T, base, handle, body string, header ...string) (int, string, string) {
	t.Helper()
	ref, query, _ := strings.Cut(handle, "?")
	url := base + "/api/workflows/" + ref + "/triggers/webhook"
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s webhook: %v", handle, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

// TestSignedWebhooks drives the real api on PostgreSQL and Redis with
// requests signed exactly as GitHub, Stripe, Slack and Standard Webhooks
// sign them, over raw bytes: each verifies; tampered, stale, unsigned or
// wrongly signed ones are 401 and store nothing; redeliveries find the
// first run, 20 at once included; replays are refused; a rotated secret
// verifies alongside the old one until it is dropped; and no secret shows
// in any answer, run input or log line.
func TestSignedWebhooks(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	s := startFaultStackEnv(t, "e2e_signed_webhooks", "ORCHEO_SECRETS_KEY="+key, "ORCHEO_LOG_LEVEL=debug")
	ctx := context.Background()
	def := `{"nodes":[{"id":"a","type":"log","message":"\"got it\""}]}`
	for _, h := range []string{"gh", "stripe", "slack", "std"} {
		s.createWorkflow(h, def)
	}
	for h, v := range map[string]*orcheo.WebhookVerify{
		"gh":     {Type: orcheo.VerifyGitHub, Secret: githubSecret},
		"stripe": {Type: orcheo.VerifyStripe, Secret: stripeSecret},
		"slack":  {Type: orcheo.VerifySlack, Secret: slackSecret},
		"std":    {Type: orcheo.VerifyStandard, Secret: standardSecret},
	} {
		view, err := s.client.SetWebhookConfig(ctx, h, &orcheo.WebhookConfig{Enabled: true, Verify: v})
		if err != nil {
			t.Fatalf("set %s config: %v", h, err)
		}
		if view.Verify == nil || !view.Verify.SecretSet || view.Unauthenticated {
			t.Fatalf("%s view: %+v", h, view)
		}
	}
	runsOf := func(handle string) int {
		t.Helper()
		_, total, err := s.client.FindRuns(ctx, handle, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	stale := strconv.FormatInt(now-3600, 10)

	t.Run("GitHub", func(t *testing.T) {
		sig := "sha256=" + hmacHex(githubSecret, signedBody)
		code, body, _ := webhookPost(t, s.url, "gh", signedBody, "X-Hub-Signature-256", sig, "X-GitHub-Delivery", "d-1", "X-GitHub-Event", "push")
		if code != http.StatusAccepted {
			t.Fatalf("signed delivery: %d %s", code, body)
		}
		for name, hdr := range map[string][]string{
			"Tampered":    {"X-Hub-Signature-256", "sha256=" + hmacHex(githubSecret, signedBody+" "), "X-GitHub-Delivery", "d-2"},
			"WrongSecret": {"X-Hub-Signature-256", "sha256=" + hmacHex("not-the-secret", signedBody), "X-GitHub-Delivery", "d-3"},
			"NoSignature": {"X-GitHub-Delivery", "d-4"},
			// The same signed body under a new delivery id: a replay.
			"ReplayNewID": {"X-Hub-Signature-256", sig, "X-GitHub-Delivery", "d-5"},
		} {
			if code, body, _ := webhookPost(t, s.url, "gh", signedBody, hdr...); code != http.StatusUnauthorized || strings.Contains(body, "secret") {
				t.Errorf("%s: %d %s, want 401 with the generic message", name, code, body)
			}
		}
		if n := runsOf("gh"); n != 1 {
			t.Fatalf("%d runs after one good delivery and four refused ones", n)
		}
		// 20 redeliveries of d-1 at once: all find the first run.
		var wg sync.WaitGroup
		answers := make([]string, 20)
		codes := make([]int, 20)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], answers[i], _ = webhookPost(t, s.url, "gh", signedBody, "X-Hub-Signature-256", sig, "X-GitHub-Delivery", "d-1")
			}()
		}
		wg.Wait()
		firstID := body[strings.Index(body, `"id":`):]
		firstID = firstID[:strings.Index(firstID, ",")]
		for i := range answers {
			if codes[i] != http.StatusOK || !strings.Contains(answers[i], firstID) {
				t.Errorf("redelivery %d: %d %s, want 200 with the first run (%s)", i, codes[i], answers[i], firstID)
			}
		}
		if n := runsOf("gh"); n != 1 {
			t.Fatalf("%d runs after 20 redeliveries, want 1", n)
		}
	})

	t.Run("Stripe", func(t *testing.T) {
		event := `{"id":"evt_e2e_1",  "type":"charge.succeeded", "data":{"object":{}}}`
		header := func(t string, secret string) string {
			return "t=" + t + ",v1=" + hmacHex(secret, t+"."+event)
		}
		if code, body, _ := webhookPost(t, s.url, "stripe", event, "Stripe-Signature", header(ts, stripeSecret)); code != http.StatusAccepted {
			t.Fatalf("signed event: %d %s", code, body)
		}
		if code, body, _ := webhookPost(t, s.url, "stripe", event, "Stripe-Signature", header(ts, stripeSecret)); code != http.StatusOK {
			t.Errorf("the same event again: %d %s, want 200", code, body)
		}
		if code, _, _ := webhookPost(t, s.url, "stripe", event, "Stripe-Signature", header(stale, stripeSecret)); code != http.StatusUnauthorized {
			t.Errorf("stale timestamp: %d, want 401", code)
		}
		if code, _, _ := webhookPost(t, s.url, "stripe", event, "Stripe-Signature", header(ts, "whsec_wrong")); code != http.StatusUnauthorized {
			t.Errorf("wrong secret: %d, want 401", code)
		}
		if n := runsOf("stripe"); n != 1 {
			t.Errorf("%d runs, want 1", n)
		}
	})

	t.Run("Slack", func(t *testing.T) {
		sign := func(ts, body string) string { return "v0=" + hmacHex(slackSecret, "v0:"+ts+":"+body) }
		challenge := `{"token":"x","challenge":"ch-e2e-123","type":"url_verification"}`
		code, body, _ := webhookPost(t, s.url, "slack", challenge, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sign(ts, challenge))
		if code != http.StatusOK || !strings.Contains(body, `"challenge":"ch-e2e-123"`) {
			t.Fatalf("url_verification: %d %s", code, body)
		}
		if code, _, _ := webhookPost(t, s.url, "slack", challenge, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sign(ts, challenge+" ")); code != http.StatusUnauthorized {
			t.Errorf("url_verification with a bad signature: %d, want 401 (no challenge)", code)
		}
		// A slash command (no event_id): its replay is refused.
		command := `{"command":"/deploy",  "text":"prod"}`
		if code, body, _ := webhookPost(t, s.url, "slack", command, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sign(ts, command)); code != http.StatusAccepted {
			t.Fatalf("signed command: %d %s", code, body)
		}
		if code, _, _ := webhookPost(t, s.url, "slack", command, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sign(ts, command)); code != http.StatusUnauthorized {
			t.Errorf("replayed command: %d, want 401", code)
		}
		if n := runsOf("slack"); n != 1 {
			t.Errorf("%d runs, want 1 (the challenge creates none)", n)
		}
	})

	t.Run("StandardWebhooks", func(t *testing.T) {
		keyBytes, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(standardSecret, "whsec_"))
		m := hmac.New(sha256.New, keyBytes)
		m.Write([]byte("msg_e2e_1." + ts + "." + signedBody))
		sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if code, body, _ := webhookPost(t, s.url, "std", signedBody, "webhook-id", "msg_e2e_1", "webhook-timestamp", ts, "webhook-signature", "v1,bm90IGl0 "+sig); code != http.StatusAccepted {
			t.Fatalf("signed message: %d %s", code, body)
		}
		if code, _, _ := webhookPost(t, s.url, "std", signedBody, "webhook-id", "msg_e2e_2", "webhook-timestamp", ts, "webhook-signature", sig); code != http.StatusUnauthorized {
			t.Errorf("signature of another message id: %d, want 401", code)
		}
	})

	t.Run("Rotation", func(t *testing.T) {
		send := func(secret, id string) int {
			body := `{"delivery":"` + id + `",  "n": 1}`
			code, _, _ := webhookPost(t, s.url, "gh", body, "X-Hub-Signature-256", "sha256="+hmacHex(secret, body), "X-GitHub-Delivery", id)
			return code
		}
		view, err := s.client.RotateWebhookSecret(ctx, "gh", githubRotated, false)
		if err != nil || !view.Verify.SecretSet || !view.Verify.PreviousSecretSet {
			t.Fatalf("rotate: %+v, %v", view, err)
		}
		if a, b := send(githubSecret, "r-1"), send(githubRotated, "r-2"); a != http.StatusAccepted || b != http.StatusAccepted {
			t.Fatalf("during rotation: old secret %d, new secret %d; want both 202", a, b)
		}
		if _, err := s.client.RotateWebhookSecret(ctx, "gh", "", true); err != nil {
			t.Fatal(err)
		}
		if a, b := send(githubSecret, "r-3"), send(githubRotated, "r-4"); a != http.StatusUnauthorized || b != http.StatusAccepted {
			t.Fatalf("after dropping the previous secret: old %d, new %d; want 401, 202", a, b)
		}
	})

	// No secret anywhere: config answers, run inputs, the api's log.
	var seen strings.Builder
	for _, h := range []string{"gh", "stripe", "slack", "std"} {
		out, code := cli(t, s.cliEnv(), "triggers", "webhook", "show", h, "--json")
		if code != 0 {
			t.Fatalf("triggers webhook show %s: exit %d: %s", h, code, out)
		}
		seen.WriteString(out)
		runs, _, err := s.client.FindRuns(ctx, h, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			full, err := s.client.FindRunByID(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			seen.Write(full.Input)
			for _, name := range []string{"x-hub-signature-256", "stripe-signature", "x-slack-signature", "webhook-signature"} {
				if strings.Contains(string(full.Input), `"`+name+`"`) {
					t.Errorf("run %s of %s stored the %s header", r.ID, h, name)
				}
			}
		}
	}
	seen.WriteString(s.api.out.String())
	for _, secret := range []string{githubSecret, githubRotated, stripeSecret, slackSecret, standardSecret, strings.TrimPrefix(standardSecret, "whsec_"), key} {
		if strings.Contains(seen.String(), secret) {
			t.Errorf("a secret (%.6s…) shows in a config answer, a run input or the api's log", secret)
		}
	}
}

// TestWebhookRateLimitAcrossAPIs: two api processes share one Redis, so a
// webhook's limit holds for both together; the refused request is 429 with
// Retry-After and stores nothing.
func TestWebhookRateLimitAcrossAPIs(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	s := startFaultStackEnv(t, "e2e_webhook_rate", "ORCHEO_SECRETS_KEY="+key)
	ctx := context.Background()
	s.createWorkflow("limited", `{"nodes":[{"id":"a","type":"log","message":"\"hi\""}]}`)
	if _, err := s.client.SetWebhookConfig(ctx, "limited", &orcheo.WebhookConfig{Enabled: true,
		Verify:    &orcheo.WebhookVerify{Type: orcheo.VerifyNone},
		RateLimit: &orcheo.WebhookRateLimit{Limit: 5, Per: "1m"}}); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	env := append(append([]string{}, s.env...), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port))
	second := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(t, startProcess(t, env, "api"), second)

	accepted := 0
	for i, base := range []string{s.url, second, s.url, second, s.url, second} {
		code, body, retry := webhookPost(t, base, "limited", fmt.Sprintf(`{"i":%d}`, i))
		switch {
		case code == http.StatusAccepted:
			accepted++
		case code == http.StatusTooManyRequests && i == 5:
			if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 61 {
				t.Errorf("429 with Retry-After %q, want 1-61 seconds", retry)
			}
		default:
			t.Errorf("request %d to %s: %d %s", i, base, code, body)
		}
	}
	if accepted != 5 {
		t.Errorf("%d accepted, want 5 (limit 5 per minute over both APIs)", accepted)
	}
	if _, total, err := s.client.FindRuns(ctx, "limited", "", 1000); err != nil || total != 5 {
		t.Errorf("%d runs stored (%v), want 5", total, err)
	}

	// One address's limit is counted before the signature is checked, so
	// a flood of forged requests costs no HMAC past it: 2 refused as
	// unverified (401), then 429. Required values come before both.
	s.createWorkflow("guarded", `{"nodes":[{"id":"a","type":"log","message":"\"hi\""}]}`)
	if _, err := s.client.SetWebhookConfig(ctx, "guarded", &orcheo.WebhookConfig{Enabled: true,
		RequiredHeaders: map[string]string{"X-Env": "prod"}, RequiredQuery: map[string]string{"k": "v"},
		Verify:    &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, Secret: githubSecret},
		RateLimit: &orcheo.WebhookRateLimit{Limit: 100, Per: "1m", PerIP: 2}}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := webhookPost(t, s.url, "guarded?k=v", `{}`, "X-Hub-Signature-256", "sha256=00"); code != http.StatusBadRequest || !strings.Contains(body, "x-env") {
		t.Errorf("without the required header: %d %s, want 400 naming it", code, body)
	}
	if code, body, _ := webhookPost(t, s.url, "guarded", `{}`, "X-Env", "prod"); code != http.StatusBadRequest || !strings.Contains(body, "k") {
		t.Errorf("without the required query value: %d %s, want 400", code, body)
	}
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		if code, body, _ := webhookPost(t, s.url, "guarded?k=v", `{}`, "X-Env", "prod", "X-Hub-Signature-256", "sha256=00"); code != want {
			t.Errorf("forged request %d: %d %s, want %d", i+1, code, body, want)
		}
	}
	if _, total, err := s.client.FindRuns(ctx, "guarded", "", 1000); err != nil || total != 0 {
		t.Errorf("%d runs stored (%v) from refused requests, want 0", total, err)
	}
}
