package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// proc is an orcheo process the bench started; its output goes to a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 30 s before SIGKILL.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process's log, for errors.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stack is one api and one worker on the bench's database and prefix.
type stack struct {
	o       options
	dir     string // logs
	env     []string
	apiURL  string
	token   string
	pprof   map[string]string // process name → pprof address
	api     *proc
	worker  *proc
	started int // processes started, for log names
	rss     map[string]int64
}

// newStack prepares the environment of api and worker for one result
// backend on database dbURL; nothing runs yet.
func newStack(o options, dir, dbURL, prefix, backend string) (*stack, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token := "bench-" + randomHex(8)
	s := &stack{o: o, dir: dir, token: token, apiURL: "http://127.0.0.1:" + strconv.Itoa(port),
		pprof: map[string]string{}, rss: map[string]int64{}}
	s.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ORCHEO_DATABASE_URL=" + dbURL,
		"REDIS_URL=" + o.RedisURL,
		"ORCHEO_REDIS_PREFIX=" + prefix,
		"ORCHEO_API_TOKEN=" + token,
		"ORCHEO_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"ORCHEO_RESULT_BACKEND=" + backend,
		"ORCHEO_LOG_LEVEL=" + o.LogLevel,
		"ORCHEO_LOG_FORMAT=json",
		// Every sender is 127.0.0.1, so the per-address cap on
		// unauthenticated requests in flight (20) would refuse a
		// concurrency above it; the overall cap (100) stays.
		"ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP=0",
	}
	if o.ProfileDir != "" {
		for _, name := range []string{"api", "worker"} {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			s.pprof[name] = "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	return s, nil
}

// start runs orcheo with args; name is "api" or "worker".
func (s *stack) start(name string, args ...string) (*proc, error) {
	s.started++
	p := &proc{name: name, log: filepath.Join(s.dir, fmt.Sprintf("%02d-%s.log", s.started, name)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(s.o.Orcheo, args...)
	p.cmd.Env = append([]string{}, s.env...)
	if addr := s.pprof[name]; addr != "" {
		p.cmd.Env = append(p.cmd.Env, "ORCHEO_PPROF_ADDR="+addr)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start orcheo %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// migrate runs orcheo migrate to completion.
func (s *stack) migrate(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, s.o.Orcheo, "migrate")
	cmd.Env = s.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("orcheo migrate: %v: %s", err, out)
	}
	return nil
}

// startAPI starts the api and waits until /healthz answers.
func (s *stack) startAPI(ctx context.Context) error {
	p, err := s.start("api", "api")
	if err != nil {
		return err
	}
	s.api = p
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("orcheo api exited:\n%s", p.tail())
		}
		resp, err := http.Get(s.apiURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("orcheo api did not become healthy:\n%s", p.tail())
}

// startWorker starts a worker; it is ready when it claims runs, which the
// phases measure from the store.
func (s *stack) startWorker() error {
	p, err := s.start("worker", "worker", "--concurrency", strconv.Itoa(s.o.WorkerConcurrency), "--queues", "default")
	if err != nil {
		return err
	}
	s.worker = p
	return nil
}

// stopWorker stops the worker, keeping its peak RSS.
func (s *stack) stopWorker() {
	if s.worker == nil {
		return
	}
	s.noteRSS()
	s.worker.stop()
	s.worker = nil
}

// noteRSS keeps the highest VmHWM seen of api and worker.
func (s *stack) noteRSS() {
	for name, p := range map[string]*proc{"api": s.api, "worker": s.worker} {
		if p != nil && !p.exited() {
			s.rss[name] = max(s.rss[name], peakRSS(p.pid()))
		}
	}
}

// close stops everything.
func (s *stack) close() {
	s.noteRSS()
	s.worker.stop()
	s.api.stop()
}

// cpuSample is the CPU seconds of each part at one moment.
type cpuSample struct {
	at                 time.Time
	api, worker, redis float64
	postgres           map[int]float64 // by pid
	postgresOwn        map[int]float64 // the bench database's backends, by pid
}

func (s *stack) sample(redisPort string) cpuSample {
	c := cpuSample{at: time.Now(), postgres: postgresCPU(), postgresOwn: ownPostgresCPU(benchDatabaseName()),
		redis: sumCPU(redisPids(redisPort))}
	if s.api != nil && !s.api.exited() {
		c.api = procCPU(s.api.pid())
	}
	if s.worker != nil && !s.worker.exited() {
		c.worker = procCPU(s.worker.pid())
	}
	return c
}

// cpuPerRun is CPU milliseconds per run of each part over a phase.
type cpuPerRun struct {
	API      float64 `json:"api_ms"`
	Worker   float64 `json:"worker_ms"`
	Postgres float64 `json:"postgres_ms"`
	Redis    float64 `json:"redis_ms"`
	Total    float64 `json:"total_ms"`
	// PostgresOwn is the part of Postgres spent by the backends of the
	// bench's database: the statements of this bench alone, less noisy on
	// a shared server, without the WAL writer's share of their commits.
	PostgresOwn float64 `json:"postgres_own_ms"`
}

// perRun divides the CPU spent between a and b by n runs. A process
// started between the samples counts from zero (its start-up included).
func perRun(a, b cpuSample, n int) cpuPerRun {
	if n == 0 {
		return cpuPerRun{}
	}
	ms := func(x, y float64) float64 { return max(0, y-x) * 1000 / float64(n) }
	c := cpuPerRun{API: ms(a.api, b.api), Worker: ms(a.worker, b.worker),
		Postgres: pgDelta(a.postgres, b.postgres) * 1000 / float64(n), Redis: ms(a.redis, b.redis),
		PostgresOwn: pgDelta(a.postgresOwn, b.postgresOwn) * 1000 / float64(n)}
	c.Total = c.API + c.Worker + c.Postgres + c.Redis
	return c
}

// benchDatabaseName is the bench's database: orcheo_bench_<pid>.
func benchDatabaseName() string { return fmt.Sprintf("orcheo_bench_%d", os.Getpid()) }

// benchDatabase creates orcheo_bench_<pid> on the server of adminURL and
// returns its URL and the function that drops it.
func benchDatabase(ctx context.Context, adminURL string, logw io.Writer) (string, func(), error) {
	name := benchDatabaseName()
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", redactURL(adminURL), err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	// The name is built from the pid alone: no quoting needed.
	if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
		return "", nil, err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			fmt.Fprintf(logw, "orcheo-bench: drop %s: %v\n", name, err)
		}
	}
	return u.String(), drop, nil
}

// openPool connects to the bench database with up to conns connections.
func openPool(ctx context.Context, dbURL string, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(conns)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// dropRedisKeys deletes the keys under prefix, and only those.
func dropRedisKeys(ctx context.Context, redisURL, prefix string, w io.Writer) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		fmt.Fprintf(w, "orcheo-bench: redis url: %v\n", err)
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Unlink(ctx, keys...)
	}
	if err := iter.Err(); err != nil {
		fmt.Fprintf(w, "orcheo-bench: delete redis keys %s*: %v\n", prefix, err)
	}
}

func redisPort(redisURL string) string {
	u, err := url.Parse(redisURL)
	if err != nil || u.Port() == "" {
		return "6379"
	}
	return u.Port()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
