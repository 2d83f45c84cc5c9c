package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orcheo/orcheo/internal/docsh"
	"github.com/orcheo/orcheo/internal/testenv"
)

// runbookTools are the programs whose runbook lines run here, against the
// live stack. Every other line must use one of docsh.HostTools, which
// deploy/systemd's tests check (TestDocHostCommands, TestInstallBlocks).
var runbookTools = []string{"", "orcheo", "curl", "set", ".", "echo", "grep", "awk", "sed", "openssl", "umask",
	"pg_dump", "pg_restore"}

// runbookShims stand in for systemd in the runbook's session: each call is
// logged; reload orcheo-api sends the api its SIGHUP and waits until the
// tokens file's tokens work (and the removed ops-old one no longer does);
// stop orcheo.target before a restore stops the stack's processes.
const runbookShims = `
api_code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$RUNBOOK_API/api/workflows"; }
api_reloaded() {
  local tok
  for tok in $(awk '{print $3}' "$RUNBOOK_TOKENS"); do [ "$(api_code "$tok")" = 200 ] || return 1; done
  grep -q "$RUNBOOK_OLD_TOKEN" "$RUNBOOK_TOKENS" || [ "$(api_code "$RUNBOOK_OLD_TOKEN")" = 401 ]
}
systemctl() {
  printf 'systemctl %s\n' "$*" >>"$RUNBOOK_LOG"
  case "$*" in
  "reload orcheo-api")
    kill -HUP "$RUNBOOK_API_PID"
    for _ in $(seq 100); do api_reloaded && return 0; sleep 0.1; done
    echo "the api did not reload its tokens" >&2; return 1 ;;
  "stop orcheo.target")
    [ "$RUNBOOK_HEADING" = "Backup and restore" ] || return 0
    kill -TERM $RUNBOOK_PIDS
    for p in $RUNBOOK_PIDS; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done ;;
  esac
}
journalctl() { printf 'journalctl %s\n' "$*" >>"$RUNBOOK_LOG"; }
`

// TestRunbook runs docs/runbook.md's blocks in order, in one shell session
// as an operator would, against an api, two workers and a beat on a scratch
// database and a private Redis prefix, with /etc/orcheo in a scratch
// directory and the example ports mapped to the processes' free ports. The
// install block is left to deploy/systemd, which runs it against a scratch
// root.
func TestRunbook(t *testing.T) {
	md, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	checkRunbookAlerts(t, string(md))

	dbURL := testenv.PostgresURL(t, "e2e_runbook")
	redisURL := testenv.RedisURL(t)
	etc := t.TempDir()
	apiPort, beatPort := testenv.FreePort(t), testenv.FreePort(t)
	w1, w2 := testenv.FreePort(t), testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	token, oldToken := "rb-"+randomSuffix()+randomSuffix(), "old-"+randomSuffix()+randomSuffix()
	tokens := filepath.Join(etc, "api-tokens")
	if err := os.WriteFile(tokens, []byte("ops-old admin "+oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := []string{
		"ORCHEO_DATABASE_URL=" + dbURL,
		"REDIS_URL=" + redisURL,
		"ORCHEO_REDIS_PREFIX=orcheo-e2e-runbook-" + randomSuffix(),
		"ORCHEO_API_TOKEN=" + token,
		"ORCHEO_URL=" + url,
	}
	// The env file the runbook loads with set -a.
	if err := os.WriteFile(filepath.Join(etc, "orcheo.env"), []byte(strings.Join(settings, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, settings...), "ORCHEO_SECRETS_KEY=2rFSoA2yOa8Gq0qeXq0kKCo2b3m0nNQ0Q3Y6x1T2m3I=",
		"ORCHEO_API_TOKENS_FILE="+tokens, fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", apiPort), "ORCHEO_LOG_LEVEL=info")
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, env, "api")
	waitHealthy(t, api, url)
	workers := []*process{
		startProcess(t, append(env, fmt.Sprintf("ORCHEO_WORKER_METRICS_ADDR=127.0.0.1:%d", w1)), "worker", "--concurrency", "2"),
		startProcess(t, append(env, fmt.Sprintf("ORCHEO_WORKER_METRICS_ADDR=127.0.0.1:%d", w2)), "worker", "--concurrency", "2"),
	}
	beat := startProcess(t, append(env, fmt.Sprintf("ORCHEO_BEAT_HEALTH_ADDR=127.0.0.1:%d", beatPort)), "beat")
	for _, w := range workers {
		waitOutput(t, w, "worker consuming")
	}
	waitOutput(t, beat, "beat is active")

	// What the runbook's blocks look at: a failed run of report, a run
	// executing, a webhook with a secret on hello, a cron trigger nightly.
	mustCLI(t, env, "workflows", "create", "-f", "../examples/hello.yaml", "--handle", "hello")
	mustCLI(t, env, "triggers", "webhook", "enable", "hello", "--verify", "github", "--secret-file",
		writeFile(t, "hello.secret", randomSuffix()+randomSuffix()))
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "report.yaml", failingWorkflow), "--handle", "report")
	failed, _ := cli(t, env, "workflows", "run", "report", "--wait")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "slow.yaml", "nodes:\n  - id: wait\n    type: delay\n    duration: 60s\n"), "--handle", "slow")
	mustCLI(t, env, "workflows", "run", "slow")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "nightly.yaml", tickWorkflow), "--handle", "nightly")
	mustCLI(t, env, "triggers", "cron", "set", "nightly", "--expression", "0 2 * * *")
	waitFor(t, 30*time.Second, "the slow run to be running", func() bool {
		out, _ := cli(t, env, "runs", "list", "--workflow", "slow", "--status", "running")
		return strings.Contains(out, "running")
	})

	// One session, block after block; each block is announced so a
	// failure names it.
	var script strings.Builder
	script.WriteString(runbookShims)
	blocks := 0
	for _, b := range docsh.Blocks(string(md)) {
		if b.Region == "install" {
			continue
		}
		for _, c := range b.Commands() {
			for _, s := range docsh.Simple(c.Text) {
				if tool := docsh.Tool(s); !slices.Contains(runbookTools, tool) && !docsh.HostTools[tool] {
					t.Errorf("docs/runbook.md:%d: %q runs %s, which neither this test nor deploy/systemd's runs", c.Line, s, tool)
				}
			}
		}
		fmt.Fprintf(&script, "RUNBOOK_HEADING='%s'\necho '>>> docs/runbook.md:%d (%s)'\n%s\n", b.Heading, b.Line, b.Heading, b.Text)
		blocks++
	}
	if blocks < 10 {
		t.Fatalf("only %d runnable blocks in docs/runbook.md", blocks)
	}
	text := strings.NewReplacer(
		"/etc/orcheo/", etc+"/",
		"http://127.0.0.1:8080", url,
		"127.0.0.1:9100", fmt.Sprintf("127.0.0.1:%d", beatPort),
		"127.0.0.1:9101", fmt.Sprintf("127.0.0.1:%d", w1),
		"127.0.0.1:9102", fmt.Sprintf("127.0.0.1:%d", w2),
	).Replace(script.String())

	pids := []string{strconv.Itoa(api.cmd.Process.Pid), strconv.Itoa(beat.cmd.Process.Pid)}
	for _, w := range workers {
		pids = append(pids, strconv.Itoa(w.cmd.Process.Pid))
	}
	hostLog := filepath.Join(t.TempDir(), "host.log")
	work := repoWorkDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", text)
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"RUNBOOK_API=" + url, "RUNBOOK_API_PID=" + pids[0], "RUNBOOK_PIDS=" + strings.Join(pids, " "),
		"RUNBOOK_TOKENS=" + tokens, "RUNBOOK_OLD_TOKEN=" + oldToken, "RUNBOOK_LOG=" + hostLog,
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the runbook failed: %v\n%s", err, out)
	}
	t.Logf("runbook session:\n%s", out)

	for _, want := range []string{
		"succeeded", "hello, ops", // the install check's run
		"database  ok", "redis     ok", // orcheo status
		"orcheo_worker_consumers_online 2", `orcheo_scrape_source_up{source="redis"} 1`, "orcheo_beat_active 1",
		"no thanks",       // runs show of the failed run
		"(attempt 2 of",   // runs retry
		"cancelled",       // runs cancel --wait of the slow run
		"Next at",         // triggers cron show
		"hello", "report", // workflows list with the new token
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the runbook's output lacks %q", want)
		}
	}
	if !strings.Contains(failed, "failed") {
		t.Errorf("the report run did not fail:\n%s", failed)
	}
	b, err := os.ReadFile(tokens)
	if err != nil || strings.Contains(string(b), oldToken) || !strings.Contains(string(b), "ops-new admin ") {
		t.Errorf("api-tokens after the rotation: %q, %v", b, err)
	}
	for _, want := range []string{"systemctl reload orcheo-api", "systemctl restart orcheo-worker@1", "systemctl stop orcheo.target", "journalctl -u orcheo-worker@1 -f"} {
		if log, _ := os.ReadFile(hostLog); !strings.Contains(string(log), want) {
			t.Errorf("the session never reached %q", want)
		}
	}
	// The restore ran with everything stopped and left the workflows.
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM workflows").Scan(&n); err != nil || n != 5 {
		t.Errorf("workflows after the restore: %d, %v; want 5", n, err)
	}
}

// checkRunbookAlerts checks that the runbook's alert table names exactly
// the alerts of docs/metrics.md, and cites no other.
func checkRunbookAlerts(t *testing.T, runbook string) {
	t.Helper()
	metrics, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllStringSubmatch(string(metrics), -1) {
		defined[m[1]] = true
	}
	if len(defined) == 0 {
		t.Fatal("docs/metrics.md defines no alert")
	}
	for _, m := range regexp.MustCompile(`\bOrcheo[A-Z]\w+`).FindAllString(runbook, -1) {
		if !defined[m] {
			t.Errorf("docs/runbook.md cites %s, which docs/metrics.md does not define", m)
		}
	}
	_, table, ok := strings.Cut(runbook, "## What each alert means and what to do")
	if !ok {
		t.Fatal(`docs/runbook.md has no "What each alert means and what to do"`)
	}
	var missing []string
	for a := range defined {
		if !strings.Contains(table, "| `"+a+"` |") {
			missing = append(missing, a)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/runbook.md's alert table lacks %v", missing)
	}
}
