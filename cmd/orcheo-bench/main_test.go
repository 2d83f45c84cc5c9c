package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestSmoke runs the whole bench for a few seconds against the local
// PostgreSQL and Redis and checks the shape of its output, never its
// numbers. Under CI=true missing services fail the test (testenv).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts api and worker processes")
	}
	// The bench creates and drops its own database on this server.
	admin := testenv.PostgresURL(t, "bench")
	redisURL := testenv.RedisURL(t)
	bin := filepath.Join(t.TempDir(), "orcheo")
	build := exec.Command("go", "build", "-o", bin, "../orcheo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build orcheo: %v\n%s", err, out)
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	profiles := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--smoke", "--orcheo", bin, "--database-url", admin, "--redis-url", redisURL,
		"--json", jsonPath, "--profile", profiles, "--profile-seconds", "1"}
	if err := run(ctx, args, &stdout, &stderr, func(string) string { return "" }); err != nil {
		t.Fatalf("orcheo-bench --smoke: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"live: accepted/s", "live: accept p50 / p99 ms", "live: completed/s", "drain: runs/s",
		"created→started p50 / p99 ms", "created→completed p50 / p99 ms", "CPU ms/run", "peak RSS MiB api / worker",
		"result backend redis", "ceiling (pgx", "floor (the ceiling's work offered at 50/s", "commit latency", "JSON: " + jsonPath} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, stdout.String())
		}
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("the JSON file does not parse: %v", err)
	}
	for _, key := range []string{"date", "machine", "options", "results", "ceiling", "floor", "notes"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("the JSON has no %q", key)
		}
	}
	var rep report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("the JSON does not match the report: %v", err)
	}
	if len(rep.Results) != 1 || rep.Results[0].ResultBackend != "redis" {
		t.Fatalf("results = %+v, want one, for result backend redis", rep.Results)
	}
	r := rep.Results[0]
	if rep.Options.N != 200 || r.Live.Sent != 200 {
		t.Errorf("--smoke sent %d (options %d), want 200", r.Live.Sent, rep.Options.N)
	}
	for _, name := range []string{"api", "worker"} {
		if p := r.Profiles[name]; p == "" {
			t.Errorf("no %s profile in %v", name, r.Profiles)
		} else if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s profile %s: %v", name, p, err)
		}
	}
	// The floor ran at the smoke's rate for its duration (50/s for 2 s),
	// and timed the bare commits.
	if f := rep.Floor; f.Runs != 100 || f.Latency.P50 <= 0 || f.PostgresCPUMS < 0 || f.Commit.P50 <= 0 || f.Autocommit.P50 <= 0 {
		t.Errorf("floor = %+v, want 100 runs with latencies", f)
	}
	// The bench's database is gone.
	if strings.Contains(stderr.String(), "drop orcheo_bench_") {
		t.Errorf("the bench database was not dropped:\n%s", stderr.String())
	}
}

func TestQuantiles(t *testing.T) {
	ms := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	q := quantilesMS(ms)
	if q.P50 != 5 || q.P99 != 10 || q.Max != 10 {
		t.Fatalf("quantiles = %+v, want p50 5, p99 10, max 10", q)
	}
	if (quantilesMS(nil) != quantiles{}) {
		t.Fatal("quantiles of nothing are not zero")
	}
}

func TestProcStat(t *testing.T) {
	// Burn a little CPU so the tick counter moves.
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	if procCPU(os.Getpid()) <= 0 {
		t.Error("procCPU of this process is 0")
	}
	if peakRSS(os.Getpid()) <= 0 {
		t.Error("peakRSS of this process is 0")
	}
	if procCPU(-1) != 0 || peakRSS(-1) != 0 {
		t.Error("a missing process has CPU or RSS")
	}
}
