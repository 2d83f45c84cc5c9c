// Command orcheo-bench measures orcheo end to end on this machine: it
// starts `orcheo api` and `orcheo worker` (bin/orcheo, built by make build)
// on a fresh database of the local PostgreSQL and a Redis key prefix of its
// own, sends webhooks to a one-node workflow, and reports throughput,
// latency, CPU per run and peak memory, beside the ceiling: the same run's
// database work done directly through pgx. docs/performance.md describes
// the method and the results.
//
//	orcheo-bench [--n 5000] [--concurrency 32] [--rate 200] [--json FILE] [--profile DIR] [--smoke]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "orcheo-bench:", err)
		os.Exit(1)
	}
}

// options are the bench's flags.
type options struct {
	Orcheo            string        `json:"-"`
	DatabaseURL       string        `json:"-"` // the server the bench creates its database on
	RedisURL          string        `json:"-"`
	N                 int           `json:"n"`
	Concurrency       int           `json:"concurrency"`
	Rate              int           `json:"rate_per_second"`
	RateDuration      time.Duration `json:"rate_duration_ns"`
	WorkerConcurrency int           `json:"worker_concurrency"`
	ResultBackends    []string      `json:"result_backends"`
	JSONPath          string        `json:"-"`
	ProfileDir        string        `json:"-"`
	ProfileSeconds    int           `json:"profile_seconds,omitempty"`
	LogLevel          string        `json:"log_level"`
	Smoke             bool          `json:"smoke"`
	Wait              time.Duration `json:"-"`
}

// run parses args and runs the whole bench; getenv is os.Getenv except in
// tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o := options{}
	fs := flag.NewFlagSet("orcheo-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Orcheo, "orcheo", "bin/orcheo", "the orcheo binary to run as api and worker (make build)")
	fs.StringVar(&o.DatabaseURL, "database-url", firstSet(getenv("ORCHEO_TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL server on which the bench creates (and drops) orcheo_bench_<pid> (ORCHEO_TEST_DATABASE_URL)")
	fs.StringVar(&o.RedisURL, "redis-url", firstSet(getenv("ORCHEO_TEST_REDIS_URL"), "redis://127.0.0.1:6379/0"),
		"Redis the bench uses under a key prefix of its own (ORCHEO_TEST_REDIS_URL)")
	fs.IntVar(&o.N, "n", 5000, "webhooks sent in the live and the drain phase, and runs of the ceiling")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent senders (and ceiling connections)")
	fs.IntVar(&o.Rate, "rate", 200, "offered webhooks per second in the fixed-rate phase (below saturation)")
	fs.DurationVar(&o.RateDuration, "rate-duration", 10*time.Second, "length of the fixed-rate phase")
	fs.IntVar(&o.WorkerConcurrency, "worker-concurrency", 20, "orcheo worker --concurrency (the product's default is 20)")
	backends := fs.String("result-backend", "redis", "ORCHEO_RESULT_BACKEND values to measure, comma-separated: redis (as shipped), none, or redis,none")
	fs.StringVar(&o.JSONPath, "json", "bin/bench-results.json", "write the results as JSON to this file")
	fs.StringVar(&o.ProfileDir, "profile", "", "take CPU profiles of api and worker under live load into this directory")
	fs.IntVar(&o.ProfileSeconds, "profile-seconds", 10, "length of each CPU profile")
	fs.StringVar(&o.LogLevel, "log-level", "info", "ORCHEO_LOG_LEVEL of api and worker (info as shipped; their logs go to files)")
	fs.BoolVar(&o.Smoke, "smoke", false, "a run of a few seconds that checks the harness, not the numbers: --n 200 --rate 50 --rate-duration 2s")
	fs.DurationVar(&o.Wait, "wait", 2*time.Minute, "give up on a phase whose runs make no progress for this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["n"] {
			o.N = 200
		}
		if !set["rate"] {
			o.Rate = 50
		}
		if !set["rate-duration"] {
			o.RateDuration = 2 * time.Second
		}
		if !set["wait"] {
			o.Wait = 30 * time.Second
		}
	}
	for _, b := range strings.Split(*backends, ",") {
		switch b = strings.TrimSpace(b); b {
		case "redis", "none":
			o.ResultBackends = append(o.ResultBackends, b)
		default:
			return fmt.Errorf("--result-backend: %q is not redis or none", b)
		}
	}
	if o.N < 1 || o.Concurrency < 1 || o.Rate < 1 || o.RateDuration <= 0 || o.WorkerConcurrency < 1 {
		return fmt.Errorf("--n, --concurrency, --rate, --rate-duration and --worker-concurrency must be positive")
	}
	if o.ProfileDir == "" {
		o.ProfileSeconds = 0
	}
	if _, err := os.Stat(o.Orcheo); err != nil {
		return fmt.Errorf("the orcheo binary: %w (make build makes bin/orcheo; --orcheo names another)", err)
	}
	rep, err := bench(ctx, o, stderr)
	if err != nil {
		return err
	}
	writeTable(stdout, rep)
	if o.JSONPath != "" {
		if err := os.MkdirAll(filepath.Dir(o.JSONPath), 0o755); err != nil {
			return err
		}
		if err := writeJSON(o.JSONPath, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nJSON: %s\n", o.JSONPath)
	}
	return nil
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
