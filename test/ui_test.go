package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The web UI in a real browser: Debian's chromium, headless, driven over
// the DevTools protocol by chromedp, against orcheo api and worker on
// PostgreSQL and Redis. Each page's screenshot goes to docs/screenshots/.

const uiGreetWorkflow = `
nodes:
  - id: greet
    type: set
    values:
      message: '"hello, " + input.body.name'
  - id: pause
    type: delay
    duration: 1500ms
  - id: say
    type: log
    message: 'steps.greet.output.message'
`

const uiSlowWorkflow = `
nodes:
  - id: wait
    type: delay
    duration: 60s
`

// chromiumFlags are the flags chromium needs on this machine, or it
// stalls on network calls the sandbox refuses.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.WindowSize(1280, 900),
}

// startChromium starts a headless chromium with a fresh profile and
// returns a tab's context, which accepts every confirm() dialog. Without
// chromium the test is skipped, or fails with CI=true.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (scripts/install-deps.sh installs it): %v", err)
		}
		t.Skipf("chromium is not installed (scripts/install-deps.sh installs it): %v", err)
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}, chromiumFlags...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser, which lives as long as its
	// context: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// run runs browser actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(step, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, ctx context.Context, what, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(step, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot saves the page as docs/screenshots/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitJS polls expr in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if eval[bool](t, ctx, what, expr) {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: not within %s; the page shows:\n%s", what, timeout, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestUI_Browser(t *testing.T) {
	ctx := startChromium(t)
	readToken := "ui-read-" + randomSuffix() + randomSuffix()
	s := startStack(t, "e2e_ui", "ORCHEO_API_TOKENS=viewer:read:"+readToken)
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-greet.yaml", uiGreetWorkflow))
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-slow.yaml", uiSlowWorkflow))
	mustCLI(t, s.env, "workflows", "create", "-f", writeFile(t, "ui-refuse.yaml", failingWorkflow))
	mustCLI(t, s.env, "triggers", "webhook", "enable", "ui-greet")

	login := func(token string) {
		t.Helper()
		run(t, ctx, "sign in",
			chromedp.Navigate(s.url+"/ui/runs"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.CSS("table.runs")))
	}

	// Login: a wrong token is refused with a message.
	run(t, ctx, "open the login form", chromedp.Navigate(s.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	screenshot(t, ctx, "login")
	run(t, ctx, "sign in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token-0000000000"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(".error-box")))
	login(s.token)

	// A webhook's run appears on the open runs page and moves to
	// succeeded, without a reload: the marker set on the page survives.
	eval[bool](t, ctx, "mark the page", `window.notReloaded = true`)
	waitJS(t, ctx, "live stream open", `document.body.getAttribute("data-live") === "on"`, 10*time.Second)
	resp := postWebhook(t, s.url, "ui-greet", `{"name":"Ada"}`)
	var accepted struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&accepted); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	row := fmt.Sprintf(`document.querySelector('tr[data-run="%s"] .badge')`, accepted.ID)
	waitJS(t, ctx, "the new run appears", row+` !== null`, 10*time.Second)
	waitJS(t, ctx, "the run is shown running", row+`.textContent === "running"`, 10*time.Second)
	screenshot(t, ctx, "runs")
	waitJS(t, ctx, "the run is shown succeeded", row+`.textContent === "succeeded"`, 20*time.Second)
	waitJS(t, ctx, "without a reload", `window.notReloaded === true`, time.Second)

	// Its detail shows the steps of its attempt and the output.
	run(t, ctx, "open the run", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-run="%s"] a`, accepted.ID))),
		chromedp.WaitVisible(chromedp.ID("run-steps")))
	for _, node := range []string{"greet", "pause", "say"} {
		waitJS(t, ctx, "step "+node, fmt.Sprintf(`document.querySelector('#run-steps li[data-node="%s"][data-status="succeeded"]') !== null`, node), 5*time.Second)
	}
	waitJS(t, ctx, "the output", `document.querySelector("#run-summary").textContent.includes("hello, Ada")`, 5*time.Second)
	screenshot(t, ctx, "run-detail")

	// Cancel a running run from its page: the cancel is requested, and the
	// page shows it cancelled once the worker stops it.
	slow := startRunID(t, s, "ui-slow")
	run(t, ctx, "open the slow run", chromedp.Navigate(s.url+"/ui/runs/"+slow))
	waitJS(t, ctx, "the slow run is running", `document.querySelector("#run-summary .badge").textContent === "running"`, 15*time.Second)
	waitJS(t, ctx, "its delay step shows", `document.querySelector('#run-steps li[data-node="wait"]') !== null`, 10*time.Second)
	screenshot(t, ctx, "run-running")
	run(t, ctx, "cancel", chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	waitJS(t, ctx, "the run ends cancelled", `document.querySelector("#run-summary .badge").textContent === "cancelled"`, 15*time.Second)

	// Retry a failed run: a second attempt runs (and fails again).
	failed := startRunID(t, s, "ui-refuse")
	waitRun(t, s.client, failed)
	run(t, ctx, "open the failed run", chromedp.Navigate(s.url+"/ui/runs/"+failed), chromedp.WaitVisible(chromedp.ID("retry")))
	run(t, ctx, "retry", chromedp.Click(chromedp.ID("retry")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	waitJS(t, ctx, "the second attempt's steps", `document.querySelector('#run-steps section[aria-label="Attempt 2"] li[data-node="check"]') !== null`, 20*time.Second)
	waitJS(t, ctx, "the retried run ends failed", `document.querySelector("#run-summary .badge").textContent === "failed"`, 10*time.Second)
	screenshot(t, ctx, "run-retried")

	// The runs page on a phone's width.
	run(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/ui/runs?workflow=ui-greet"),
		chromedp.WaitVisible(chromedp.CSS("table.runs")))
	screenshot(t, ctx, "runs-phone")
	run(t, ctx, "laptop width", chromedp.EmulateViewport(1280, 900))

	// A read token sees the run but no button, and its POST, CSRF token
	// and all, is refused.
	run(t, ctx, "sign out", chromedp.Click(chromedp.CSS("form[action='/ui/logout'] button")), chromedp.WaitVisible(chromedp.ID("token")))
	login(readToken)
	run(t, ctx, "open the failed run as a reader", chromedp.Navigate(s.url+"/ui/runs/"+failed), chromedp.WaitVisible(chromedp.ID("run-steps")))
	buttons := eval[int](t, ctx, "count buttons", `document.querySelectorAll("#cancel, #retry").length`)
	if buttons != 0 {
		t.Fatalf("a read token's page shows %d action buttons", buttons)
	}
	status := eval[int](t, ctx, "post a retry anyway", fmt.Sprintf(`(async () => {
		const csrf = document.querySelector("input[name=csrf]").value;
		const r = await fetch("/ui/runs/%s/retry", {method: "POST", headers: {"X-CSRF-Token": csrf}});
		return r.status;
	})()`, failed), chromedp.EvalAwaitPromise)
	if status != http.StatusForbidden {
		t.Fatalf("a read token's retry answered %d, want 403", status)
	}
	screenshot(t, ctx, "run-read-only")
	if got, err := s.client.FindRunByID(context.Background(), failed); err != nil || got.Attempt != 2 {
		t.Fatalf("after the reader's retry: %+v, %v; want attempt 2 (unchanged)", got, err)
	}
}

// startRunID starts a manual run of handle through the API and returns its
// id.
func startRunID(t *testing.T, s *stack, handle string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/workflows/"+handle+"/runs", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct{ ID string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &r) != nil {
		t.Fatalf("start %s: %d %s", handle, resp.StatusCode, body)
	}
	return r.ID
}
