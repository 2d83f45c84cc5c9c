package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is the whole bench's result, as written to the JSON file.
type report struct {
	Date    string          `json:"date"`
	Machine machine         `json:"machine"`
	Options options         `json:"options"`
	Results []backendResult `json:"results"`
	Ceiling ceilingResult   `json:"ceiling"`
	Floor   floorResult     `json:"floor"` // the ceiling's work at the fixed rate
	Notes   []string        `json:"notes"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	Postgres string `json:"postgres"`
	Go       string `json:"go"`
}

// backendResult is every phase on one ORCHEO_RESULT_BACKEND.
type backendResult struct {
	ResultBackend    string            `json:"result_backend"`
	Live             livePhase         `json:"live"`
	Drain            drainPhase        `json:"drain"`
	Rate             ratePhase         `json:"rate"`
	APIPeakRSSMiB    float64           `json:"api_peak_rss_mib"`
	WorkerPeakRSSMiB float64           `json:"worker_peak_rss_mib"`
	Profiles         map[string]string `json:"profiles,omitempty"`
}

// livePhase: N webhooks at concurrency C with the worker running.
type livePhase struct {
	Sent            int         `json:"sent"`
	Accepted        int         `json:"accepted"`
	Refused         map[int]int `json:"refused"` // status (0: transport error) → count
	SendSeconds     float64     `json:"send_seconds"`
	AcceptedPerSec  float64     `json:"accepted_per_second"`
	Accept          quantiles   `json:"accept"`
	Completed       int         `json:"completed"`
	Failed          int         `json:"failed"`
	Seconds         float64     `json:"seconds"` // first send to last completed_at
	CompletedPerSec float64     `json:"completed_per_second"`
	CPU             cpuPerRun   `json:"cpu_per_run"`
}

// drainPhase: N webhooks accepted with no worker, then a worker drains them.
type drainPhase struct {
	Accepted        int         `json:"accepted"`
	Refused         map[int]int `json:"refused"`
	AcceptedPerSec  float64     `json:"accepted_per_second_no_worker"`
	Accept          quantiles   `json:"accept_no_worker"`
	Completed       int         `json:"completed"`
	Failed          int         `json:"failed"`
	WorkerStartupMS float64     `json:"worker_startup_ms"` // exec to the first started_at
	Seconds         float64     `json:"seconds"`           // first started_at to last completed_at
	RunsPerSec      float64     `json:"runs_per_second"`
	CPU             cpuPerRun   `json:"cpu_per_run"` // from the worker's exec, its start-up included
}

// ratePhase: a fixed offered rate, below saturation.
type ratePhase struct {
	OfferedPerSec      float64     `json:"offered_per_second"`
	Seconds            float64     `json:"seconds"`
	Sent               int         `json:"sent"`
	SentLate           int         `json:"sent_late"` // left more than 10 ms after their slot
	Accepted           int         `json:"accepted"`
	Refused            map[int]int `json:"refused"`
	Accept             quantiles   `json:"accept"`
	Completed          int         `json:"completed"`
	Failed             int         `json:"failed"`
	CreatedToStarted   quantiles   `json:"created_to_started"`
	CreatedToCompleted quantiles   `json:"created_to_completed"`
	CPU                cpuPerRun   `json:"cpu_per_run"`
}

// ceilingResult: the naive database work of a run through pgx.
type ceilingResult struct {
	Runs          int       `json:"runs"`
	Concurrency   int       `json:"concurrency"`
	Seconds       float64   `json:"seconds"`
	RunsPerSec    float64   `json:"runs_per_second"`
	Latency       quantiles `json:"latency"` // insert + claim + complete
	PostgresCPUMS float64   `json:"postgres_cpu_ms_per_run"`
}

func notes(r *report) []string {
	n := []string{
		"PostgreSQL and Redis CPU are deltas over each phase of every postgres backend and of redis-server on this machine: the servers are shared, so other clients' work counts too; a backend is counted from the phase's start or its own, and one that ends within the phase is missed.",
		"The bench polls the store every 100 ms for its phase's runs; that query is in the PostgreSQL CPU.",
		"Senders, api, worker, PostgreSQL and Redis share the machine's CPUs.",
		"ORCHEO_HTTP_MAX_UNAUTHENTICATED_PER_IP=0: every sender is 127.0.0.1, whose default cap (20 in flight) would refuse a concurrency above it.",
	}
	for _, b := range r.Results {
		for name, m := range map[string]map[int]int{"live": b.Live.Refused, "drain": b.Drain.Refused, "rate": b.Rate.Refused} {
			if len(m) > 0 {
				n = append(n, fmt.Sprintf("%s, %s: webhooks not accepted (status: count): %s", b.ResultBackend, name, statusCounts(m)))
			}
		}
		if f := b.Live.Failed + b.Drain.Failed + b.Rate.Failed; f > 0 {
			n = append(n, fmt.Sprintf("%s: %d runs did not succeed", b.ResultBackend, f))
		}
	}
	return n
}

func statusCounts(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// writeTable prints the report as a table, one column per result backend.
func writeTable(w io.Writer, r *report) {
	o := r.Options
	fmt.Fprintf(w, "orcheo-bench %s  %d CPUs (%s)  PostgreSQL %s  %s\n", r.Date, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Postgres, r.Machine.Go)
	fmt.Fprintf(w, "N=%d webhooks, concurrency %d, worker --concurrency %d, one-node set workflow\n\n", o.N, o.Concurrency, o.WorkerConcurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "metric"
	for _, b := range r.Results {
		head += "\tresult backend " + b.ResultBackend
	}
	fmt.Fprintln(tw, head)
	row := func(name string, f func(b backendResult) string) {
		line := name
		for _, b := range r.Results {
			line += "\t" + f(b)
		}
		fmt.Fprintln(tw, line)
	}
	pq := func(q quantiles) string { return fmt.Sprintf("%.1f / %.1f", q.P50, q.P99) }
	cpu := func(c cpuPerRun) string {
		return fmt.Sprintf("%.2f = %.2f + %.2f + %.2f + %.2f", c.Total, c.API, c.Worker, c.Postgres, c.Redis)
	}
	row("live: accepted/s", func(b backendResult) string { return fmt.Sprintf("%.0f", b.Live.AcceptedPerSec) })
	row("live: accept p50 / p99 ms", func(b backendResult) string { return pq(b.Live.Accept) })
	row("live: completed/s", func(b backendResult) string { return fmt.Sprintf("%.0f", b.Live.CompletedPerSec) })
	row("live: CPU ms/run = api + worker + pg + redis", func(b backendResult) string { return cpu(b.Live.CPU) })
	row("drain: accepted/s, no worker", func(b backendResult) string { return fmt.Sprintf("%.0f", b.Drain.AcceptedPerSec) })
	row("drain: runs/s", func(b backendResult) string { return fmt.Sprintf("%.0f", b.Drain.RunsPerSec) })
	row("drain: CPU ms/run = api + worker + pg + redis", func(b backendResult) string { return cpu(b.Drain.CPU) })
	rate := fmt.Sprintf("rate %d/s", o.Rate)
	row(rate+": accept p50 / p99 ms", func(b backendResult) string { return pq(b.Rate.Accept) })
	row(rate+": created→started p50 / p99 ms", func(b backendResult) string { return pq(b.Rate.CreatedToStarted) })
	row(rate+": created→completed p50 / p99 ms", func(b backendResult) string { return pq(b.Rate.CreatedToCompleted) })
	row(rate+": CPU ms/run = api + worker + pg + redis", func(b backendResult) string { return cpu(b.Rate.CPU) })
	row(rate+": pg ms/run of the bench database's backends", func(b backendResult) string { return fmt.Sprintf("%.2f", b.Rate.CPU.PostgresOwn) })
	row("peak RSS MiB api / worker", func(b backendResult) string {
		return fmt.Sprintf("%.0f / %.0f", b.APIPeakRSSMiB, b.WorkerPeakRSSMiB)
	})
	tw.Flush()
	c := r.Ceiling
	fmt.Fprintf(w, "\nceiling (pgx: insert, claim, complete, each its own commit; %d connections): %.0f runs/s, p50 / p99 %.1f / %.1f ms, PostgreSQL CPU %.2f ms/run\n",
		c.Concurrency, c.RunsPerSec, c.Latency.P50, c.Latency.P99, c.PostgresCPUMS)
	f := r.Floor
	fmt.Fprintf(w, "floor (the ceiling's work offered at %.0f/s, open loop): insert start → complete commit p50 / p99 %.1f / %.1f ms, PostgreSQL CPU %.2f ms/run (its own backends %.2f)\n",
		f.OfferedPerSec, f.Latency.P50, f.Latency.P99, f.PostgresCPUMS, f.PostgresOwnMS)
	fmt.Fprintf(w, "commit latency (one row, paced at %.0f/s): BEGIN; UPDATE; COMMIT p50 / p99 %.2f / %.2f ms; autocommitted UPDATE %.2f / %.2f ms\n",
		f.OfferedPerSec, f.Commit.P50, f.Commit.P99, f.Autocommit.P50, f.Autocommit.P99)
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
}

func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
