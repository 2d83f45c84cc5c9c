package test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/orcheo/orcheo"
)

// pgOutageDefinitions: a workflow that succeeds and one that fails
// permanently, both allowed retries so that an attempt whose claim or
// completion was cut off is retried rather than lost.
const (
	pgOKDefinition = `{"retry":{"max_attempts":5,"backoff":"100ms"},
		"nodes":[{"id":"a","type":"set","values":{"n":"input.i"}},{"id":"b","type":"set","values":{"m":"state.n + 1"}}]}`
	pgFailDefinition = `{"retry":{"max_attempts":5,"backoff":"100ms"},
		"nodes":[{"id":"a","type":"set","values":{"n":"input.i"}},{"id":"stop","type":"fail","message":"'no'"}]}`
)

// TestFaultPostgresConnectionsCut terminates every connection to the
// stack's database, repeatedly, while runs execute (fault test 4): the API
// and the worker reconnect, and every run ends as its workflow says —
// exact counts per status, each attempt claimed once.
func TestFaultPostgresConnectionsCut(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "fault_pg_cut")
	s.createWorkflow("pg-ok", pgOKDefinition)
	s.createWorkflow("pg-fail", pgFailDefinition)
	okIDs := s.startRuns("pg-ok", 150)
	failIDs := s.startRuns("pg-fail", 50)
	if len(okIDs)+len(failIDs) != 200 {
		t.Fatal("runs not started")
	}
	s.startWorker(8)

	admin := adminConn(t)
	ctx := context.Background()
	name := dbNameOf(t, s)
	cuts := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := s.statusCounts()
		if c[orcheo.RunSucceeded]+c[orcheo.RunFailed]+c[orcheo.RunCancelled] == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs not all terminal after %d cuts: %v", cuts, c)
		}
		// Cut while runs are in flight: every backend of the database,
		// the API's, the worker's and the test's own pool.
		if cuts < 10 {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
				t.Fatal(err)
			}
			cuts++
		}
		time.Sleep(300 * time.Millisecond)
	}
	c := s.statusCounts()
	if c[orcheo.RunSucceeded] != 150 || c[orcheo.RunFailed] != 50 || len(c) != 2 {
		t.Fatalf("status counts %v, want 150 succeeded and 50 failed", c)
	}
	var wrongFailures int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM runs r JOIN workflows w ON w.id = r.workflow_id
		WHERE (w.handle = 'pg-ok') <> (r.status = 'succeeded')`).Scan(&wrongFailures); err != nil {
		t.Fatal(err)
	}
	if wrongFailures != 0 {
		t.Fatalf("%d runs ended other than their workflow says", wrongFailures)
	}
	retried := s.checkClaims()
	t.Logf("%d connection cuts; %d runs needed more than one attempt", cuts, retried)
}

// TestFaultPostgresUnavailable refuses connections to the stack's database
// for a few seconds: the API answers 503 "unavailable" (and the CLI says
// why), neither the API nor the worker spins a CPU meanwhile, and both
// recover by themselves when the database accepts connections again.
func TestFaultPostgresUnavailable(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "fault_pg_down")
	s.createWorkflow("pg-down", pgOKDefinition)
	s.startWorker(4)
	admin := adminConn(t)
	ctx := context.Background()
	name := dbNameOf(t, s)

	restore := func() {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
			t.Errorf("restore connections: %v", err)
		}
	}
	t.Cleanup(restore)
	// name comes from testenv, which allows only [a-z0-9_].
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	cpuBefore := s.cpuTime(t)
	outageStart := time.Now()

	// Every call that needs the database answers 503 with the code and a
	// message that says what is wrong.
	for range 3 {
		resp := s.get(t, "/api/runs")
		if resp.status != http.StatusServiceUnavailable || !strings.Contains(resp.body, `"code":"unavailable"`) ||
			!strings.Contains(resp.body, "database unavailable") {
			t.Fatalf("GET /api/runs during the outage: %d %s", resp.status, resp.body)
		}
	}
	_, err := s.client.StartRun(ctx, "pg-down", nil, "")
	if orcheo.ErrorCode(err) != orcheo.EUNAVAILABLE {
		t.Fatalf("start run during the outage: %v", err)
	}
	out, code := cli(t, s.cliEnv(), "runs", "list")
	if code == 0 || !strings.Contains(out, "database unavailable") {
		t.Fatalf("orcheo runs list during the outage: exit %d: %s", code, out)
	}
	time.Sleep(3*time.Second - time.Since(outageStart)) // let a spinning loop show up
	used := s.cpuTime(t) - cpuBefore
	if elapsed := time.Since(outageStart); used > elapsed/2 {
		t.Fatalf("api and worker used %s of CPU in %s of outage: a retry loop spins", used, elapsed)
	}

	restore()
	waitFor(t, 30*time.Second, "the API to answer again", func() bool { return s.get(t, "/api/runs").status == http.StatusOK })
	run, err := s.client.StartRun(ctx, "pg-down", []byte(`{"i":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the run after the outage", func() bool {
		r, err := s.client.FindRunByID(ctx, run.ID)
		return err == nil && r.Status == orcheo.RunSucceeded
	})
}

// adminConn connects to the server's maintenance database (not the
// stack's), which stays reachable while the stack's is blocked.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), os.Getenv("ORCHEO_TEST_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// dbNameOf returns the name of the stack's database.
func dbNameOf(t *testing.T, s *faultStack) string {
	t.Helper()
	return s.db.Config().ConnConfig.Database
}

type httpAnswer struct {
	status int
	body   string
}

// get sends an authenticated GET to the stack's API.
func (s *faultStack) get(t *testing.T, path string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range s.env {
		if tok, ok := strings.CutPrefix(kv, "ORCHEO_API_TOKEN="); ok {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return httpAnswer{status: resp.StatusCode, body: b.String()}
}

// cliEnv is the environment of a CLI call against the stack.
func (s *faultStack) cliEnv() []string {
	env := []string{"ORCHEO_URL=" + s.url}
	for _, kv := range s.env {
		if tok, ok := strings.CutPrefix(kv, "ORCHEO_API_TOKEN="); ok {
			env = append(env, "ORCHEO_TOKEN="+tok)
		}
	}
	return env
}

// cpuTime is the user+system CPU time used so far by this stack's
// processes (its api and workers: the children of this test process whose
// environment has the stack's ORCHEO_HTTP_ADDR), from Linux's /proc.
func (s *faultStack) cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var mark string
	for _, kv := range s.env {
		if strings.HasPrefix(kv, "ORCHEO_HTTP_ADDR=") {
			mark = kv
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var total time.Duration
	found := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the parenthesised command name: ppid is the
		// 2nd, utime and stime the 12th and 13th, in clock ticks (100 Hz).
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		if ppid, _ := strconv.Atoi(f[1]); ppid != os.Getpid() || pid == os.Getpid() {
			continue
		}
		environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains("\x00"+string(environ)+"\x00", "\x00"+mark+"\x00") {
			continue
		}
		utime, _ := strconv.Atoi(f[11])
		stime, _ := strconv.Atoi(f[12])
		total += time.Duration(utime+stime) * 10 * time.Millisecond
		found++
	}
	if found < 2 {
		t.Fatalf("found %d processes of the stack, want the api and a worker", found)
	}
	return total
}

// TestRunsCancelAndRetryCLI drives `orcheo runs cancel --wait` on a running
// run and `orcheo runs retry` on the cancelled run, through the real api
// and worker processes.
func TestRunsCancelAndRetryCLI(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "cli_cancel_retry")
	s.createWorkflow("slow-once", slowFirstAttempt)
	s.startWorker(2)
	ctx := context.Background()
	run, err := s.client.StartRun(ctx, "slow-once", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the run to be running", func() bool {
		r, err := s.client.FindRunByID(ctx, run.ID)
		return err == nil && r.Status == orcheo.RunRunning
	})
	out, code := cli(t, s.cliEnv(), "runs", "cancel", "--wait", run.ID)
	if code != 0 || !strings.Contains(out, "run "+run.ID+" cancel requested") || !strings.Contains(out, "run "+run.ID+" cancelled") {
		t.Fatalf("orcheo runs cancel --wait: exit %d: %s", code, out)
	}
	got, err := s.client.FindRunByID(ctx, run.ID)
	if err != nil || got.Status != orcheo.RunCancelled || got.Attempt != 1 || got.Error != "cancelled by operator" {
		t.Fatalf("cancelled run %+v %v", got, err)
	}
	out, code = cli(t, s.cliEnv(), "runs", "cancel", run.ID)
	if code == 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("second cancel: exit %d: %s", code, out)
	}

	out, code = cli(t, s.cliEnv(), "runs", "retry", run.ID)
	if code != 0 || !strings.Contains(out, "run "+run.ID+" pending (attempt 2 of 2 next)") {
		t.Fatalf("orcheo runs retry: exit %d: %s", code, out)
	}
	// The second attempt skips the delay and succeeds; the first attempt's
	// steps are kept.
	waitFor(t, 30*time.Second, "the retried run to succeed", func() bool {
		r, err := s.client.FindRunByID(ctx, run.ID)
		return err == nil && r.Status == orcheo.RunSucceeded
	})
	got, _ = s.client.FindRunByID(ctx, run.ID)
	attempts := map[int]bool{}
	for _, st := range got.Steps {
		attempts[st.Attempt] = true
	}
	if got.Attempt != 2 || !attempts[1] || !attempts[2] {
		t.Fatalf("retried run attempt %d with steps of attempts %v", got.Attempt, attempts)
	}
	out, code = cli(t, s.cliEnv(), "runs", "retry", run.ID)
	if code == 0 || !strings.Contains(out, "only a failed or cancelled run can be retried") {
		t.Fatalf("retry of a succeeded run: exit %d: %s", code, out)
	}
}
