package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/internal/testenv"
)

// blackHole is a TCP listener that accepts connections and never answers:
// a Redis that hangs, so a publish to it waits instead of failing.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln.Addr().String()
}

// TestFaultKilledAfterCommitBeforePublish: the api stores a batch of
// webhook runs and is killed -9 while their publish hangs (its Redis
// accepts connections and never answers), so no message was ever sent and
// no run was marked unenqueued. The runs are in the database; a worker
// started later on a real Redis finds them pending without a message (the
// rescuer's re-publish of lost messages) and every one succeeds, once.
func TestFaultKilledAfterCommitBeforePublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t, "test_submit_fault")
	port := testenv.FreePort(t)
	token := "submit-fault-" + randomSuffix()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append([]string{
		"ORCHEO_DATABASE_URL=" + dbURL,
		"ORCHEO_REDIS_PREFIX=orcheo-submit-fault",
		"ORCHEO_API_TOKEN=" + token,
		fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port),
	}, faultEnv...)
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate: exit %d: %s", code, out)
	}
	api := startProcess(t, append(append([]string{}, env...), "REDIS_URL=redis://"+blackHole(t)+"/0"), "api")
	waitHealthy(t, api, url)
	c := client.New(url, token)
	const handle = "hooked"
	if _, err := c.CreateWorkflow(ctx, handle, handle, "", []byte(`{"nodes":[{"id":"a","type":"set","values":{"x":"1"}}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWebhookConfig(ctx, handle, &orcheo.WebhookConfig{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	countRuns := func(where string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM runs WHERE `+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The webhooks: stored at once, then stuck in the publish.
	const n = 20
	var answered atomic.Int64
	hc := &http.Client{Timeout: time.Minute}
	for i := range n {
		go func() {
			resp, err := hc.Post(url+"/api/workflows/"+handle+"/triggers/webhook", "application/json",
				strings.NewReader(`{"i":`+strconv.Itoa(i)+`}`))
			if err == nil {
				resp.Body.Close()
				answered.Add(1)
			}
		}()
	}
	waitFor(t, 10*time.Second, "the webhooks' runs to be stored", func() bool { return countRuns("true") == n })
	if a := answered.Load(); a != 0 {
		t.Fatalf("%d webhooks were answered before the kill: the publish did not hang", a)
	}
	kill9(api)
	if a := answered.Load(); a != 0 {
		t.Fatalf("%d webhooks were answered", a)
	}
	// Killed between the commit and the publish: pending, stamped as
	// enqueued (no failure was recorded), and no message anywhere.
	if got := countRuns(`status = 'pending' AND enqueued_at IS NOT NULL`); got != n {
		t.Fatalf("%d of %d runs pending and stamped enqueued after the kill", got, n)
	}

	redis := testenv.StartRedis(t)
	workerEnv := append(append([]string{}, env...), "REDIS_URL="+redis.URL(), "ORCHEO_LOG_LEVEL=info")
	worker := startProcess(t, workerEnv, "worker", "--concurrency", "4")
	waitFor(t, 30*time.Second, "the worker to consume", func() bool {
		if worker.exited() {
			t.Fatalf("worker exited:\n%s", worker.out.String())
		}
		return strings.Contains(worker.out.String(), "worker consuming")
	})
	// ORCHEO_REENQUEUE_AFTER=3s and ORCHEO_RESCUE_INTERVAL=1s (faultEnv):
	// the rescuer publishes them again within seconds.
	waitFor(t, 60*time.Second, "every stored run to succeed", func() bool {
		return countRuns(`status = 'succeeded'`) == n
	})
	if once := countRuns(`attempt = 1`); once != n {
		t.Fatalf("%d of %d runs took exactly one attempt", once, n)
	}
	if !strings.Contains(worker.out.String(), "pending run had no message: published again") {
		t.Fatalf("the runs were not re-published by the rescuer:\n%s", worker.out.String())
	}
}
