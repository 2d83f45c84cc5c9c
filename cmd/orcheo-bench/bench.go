package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
)

// workflow is the benchmark's one-node workflow.
const workflow = `
nodes:
  - id: set
    type: set
    values:
      ok: 'true'
`

const workflowHandle = "bench"

// bench runs every phase for each result backend, then the ceiling.
func bench(ctx context.Context, o options, logw io.Writer) (*report, error) {
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Options: o, Machine: thisMachine()}
	dir, err := os.MkdirTemp("", "orcheo-bench-")
	if err != nil {
		return nil, err
	}
	keepLogs := false
	defer func() {
		if !keepLogs {
			os.RemoveAll(dir)
		}
	}()
	dbURL, drop, err := benchDatabase(ctx, o.DatabaseURL, logw)
	if err != nil {
		return nil, fmt.Errorf("create the bench database: %w", err)
	}
	defer drop()
	prefix := fmt.Sprintf("orcheo-bench-%d-%s", os.Getpid(), randomHex(4))
	defer dropRedisKeys(ctx, o.RedisURL, prefix, logw)
	pool, err := openPool(ctx, dbURL, max(o.Concurrency, 4))
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	rep.Machine.Postgres = postgresVersion(ctx, pool)

	var wf *orcheo.Workflow
	for i, backend := range o.ResultBackends {
		s, err := newStack(o, dir, dbURL, prefix+"-"+backend, backend)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if err := s.migrate(ctx); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(logw, "orcheo-bench: result backend %s: starting api and worker (logs in %s)\n", backend, dir)
		res, w, err := benchStack(ctx, s, pool, wf, logw)
		s.close()
		if err != nil {
			keepLogs = true
			return nil, fmt.Errorf("result backend %s: %w (the processes' logs are kept in %s)", backend, err, dir)
		}
		wf = w
		rep.Results = append(rep.Results, *res)
	}
	fmt.Fprintf(logw, "orcheo-bench: ceiling: %d runs of insert, claim, complete through pgx at concurrency %d\n", o.N, o.Concurrency)
	c, err := ceiling(ctx, dbURL, wf, o.N, o.Concurrency, redisPort(o.RedisURL))
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	rep.Ceiling = c
	fmt.Fprintf(logw, "orcheo-bench: floor: insert, claim, complete through pgx offered at %d/s for %s, then bare commits\n", o.Rate, o.RateDuration)
	if rep.Floor, err = floor(ctx, dbURL, wf, o.Rate, o.RateDuration, redisPort(o.RedisURL)); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	rep.Notes = notes(rep)
	return rep, nil
}

// benchStack runs the phases on one stack. wf is the workflow made by an
// earlier stack on the same database, or nil.
func benchStack(ctx context.Context, s *stack, pool *pgxpool.Pool, wf *orcheo.Workflow, logw io.Writer) (*backendResult, *orcheo.Workflow, error) {
	o := s.o
	if err := s.startAPI(ctx); err != nil {
		return nil, nil, err
	}
	if err := s.startWorker(); err != nil {
		return nil, nil, err
	}
	if wf == nil {
		c := client.New(s.apiURL, s.token)
		var err error
		if wf, err = c.CreateWorkflow(ctx, workflowHandle, "Bench", "", []byte(workflow)); err != nil {
			return nil, nil, fmt.Errorf("create the workflow: %w", err)
		}
		// No verify: the benchmark's webhook is open to anyone on
		// 127.0.0.1, which the API logs as a warning.
		if _, err := c.SetWebhookConfig(ctx, workflowHandle, &orcheo.WebhookConfig{Enabled: true}); err != nil {
			return nil, nil, fmt.Errorf("enable the webhook: %w", err)
		}
	}
	snd := newSender(s.apiURL, workflowHandle)
	port := redisPort(o.RedisURL)
	res := &backendResult{}
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "ORCHEO_RESULT_BACKEND="); ok {
			res.ResultBackend = v
		}
	}
	p := &phases{s: s, pool: pool, wfID: wf.ID, port: port, snd: snd}

	// A short warm-up, so connections and first-use costs are not measured.
	fmt.Fprintf(logw, "orcheo-bench: warm-up\n")
	if _, err := p.live(ctx, min(o.N, 200)); err != nil {
		return nil, nil, fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(logw, "orcheo-bench: live: %d webhooks at concurrency %d\n", o.N, o.Concurrency)
	live, err := p.live(ctx, o.N)
	if err != nil {
		return nil, nil, fmt.Errorf("live: %w", err)
	}
	res.Live = live
	fmt.Fprintf(logw, "orcheo-bench: drain: %d webhooks with no worker, then the worker\n", o.N)
	if res.Drain, err = p.drain(ctx, o.N); err != nil {
		return nil, nil, fmt.Errorf("drain: %w", err)
	}
	fmt.Fprintf(logw, "orcheo-bench: fixed rate: %d/s for %s\n", o.Rate, o.RateDuration)
	if res.Rate, err = p.rate(ctx, o.Rate, o.RateDuration); err != nil {
		return nil, nil, fmt.Errorf("fixed rate: %w", err)
	}
	if o.ProfileDir != "" {
		fmt.Fprintf(logw, "orcheo-bench: profiles: %d s of api and worker under live load\n", o.ProfileSeconds)
		if res.Profiles, err = p.profile(ctx, res.ResultBackend); err != nil {
			return nil, nil, fmt.Errorf("profiles: %w", err)
		}
	}
	s.noteRSS()
	res.APIPeakRSSMiB = float64(s.rss["api"]) / (1 << 20)
	res.WorkerPeakRSSMiB = float64(s.rss["worker"]) / (1 << 20)
	return res, wf, nil
}

// phases measures one stack; each phase's runs are those of the workflow
// created after the phase began (the one before has finished by then).
type phases struct {
	s    *stack
	pool *pgxpool.Pool
	wfID string
	port string
	snd  *sender
}

// progress is what the store says of a phase's runs.
type progress struct {
	total, terminal, succeeded  int
	firstStarted, lastCompleted *time.Time
}

func (p *phases) poll(ctx context.Context, since time.Time) (progress, error) {
	var g progress
	err := p.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE completed_at IS NOT NULL),
			count(*) FILTER (WHERE status = 'succeeded'), min(started_at), max(completed_at)
		FROM runs WHERE workflow_id = $1 AND created_at >= $2`, p.wfID, since).
		Scan(&g.total, &g.terminal, &g.succeeded, &g.firstStarted, &g.lastCompleted)
	return g, err
}

// wait polls the store every 100 ms until want runs since are terminal.
// It fails when none ends for options.Wait, or when the worker exits.
func (p *phases) wait(ctx context.Context, since time.Time, want int) (progress, error) {
	last, lastAt := -1, time.Now()
	for {
		g, err := p.poll(ctx, since)
		if err != nil {
			return g, err
		}
		if g.terminal >= want {
			return g, nil
		}
		if g.terminal != last {
			last, lastAt = g.terminal, time.Now()
		} else if time.Since(lastAt) > p.s.o.Wait {
			return g, fmt.Errorf("%d of %d runs ended; none for %s", g.terminal, want, p.s.o.Wait)
		}
		if w := p.s.worker; w != nil && w.exited() {
			return g, fmt.Errorf("orcheo worker exited:\n%s", w.tail())
		}
		if p.s.api.exited() {
			return g, fmt.Errorf("orcheo api exited:\n%s", p.s.api.tail())
		}
		select {
		case <-ctx.Done():
			return g, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// phaseStart is now, at the store's precision.
func phaseStart() time.Time { return time.Now().Truncate(time.Microsecond) }

func (p *phases) live(ctx context.Context, n int) (livePhase, error) {
	t0 := phaseStart()
	c0 := p.s.sample(p.port)
	out := closedLoop(ctx, p.snd, int64(n), p.s.o.Concurrency)
	if ctx.Err() != nil {
		return livePhase{}, ctx.Err()
	}
	g, err := p.wait(ctx, t0, len(out.accepted))
	if err != nil {
		return livePhase{}, err
	}
	c1 := p.s.sample(p.port)
	p.s.noteRSS()
	l := livePhase{Sent: n, Accepted: len(out.accepted), Refused: out.refused, SendSeconds: out.elapsed.Seconds(),
		AcceptedPerSec: float64(len(out.accepted)) / out.elapsed.Seconds(), Accept: quantilesOf(out.accepted),
		Completed: g.terminal, Failed: g.terminal - g.succeeded, CPU: perRun(c0, c1, g.terminal)}
	if g.lastCompleted != nil {
		l.Seconds = g.lastCompleted.Sub(t0).Seconds()
		l.CompletedPerSec = float64(g.terminal) / l.Seconds
	}
	return l, nil
}

func (p *phases) drain(ctx context.Context, n int) (drainPhase, error) {
	p.s.stopWorker()
	t0 := phaseStart()
	out := closedLoop(ctx, p.snd, int64(n), p.s.o.Concurrency)
	if ctx.Err() != nil {
		return drainPhase{}, ctx.Err()
	}
	d := drainPhase{Accepted: len(out.accepted), Refused: out.refused,
		AcceptedPerSec: float64(len(out.accepted)) / out.elapsed.Seconds(), Accept: quantilesOf(out.accepted)}
	// The runs are stored and queued; nothing consumes them yet.
	c0 := p.s.sample(p.port)
	startedAt := time.Now()
	if err := p.s.startWorker(); err != nil {
		return d, err
	}
	g, err := p.wait(ctx, t0, d.Accepted)
	if err != nil {
		return d, err
	}
	c1 := p.s.sample(p.port)
	p.s.noteRSS()
	d.Completed, d.Failed, d.CPU = g.terminal, g.terminal-g.succeeded, perRun(c0, c1, g.terminal)
	if g.firstStarted != nil && g.lastCompleted != nil {
		d.Seconds = g.lastCompleted.Sub(*g.firstStarted).Seconds()
		d.RunsPerSec = float64(g.terminal) / d.Seconds
		d.WorkerStartupMS = float64(g.firstStarted.Sub(startedAt)) / float64(time.Millisecond)
	}
	return d, nil
}

func (p *phases) rate(ctx context.Context, rate int, dur time.Duration) (ratePhase, error) {
	t0 := phaseStart()
	c0 := p.s.sample(p.port)
	// With --profile, api and worker are also profiled at this rate: below
	// saturation, what a run costs is not what it costs under load.
	profiled := make(chan error, 1)
	go func() {
		profiled <- p.fetchProfiles(ctx, "rate", min(time.Duration(p.s.o.ProfileSeconds)*time.Second, dur))
	}()
	out := openLoop(ctx, p.snd, rate, dur)
	if err := <-profiled; err != nil {
		return ratePhase{}, fmt.Errorf("profiles: %w", err)
	}
	if ctx.Err() != nil {
		return ratePhase{}, ctx.Err()
	}
	g, err := p.wait(ctx, t0, len(out.accepted))
	if err != nil {
		return ratePhase{}, err
	}
	c1 := p.s.sample(p.port)
	p.s.noteRSS()
	r := ratePhase{OfferedPerSec: float64(rate), Seconds: dur.Seconds(), Sent: len(out.accepted) + countAll(out.refused),
		Accepted: len(out.accepted), Refused: out.refused, SentLate: out.behind, Accept: quantilesOf(out.accepted),
		Completed: g.terminal, Failed: g.terminal - g.succeeded, CPU: perRun(c0, c1, g.terminal)}
	rows, err := p.pool.Query(ctx, `SELECT EXTRACT(EPOCH FROM started_at - created_at)::float8 * 1000,
			EXTRACT(EPOCH FROM completed_at - created_at)::float8 * 1000
		FROM runs WHERE workflow_id = $1 AND created_at >= $2 AND completed_at IS NOT NULL`, p.wfID, t0)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	var started, completed []float64
	for rows.Next() {
		var a, b float64
		if err := rows.Scan(&a, &b); err != nil {
			return r, err
		}
		started, completed = append(started, a), append(completed, b)
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	r.CreatedToStarted, r.CreatedToCompleted = quantilesMS(started), quantilesMS(completed)
	return r, nil
}

// profile takes CPU profiles of api and worker at once while senders keep
// them busy, and writes them to the profile directory.
func (p *phases) profile(ctx context.Context, backend string) (map[string]string, error) {
	o := p.s.o
	if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
		return nil, err
	}
	t0 := phaseStart()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan sent, 1)
	go func() { loaded <- closedLoop(loadCtx, p.snd, -1, o.Concurrency) }()
	files, perr := p.profileEach(ctx, backend, time.Duration(o.ProfileSeconds)*time.Second)
	stopLoad()
	out := <-loaded
	if _, err := p.wait(ctx, t0, len(out.accepted)); err != nil {
		return nil, err
	}
	return files, perr
}

// fetchProfiles takes CPU profiles of api and worker for d, named after
// phase, when --profile asks for them.
func (p *phases) fetchProfiles(ctx context.Context, phase string, d time.Duration) error {
	if p.s.o.ProfileDir == "" {
		return nil
	}
	if err := os.MkdirAll(p.s.o.ProfileDir, 0o755); err != nil {
		return err
	}
	_, err := p.profileEach(ctx, phase, d)
	return err
}

// profileEach takes a CPU profile of d of every process with a pprof
// address at once, into <dir>/<process>-<suffix>.pprof.
func (p *phases) profileEach(ctx context.Context, suffix string, d time.Duration) (map[string]string, error) {
	files := map[string]string{}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for name, addr := range p.s.pprof {
		wg.Go(func() {
			path := filepath.Join(p.s.o.ProfileDir, fmt.Sprintf("%s-%s.pprof", name, suffix))
			err := fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(int(d.Seconds()), 1)), path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return
			}
			files[name] = path
		})
	}
	wg.Wait()
	return files, errors.Join(errs...)
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ceiling does the naive database work of a run — insert it, claim it,
// complete it, each statement its own commit — n times from c
// connections, with api and worker stopped. No product code runs: it
// bounds what any service on this PostgreSQL could reach.
func ceiling(ctx context.Context, dbURL string, wf *orcheo.Workflow, n, c int, port string) (ceilingResult, error) {
	pool, err := openPool(ctx, dbURL, c)
	if err != nil {
		return ceilingResult{}, err
	}
	defer pool.Close()
	// Open every connection first, so connecting is not measured.
	conns := make([]*pgxpool.Conn, 0, c)
	for range c {
		cn, err := pool.Acquire(ctx)
		if err != nil {
			return ceilingResult{}, err
		}
		conns = append(conns, cn)
	}
	for _, cn := range conns {
		cn.Release()
	}
	s := &stack{}
	c0 := s.sample(port)
	start := time.Now()
	var next int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var mine []time.Duration
			for {
				mu.Lock()
				next++
				i := next
				mu.Unlock()
				if i > int64(n) || ctx.Err() != nil {
					break
				}
				t := time.Now()
				if err := ceilingRun(ctx, pool, wf); err != nil {
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	c1 := s.sample(port)
	if firstErr != nil {
		return ceilingResult{}, firstErr
	}
	cpu := perRun(c0, c1, len(lat))
	return ceilingResult{Runs: len(lat), Concurrency: c, Seconds: elapsed.Seconds(),
		RunsPerSec: float64(len(lat)) / elapsed.Seconds(), Latency: quantilesOf(lat), PostgresCPUMS: cpu.Postgres}, nil
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// ceilingRun is one run's naive database work: three autocommitted
// statements.
func ceilingRun(ctx context.Context, pool *pgxpool.Pool, wf *orcheo.Workflow) error {
	id := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by, input, created_at, enqueued_at)
		VALUES ($1, $2, $3, 'default', 'pending', 'manual', '{"bench":true}', now(), now())`, id, wf.ID, wf.LatestVersionID); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE runs SET status = 'running', attempt = attempt + 1, worker_id = 'ceiling',
			lease_until = now() + interval '30 seconds', started_at = now()
		WHERE id = $1 AND status = 'pending'`, id); err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE runs SET status = 'succeeded', output = '{"ok":true}', lease_until = NULL, completed_at = now()
		WHERE id = $1 AND status = 'running'`, id); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	return nil
}

func countAll(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func postgresVersion(ctx context.Context, pool *pgxpool.Pool) string {
	var v string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return ""
	}
	return v
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
