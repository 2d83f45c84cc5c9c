package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orcheo/orcheo"
)

// floorResult is the ceiling's database work offered at the fixed rate:
// what three commits per run cost on this PostgreSQL below saturation,
// the floor under the service's CPU per run and created→completed at the
// same rate.
type floorResult struct {
	OfferedPerSec float64   `json:"offered_per_second"`
	Seconds       float64   `json:"seconds"`
	Runs          int       `json:"runs"`
	Latency       quantiles `json:"latency"` // insert start → complete commit
	PostgresCPUMS float64   `json:"postgres_cpu_ms_per_run"`
	PostgresOwnMS float64   `json:"postgres_own_cpu_ms_per_run"` // its own backends only
	// Commit is a bare BEGIN; UPDATE one row; COMMIT (three round trips,
	// one commit), paced at the same rate on one connection.
	Commit quantiles `json:"commit"`
	// Autocommit is one UPDATE of one row in its own implicit
	// transaction: one round trip, one commit.
	Autocommit quantiles `json:"autocommit"`
}

// floor offers ceilingRun at rate runs a second for d, each on its own
// goroutine at its slot (open loop, as the fixed-rate phase offers
// webhooks), then paces bare commits at the same rate. api and worker are
// stopped, so PostgreSQL's CPU is the floor's (and other clients').
func floor(ctx context.Context, dbURL string, wf *orcheo.Workflow, rate int, d time.Duration, port string) (floorResult, error) {
	pool, err := openPool(ctx, dbURL, 32)
	if err != nil {
		return floorResult{}, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return floorResult{}, err
	}
	// A warm-up, so connecting and the statements' first plans are not
	// measured.
	for range 20 {
		if err := ceilingRun(ctx, pool, wf); err != nil {
			return floorResult{}, err
		}
	}
	s := &stack{}
	c0 := s.sample(port)
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	for i := range total {
		if !sleepUntil(ctx, start.Add(time.Duration(i)*interval)) {
			break
		}
		wg.Go(func() {
			t := time.Now()
			err := ceilingRun(ctx, pool, wf)
			el := time.Since(t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp(firstErr, err)
				return
			}
			lat = append(lat, el)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	c1 := s.sample(port)
	if firstErr != nil {
		return floorResult{}, firstErr
	}
	if ctx.Err() != nil {
		return floorResult{}, ctx.Err()
	}
	f := floorResult{OfferedPerSec: float64(rate), Seconds: elapsed.Seconds(), Runs: len(lat),
		Latency: quantilesOf(lat)}
	cpu := perRun(c0, c1, len(lat))
	f.PostgresCPUMS, f.PostgresOwnMS = cpu.Postgres, cpu.PostgresOwn
	n := min(total, 1000)
	if f.Commit, f.Autocommit, err = commitLatency(ctx, pool, rate, n); err != nil {
		return floorResult{}, fmt.Errorf("commit latency: %w", err)
	}
	return f, nil
}

// commitLatency times n bare transactions that update one row, paced at
// rate on one connection: BEGIN, UPDATE, COMMIT as three round trips,
// then the UPDATE alone autocommitted.
func commitLatency(ctx context.Context, pool *pgxpool.Pool, rate, n int) (tx, auto quantiles, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return tx, auto, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_commit (id int PRIMARY KEY, n bigint NOT NULL);
		INSERT INTO bench_commit VALUES (1, 0) ON CONFLICT DO NOTHING`); err != nil {
		return tx, auto, err
	}
	const update = `UPDATE bench_commit SET n = n + 1 WHERE id = 1`
	interval := time.Second / time.Duration(rate)
	timeEach := func(one func() error) (quantiles, error) {
		lat := make([]time.Duration, 0, n)
		start := time.Now()
		for i := range n {
			if !sleepUntil(ctx, start.Add(time.Duration(i)*interval)) {
				return quantiles{}, ctx.Err()
			}
			t := time.Now()
			if err := one(); err != nil {
				return quantiles{}, err
			}
			lat = append(lat, time.Since(t))
		}
		return quantilesOf(lat), nil
	}
	tx, err = timeEach(func() error {
		t, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := t.Exec(ctx, update); err != nil {
			_ = t.Rollback(ctx)
			return err
		}
		return t.Commit(ctx)
	})
	if err != nil {
		return tx, auto, err
	}
	auto, err = timeEach(func() error {
		_, err := conn.Exec(ctx, update)
		return err
	})
	return tx, auto, err
}

// sleepUntil waits until t and reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	if wait := time.Until(t); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
	return ctx.Err() == nil
}
