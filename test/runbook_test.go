package test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/docsh"
	"github.com/orcheo/orcheo/internal/testenv"
)

// runbookTools are the programs whose runbook lines run here, against the
// live stack. Every other line must use one of docsh.HostTools, which
// deploy/systemd's tests check (TestDocHostCommands, TestInstallBlocks).
var runbookTools = []string{"", "orcheo", "curl", "set", ".", "echo", "grep", "awk", "sed", "openssl", "umask",
	"pg_dump", "pg_restore", "hostname"}

// partnerWorkflow calls the partner API the test stands up (%s): down
// while the test seeds the sync runs' failures, up for the bulk retry.
// One attempt, the default.
const partnerWorkflow = `
nodes:
  - id: push
    type: http
    url: '%s'
`

// delayedRetryWorkflow calls the partner while it is down; its second
// attempt is due 10 to 20 minutes later: a row of inspect scheduled.
const delayedRetryWorkflow = `
retry:
  max_attempts: 3
  backoff: 20m
  max_backoff: 20m
nodes:
  - id: push
    type: http
    url: '%s'
`

// quickWorkflow ends at once.
const quickWorkflow = `
nodes:
  - id: ok
    type: set
    values:
      ok: 'true'
`

// runbookShims stand in for systemd in the runbook's session: each call is
// logged; reload orcheo-api sends the api its SIGHUP and waits until the
// tokens file's tokens work (and the removed ops-old one no longer does);
// enable --now or start orcheo-worker@3 starts a worker as its unit would
// (orcheo worker with orcheo.env, then worker-3.env), recording its pid,
// log and exit status in $RUNBOOK_DIR, and disable --now or stop stops it
// by SIGTERM; stop orcheo.target before a restore stops the stack's
// processes. runbook_checkpoint N waits for the Go side's checks.
const runbookShims = `
worker_up() {
  local n=$1 dir=$RUNBOOK_DIR
  if [ -f "$dir/worker-$n.pid" ] && kill -0 "$(cat "$dir/worker-$n.pid")" 2>/dev/null; then return 0; fi
  rm -f "$dir/worker-$n.exit" "$dir/worker-$n.log"
  (
    set -a; . "$RUNBOOK_WORKER_ENV"; . "$RUNBOOK_ETC/orcheo.env"
    [ ! -f "$RUNBOOK_ETC/worker-$n.env" ] || . "$RUNBOOK_ETC/worker-$n.env"; set +a
    orcheo worker >"$dir/worker-$n.log" 2>&1 &
    echo $! >"$dir/worker-$n.pid"
    wait $! && echo 0 >"$dir/worker-$n.exit" || echo $? >"$dir/worker-$n.exit"
  ) >/dev/null 2>&1 &
  for _ in $(seq 300); do
    grep -q 'worker consuming' "$dir/worker-$n.log" 2>/dev/null && return 0
    [ ! -f "$dir/worker-$n.exit" ] || break
    sleep 0.1
  done
  echo "orcheo-worker@$n did not start:" >&2; cat "$dir/worker-$n.log" >&2; return 1
}
worker_down() {
  local pid
  pid=$(cat "$RUNBOOK_DIR/worker-$1.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
runbook_checkpoint() {
  : >"$RUNBOOK_DIR/checkpoint-$1"
  while [ ! -e "$RUNBOOK_DIR/resume-$1" ]; do sleep 0.05; done
}
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
  "enable --now orcheo-worker@3"|"start orcheo-worker@3") worker_up 3 ;;
  "disable --now orcheo-worker@3"|"stop orcheo-worker@3") worker_down 3 ;;
  "stop orcheo.target")
    [ "$RUNBOOK_HEADING" = "Backup and restore" ] || return 0
    worker_down 3
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
// root; its worker-N.env lines are the two workers' settings here. Before
// the session the test seeds what the blocks act on; before the restore
// (which rolls the database back to the dump) it checks what they did.
func TestRunbook(t *testing.T) {
	md, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	checkRunbookAlerts(t, string(md))
	workerEnv := installWorkerEnv(t, string(md))

	dbURL := testenv.PostgresURL(t, "e2e_runbook")
	redisURL := testenv.RedisURL(t)
	etc := t.TempDir()
	apiPort, beatPort := testenv.FreePort(t), testenv.FreePort(t)
	w1, w2, w3 := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
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
		"ORCHEO_API_TOKENS_FILE="+tokens, fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", apiPort), "ORCHEO_LOG_LEVEL=info",
		"ORCHEO_HTTP_ALLOW_PRIVATE=true",  // the partner below is on loopback
		"ORCHEO_HEARTBEAT_INTERVAL=300ms") // so inspect shows the runs of a session that lasts seconds
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, env, "api")
	waitHealthy(t, api, url)
	workers := []*process{
		startProcess(t, append(append(append([]string{}, env...), workerEnv["worker-1"]...),
			fmt.Sprintf("ORCHEO_WORKER_METRICS_ADDR=127.0.0.1:%d", w1)), "worker", "--concurrency", "2"),
		startProcess(t, append(append(append([]string{}, env...), workerEnv["worker-2"]...),
			fmt.Sprintf("ORCHEO_WORKER_METRICS_ADDR=127.0.0.1:%d", w2)), "worker", "--concurrency", "2"),
	}
	beat := startProcess(t, append(env, fmt.Sprintf("ORCHEO_BEAT_HEALTH_ADDR=127.0.0.1:%d", beatPort)), "beat")
	for _, w := range workers {
		waitOutput(t, w, "worker consuming")
	}
	waitOutput(t, beat, "beat is active")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	name := func(n int) string { return fmt.Sprintf("worker-%d@%s", n, host) }

	// The partner API of sync and invoice: down, then up.
	var partnerUp atomic.Bool
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !partnerUp.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer partner.Close()

	// What the runbook's blocks look at: a failed run of report, a run
	// executing, a webhook with a secret on hello, a cron trigger nightly;
	// three runs of sync failed while the partner was down (the bulk
	// retry), a run of invoice waiting for its delayed retry (inspect
	// scheduled), three runs pending on queue batch, which no worker
	// consumes (the bulk cancel), and two runs of old that finished ten
	// days ago (the purge).
	c := client.New(url, token)
	ctx := context.Background()
	mustCLI(t, env, "workflows", "create", "-f", "../examples/hello.yaml", "--handle", "hello")
	mustCLI(t, env, "triggers", "webhook", "enable", "hello", "--verify", "github", "--secret-file",
		writeFile(t, "hello.secret", randomSuffix()+randomSuffix()))
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "report.yaml", failingWorkflow), "--handle", "report")
	failed, _ := cli(t, env, "workflows", "run", "report", "--wait")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "slow.yaml", "nodes:\n  - id: wait\n    type: delay\n    duration: 60s\n"), "--handle", "slow")
	mustCLI(t, env, "workflows", "run", "slow")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "nightly.yaml", tickWorkflow), "--handle", "nightly")
	mustCLI(t, env, "triggers", "cron", "set", "nightly", "--expression", "0 2 * * *")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "sync.yaml", fmt.Sprintf(partnerWorkflow, partner.URL)), "--handle", "sync")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "invoice.yaml", fmt.Sprintf(delayedRetryWorkflow, partner.URL)), "--handle", "invoice")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "export.yaml", quickWorkflow), "--handle", "export", "--queue", "batch")
	mustCLI(t, env, "workflows", "create", "-f", writeFile(t, "old.yaml", quickWorkflow), "--handle", "old")
	start := func(ref string) string {
		t.Helper()
		run, err := c.StartRun(ctx, ref, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		return run.ID
	}
	var syncRuns, backlog, oldRuns []string
	for range 3 {
		syncRuns, backlog = append(syncRuns, start("sync")), append(backlog, start("export"))
	}
	for range 2 {
		oldRuns = append(oldRuns, start("old"))
	}
	invoice := start("invoice")
	for _, id := range syncRuns {
		if run := waitRun(t, c, id); run.Status != orcheo.RunFailed || run.Attempt != 1 {
			t.Fatalf("sync run %s: %s at attempt %d, want failed at 1", id, run.Status, run.Attempt)
		}
	}
	for _, id := range oldRuns {
		if run := waitRun(t, c, id); run.Status != orcheo.RunSucceeded {
			t.Fatalf("old run %s: %s", id, run.Status)
		}
	}
	waitFor(t, 30*time.Second, "invoice's delayed retry", func() bool {
		run, err := c.FindRunByID(ctx, invoice)
		return err == nil && run.Status == orcheo.RunPending && run.NotBefore != nil && run.Attempt == 1
	})
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if tag, err := conn.Exec(ctx, `UPDATE runs SET created_at = created_at - interval '10 days',
		started_at = started_at - interval '10 days', completed_at = completed_at - interval '10 days'
		WHERE id = ANY($1)`, oldRuns); err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("backdate the old runs: %v, %v", tag, err)
	}
	for _, id := range backlog {
		if run, err := c.FindRunByID(ctx, id); err != nil || run.Status != orcheo.RunPending {
			t.Fatalf("backlog run %s: %+v, %v; want pending", id, run, err)
		}
	}
	partnerUp.Store(true)
	waitFor(t, 30*time.Second, "the slow run to be running", func() bool {
		out, _ := cli(t, env, "runs", "list", "--workflow", "slow", "--status", "running")
		return strings.Contains(out, "running")
	})
	slowPage, err := c.ListRuns(ctx, client.RunQuery{Workflow: "slow"})
	if err != nil || len(slowPage.Runs) != 1 {
		t.Fatalf("the slow run: %+v, %v", slowPage, err)
	}
	slow := slowPage.Runs[0].ID

	// One session, block after block; each block is announced so a
	// failure names it. The session waits at each checkpoint, before the
	// first block under its heading, while the test checks what the blocks
	// before did: worker 3's drain before the monitoring blocks count the
	// workers, the rest before the restore rolls the database back.
	o := runbookOutcomes{c: c, conn: conn, name: name, syncRuns: syncRuns, backlog: backlog, oldRuns: oldRuns, invoice: invoice}
	checkpoints := []struct {
		heading string
		check   func(*testing.T, runbookOutcomes)
		reached bool
	}{{heading: "Monitoring", check: checkRunbookDrain}, {heading: "Backup and restore", check: checkRunbookOutcomes}}
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
		for i := range checkpoints {
			if cp := &checkpoints[i]; b.Heading == cp.heading && !cp.reached {
				fmt.Fprintf(&script, "runbook_checkpoint %d\n", i)
				cp.reached = true
			}
		}
		fmt.Fprintf(&script, "RUNBOOK_HEADING='%s'\necho '>>> docs/runbook.md:%d (%s)'\n%s\n", b.Heading, b.Line, b.Heading, b.Text)
		blocks++
	}
	if blocks < 10 {
		t.Fatalf("only %d runnable blocks in docs/runbook.md", blocks)
	}
	for _, cp := range checkpoints {
		if !cp.reached {
			t.Fatalf("docs/runbook.md has no block under %q", cp.heading)
		}
	}
	text := strings.NewReplacer(
		"/etc/orcheo/", etc+"/",
		"http://127.0.0.1:8080", url,
		"127.0.0.1:9100", fmt.Sprintf("127.0.0.1:%d", beatPort),
		"127.0.0.1:9101", fmt.Sprintf("127.0.0.1:%d", w1),
		"127.0.0.1:9102", fmt.Sprintf("127.0.0.1:%d", w2),
		"127.0.0.1:9103", fmt.Sprintf("127.0.0.1:%d", w3),
	).Replace(script.String())

	pids := []string{strconv.Itoa(api.cmd.Process.Pid), strconv.Itoa(beat.cmd.Process.Pid)}
	for _, w := range workers {
		pids = append(pids, strconv.Itoa(w.cmd.Process.Pid))
	}
	dir := t.TempDir()
	o.dir = dir
	t.Cleanup(func() { stopShimWorker(t, dir, 3) })
	// The settings a worker started by the shim gets besides the env
	// files: those of the test's processes.
	shimEnv := filepath.Join(dir, "worker.env")
	if err := os.WriteFile(shimEnv, []byte(strings.Join(append(baseEnv()[2:], env...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hostLog := filepath.Join(dir, "host.log")
	work := repoWorkDir(t)
	sessionCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(sessionCtx, "bash", "-euo", "pipefail", "-c", text)
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + filepath.Dir(binary) + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"RUNBOOK_API=" + url, "RUNBOOK_API_PID=" + pids[0], "RUNBOOK_PIDS=" + strings.Join(pids, " "),
		"RUNBOOK_TOKENS=" + tokens, "RUNBOOK_OLD_TOKEN=" + oldToken, "RUNBOOK_LOG=" + hostLog,
		"RUNBOOK_DIR=" + dir, "RUNBOOK_ETC=" + etc, "RUNBOOK_WORKER_ENV=" + shimEnv,
	}
	session := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = session, session
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	for i, cp := range checkpoints {
		waitFor(t, 2*time.Minute, "the session to reach "+cp.heading, func() bool {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("checkpoint-%d", i))); err == nil {
				return true
			}
			select {
			case err := <-ended:
				t.Fatalf("the runbook failed before %s: %v\n%s", cp.heading, err, session.String())
			default:
			}
			return false
		})
		cp.check(t, o)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("resume-%d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-ended; err != nil {
		t.Fatalf("the runbook failed: %v\n%s", err, session.String())
	}
	out := session.String()
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
		if !strings.Contains(out, want) {
			t.Errorf("the runbook's output lacks %q", want)
		}
	}
	sections := runbookSections(out)
	for heading, wants := range map[string][]string{
		"Install on a Debian host":    {name(1), name(2), "ORCHEO_API_TOKEN", "****", "ORCHEO_DATABASE_URL"},
		"Upgrade and rolling restart": {"orcheo (devel) go1."},
		"Scaling workers":             {name(3), "default,reports"},
		"Draining a host":             {"shutdown requested: " + name(3)},
		"Monitoring":                  {name(1), name(2), "PROCESSED", `"status":"ok"`, `"draining":"ok"`, `"leader":true`},
		"Recovering runs": {"dry run, nothing changed: 3 runs matched, 3 would_retry", "3 runs matched, 3 retried",
			"dry run, nothing changed: 3 runs matched, 3 would_cancel", "3 runs matched, 3 cancelled"},
		"Retention": {"ORCHEO_RUN_RETENTION", "30d", "orcheo_retention_deleted_runs_total 0", "would delete 2 of all finished runs",
			"deleted 2 of all finished runs"},
	} {
		for _, want := range wants {
			if !strings.Contains(sections[heading], want) {
				t.Errorf("the runbook's %q output lacks %q", heading, want)
			}
		}
	}
	// orcheo config and the rest print no secret.
	secrets := []string{token, oldToken}
	if u, err := neturl.Parse(dbURL); err == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("the runbook's output holds a secret: %q", secret)
		}
	}
	// inspect active shows the slow run on worker 1 or 2, inspect
	// scheduled invoice's retry, inspect stats both workers.
	for _, row := range []string{
		`(?m)^\s*worker-[12]@` + regexp.QuoteMeta(host) + `\s+` + slow + `\s+\S+\s+default\s+1\s`,
		`(?m)^\s*` + invoice + `\s+retry\s+\S+\s+default\s+1\s`,
		`(?m)^\s*worker-1@` + regexp.QuoteMeta(host) + `\s+\d+\s+\d+\s+\d+\s+2\s`,
	} {
		if !regexp.MustCompile(row).MatchString(sections["Monitoring"]) {
			t.Errorf("the runbook's Monitoring output has no row matching %s", row)
		}
	}
	if !strings.Contains(failed, "failed") {
		t.Errorf("the report run did not fail:\n%s", failed)
	}
	b, err := os.ReadFile(tokens)
	if err != nil || strings.Contains(string(b), oldToken) || !strings.Contains(string(b), "ops-new admin ") {
		t.Errorf("api-tokens after the rotation: %q, %v", b, err)
	}
	for _, want := range []string{"systemctl reload orcheo-api", "systemctl restart orcheo-worker@1", "systemctl stop orcheo.target",
		"journalctl -u orcheo-worker@1 -f", "systemctl enable --now orcheo-worker@3", "systemctl disable orcheo-worker@3"} {
		if log, _ := os.ReadFile(hostLog); !strings.Contains(string(log), want) {
			t.Errorf("the session never reached %q", want)
		}
	}
	// The restore ran with everything stopped and left the workflows.
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM workflows").Scan(&n); err != nil || n != 9 {
		t.Errorf("workflows after the restore: %d, %v; want 9", n, err)
	}
}

// installWorkerEnv returns the settings the runbook's install block writes
// to each worker-N.env, by file name ("worker-1"): the workers here get
// them, so their names are the ones the runbook shows.
func installWorkerEnv(t *testing.T, md string) map[string][]string {
	t.Helper()
	install, err := docsh.Region(md, "install")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	line := regexp.MustCompile(`^echo (\w+=\S+) >>? /etc/orcheo/(worker-\d+)\.env$`)
	for _, c := range install.Commands() {
		if m := line.FindStringSubmatch(c.Text); m != nil {
			out[m[2]] = append(out[m[2]], m[1])
		}
	}
	for _, w := range []string{"worker-1", "worker-2"} {
		if !slices.ContainsFunc(out[w], func(kv string) bool { return strings.HasPrefix(kv, "ORCHEO_WORKER_NAME=") }) {
			t.Fatalf("the runbook's install block gives %s no ORCHEO_WORKER_NAME: %v", w, out[w])
		}
	}
	return out
}

// runbookSections splits the session's output by the blocks' announcements
// into the output under each heading.
func runbookSections(out string) map[string]string {
	sections := map[string]string{}
	heading := ""
	announce := regexp.MustCompile(`^>>> docs/runbook\.md:\d+ \((.*)\)$`)
	for _, line := range strings.Split(out, "\n") {
		if m := announce.FindStringSubmatch(line); m != nil {
			heading = m[1]
			continue
		}
		sections[heading] += line + "\n"
	}
	return sections
}

// runbookOutcomes is what the session acted on, for checkRunbookOutcomes.
type runbookOutcomes struct {
	c                          *client.Client
	conn                       *pgx.Conn
	dir                        string // the shims' directory
	name                       func(n int) string
	syncRuns, backlog, oldRuns []string
	invoice                    string
}

// checkRunbookDrain checks that worker 3, drained by control shutdown,
// exited 0 and left the registry to workers 1 and 2.
func checkRunbookDrain(t *testing.T, o runbookOutcomes) {
	t.Helper()
	var exit []byte
	waitFor(t, 30*time.Second, "worker 3 to exit", func() bool {
		var err error
		exit, err = os.ReadFile(filepath.Join(o.dir, "worker-3.exit"))
		return err == nil && len(exit) > 0
	})
	log, _ := os.ReadFile(filepath.Join(o.dir, "worker-3.log"))
	t.Logf("output of orcheo-worker@3:\n%s", log)
	if strings.TrimSpace(string(exit)) != "0" || !strings.Contains(string(log), "shutdown requested by an operator") {
		t.Errorf("worker 3 after control shutdown: exit %q, log:\n%s", exit, log)
	}
	ws, err := o.c.Workers(context.Background())
	if err != nil || len(ws) != 2 || ws[0].Name != o.name(1) || ws[1].Name != o.name(2) {
		t.Fatalf("workers after the drain: %s, %v; want %s and %s", jsonText(ws), err, o.name(1), o.name(2))
	}
}

// checkRunbookOutcomes checks, before the restore rolls the database back,
// what the blocks did: workers 1 and 2 still serve: they executed the bulk
// retry's new attempts, which succeeded now that the partner answers; the
// backlog is cancelled and invoice's delayed retry, on another queue,
// untouched; the purged runs are gone with their steps and events.
func checkRunbookOutcomes(t *testing.T, o runbookOutcomes) {
	t.Helper()
	ctx := context.Background()
	ws, err := o.c.Workers(ctx)
	if err != nil || len(ws) != 2 {
		t.Fatalf("workers: %s, %v", jsonText(ws), err)
	}
	for _, id := range o.syncRuns {
		run := waitRun(t, o.c, id)
		if run.Status != orcheo.RunSucceeded || run.Attempt != 2 || (run.WorkerID != ws[0].ID && run.WorkerID != ws[1].ID) {
			t.Errorf("sync run %s after the bulk retry: %s at attempt %d by %q, want succeeded at 2 by worker 1 or 2",
				id, run.Status, run.Attempt, run.WorkerID)
		}
	}
	for _, id := range o.backlog {
		if run, err := o.c.FindRunByID(ctx, id); err != nil || run.Status != orcheo.RunCancelled || run.Attempt != 0 {
			t.Errorf("backlog run %s after the bulk cancel: %+v, %v; want cancelled, never attempted", id, run, err)
		}
	}
	if run, err := o.c.FindRunByID(ctx, o.invoice); err != nil || run.Status != orcheo.RunPending || run.NotBefore == nil {
		t.Errorf("invoice's run, on queue default: %+v, %v; want still pending for its retry", run, err)
	}
	for _, id := range o.oldRuns {
		if _, err := o.c.FindRunByID(ctx, id); orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
			t.Errorf("purged run %s: %v, want not found", id, err)
		}
	}
	for _, table := range []string{"runs", "run_steps", "run_events"} {
		col := "run_id"
		if table == "runs" {
			col = "id"
		}
		var n int
		if err := o.conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+col+" = ANY($1)", o.oldRuns).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s of the purged runs: %d, %v; want 0", table, n, err)
		}
	}
}

// stopShimWorker stops what the shims started as orcheo-worker@n, if
// still running (the session failed before its drain).
func stopShimWorker(t *testing.T, dir string, n int) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("worker-%d.pid", n)))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("orcheo-worker@%d (pid %d) did not stop within 20 s of SIGTERM", n, pid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("worker-%d.log", n)))
		t.Logf("output of orcheo-worker@%d:\n%s", n, log)
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
