package test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// faultEnv shortens every reliability timing, so the fault tests see
// leases expire, consumers reaped and lost messages re-published within
// seconds. The defaults (30 s leases) are what production uses.
var faultEnv = []string{
	"ORCHEO_LEASE_DURATION=4s",
	"ORCHEO_HEARTBEAT_INTERVAL=1s",
	"ORCHEO_CONSUMER_TTL=3s",
	"ORCHEO_RESCUE_INTERVAL=1s",
	"ORCHEO_REENQUEUE_AFTER=3s",
	"ORCHEO_REQUEUE_INTERVAL=1s",
	"ORCHEO_WORKER_DRAIN_TIMEOUT=2s",
	"ORCHEO_RESULT_BACKEND=none",
	"ORCHEO_LOG_LEVEL=warn",
}

// faultStack is an api on a database of its own and a redis-server of its
// own, which the test may kill and restart; workers are started by the test.
type faultStack struct {
	t      *testing.T
	env    []string
	url    string
	redis  *testenv.RedisServer
	db     *pgxpool.Pool
	client *client.Client
	prefix string
	api    *process
}

func startFaultStack(t *testing.T, dbName string) *faultStack {
	t.Helper()
	return startFaultStackEnv(t, dbName)
}

// startFaultStackEnv is startFaultStack with extra settings for every
// process of the stack.
func startFaultStackEnv(t *testing.T, dbName string, extra ...string) *faultStack {
	t.Helper()
	dbURL := testenv.PostgresURL(t, dbName)
	rs := testenv.StartRedis(t)
	port := testenv.FreePort(t)
	token := "fault-" + randomSuffix()
	s := &faultStack{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), redis: rs, prefix: "orcheo-fault"}
	s.env = append([]string{
		"ORCHEO_DATABASE_URL=" + dbURL,
		"REDIS_URL=" + rs.URL(),
		"ORCHEO_REDIS_PREFIX=" + s.prefix,
		"ORCHEO_API_TOKEN=" + token,
		fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port),
	}, faultEnv...)
	s.env = append(s.env, extra...)
	if out, code := cli(t, s.env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, s.env, "api")
	waitHealthy(t, api, s.url)
	s.client = client.New(s.url, token)
	s.api = api
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s.db = pool
	return s
}

// startWorker starts a worker and waits until it consumes.
func (s *faultStack) startWorker(concurrency int, extraEnv ...string) *process {
	s.t.Helper()
	env := append(append([]string{}, s.env...), extraEnv...)
	// info level, to see "worker consuming"; the runs log at debug.
	env = append(env, "ORCHEO_LOG_LEVEL=info")
	p := startProcess(s.t, env, "worker", "--concurrency", strconv.Itoa(concurrency))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), "worker consuming") {
		if p.exited() || time.Now().After(deadline) {
			s.t.Fatalf("worker did not start:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// kill9 kills p with SIGKILL and waits for it.
func kill9(p *process) {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// workerID returns the id a worker logged at start.
var workerIDRE = regexp.MustCompile(`worker_id=(\S+)`)

func workerID(t *testing.T, p *process) string {
	t.Helper()
	m := workerIDRE.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no worker_id in the worker's output:\n%s", p.out.String())
	}
	return strings.Trim(m[1], `"`)
}

// createWorkflow stores a workflow and returns its handle.
func (s *faultStack) createWorkflow(handle, definition string) {
	s.t.Helper()
	if _, err := s.client.CreateWorkflow(context.Background(), handle, handle, "", []byte(definition)); err != nil {
		s.t.Fatalf("create workflow %s: %v", handle, err)
	}
}

// startRuns starts n manual runs of handle from 8 goroutines and returns
// their ids.
func (s *faultStack) startRuns(handle string, n int) []string {
	s.t.Helper()
	ids := make([]string, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				run, err := s.client.StartRun(context.Background(), handle, []byte(fmt.Sprintf(`{"i":%d}`, i)), "")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				} else if err == nil {
					ids[i] = run.ID
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		s.t.Fatalf("start runs: %v", firstErr)
	}
	return ids
}

// statusCounts counts all runs by status.
func (s *faultStack) statusCounts() map[orcheo.RunStatus]int {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT status, count(*) FROM runs GROUP BY status`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[orcheo.RunStatus]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			s.t.Fatal(err)
		}
		out[orcheo.RunStatus(st)] = n
	}
	return out
}

// waitTerminal polls until every run is terminal, or fails after timeout.
func (s *faultStack) waitTerminal(total int, timeout time.Duration) map[orcheo.RunStatus]int {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := s.statusCounts()
		if c[orcheo.RunSucceeded]+c[orcheo.RunFailed]+c[orcheo.RunCancelled] == total {
			return c
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("runs not all terminal after %s: %v", timeout, c)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitFor polls cond every 50ms until it holds or fails after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkClaims asserts the audit trail of every run: each attempt number was
// claimed exactly once (no attempt executed twice), the number of claims
// equals the run's attempt, and a succeeded run's steps belong to its last
// attempt. It returns how many runs needed more than one attempt.
func (s *faultStack) checkClaims() (retried int) {
	s.t.Helper()
	ctx := context.Background()
	var dups int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT run_id, split_part(message, ' ', 2) FROM run_events WHERE kind = 'claimed'
			GROUP BY 1, 2 HAVING count(*) > 1) d`).Scan(&dups); err != nil {
		s.t.Fatal(err)
	}
	if dups != 0 {
		s.t.Errorf("%d attempts were claimed twice", dups)
	}
	var mismatched int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM runs r WHERE r.attempt <>
			(SELECT count(*) FROM run_events e WHERE e.run_id = r.id AND e.kind = 'claimed')`).Scan(&mismatched); err != nil {
		s.t.Fatal(err)
	}
	if mismatched != 0 {
		s.t.Errorf("%d runs have an attempt count that differs from their claims", mismatched)
	}
	var badSteps int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM runs r WHERE r.status = 'succeeded' AND NOT EXISTS (
			SELECT 1 FROM run_steps st WHERE st.run_id = r.id AND st.attempt = r.attempt AND st.status = 'succeeded')`).Scan(&badSteps); err != nil {
		s.t.Fatal(err)
	}
	if badSteps != 0 {
		s.t.Errorf("%d succeeded runs have no succeeded step in their last attempt", badSteps)
	}
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM runs WHERE attempt > 1`).Scan(&retried); err != nil {
		s.t.Fatal(err)
	}
	return retried
}

// eventCount counts run_events of kind.
func (s *faultStack) eventCount(kind string) int {
	s.t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM run_events WHERE kind = $1`, kind).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// redisClient is a client of the stack's redis-server.
func (s *faultStack) redisClient() *redis.Client {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// slowFirstAttempt waits 60 s in its first attempt only, so a test can
// kill or stop the worker mid-node; later attempts finish at once.
const slowFirstAttempt = `
retry:
  max_attempts: 5
nodes:
  - id: first
    type: if
    condition: 'run.attempt == 1'
    then: wait
    else: done
  - id: wait
    type: delay
    duration: 60s
    next: done
  - id: done
    type: set
    values:
      attempt: 'run.attempt'
`

// shortWork takes a few hundred milliseconds, so that many runs are in
// flight when a worker is killed; it has attempts to spare for the runs
// a kill interrupts.
const shortWork = `
retry:
  max_attempts: 20
  backoff: 100ms
nodes:
  - id: wait
    type: delay
    duration: 300ms
  - id: done
    type: set
    values:
      i: 'input.i'
`
