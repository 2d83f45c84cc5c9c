package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestSentinelFailoverUnderLoad: api and workers on a Redis primary
// managed by three real sentinels (the api and one worker through
// ORCHEO_REDIS_SENTINELS, the other worker through a redis+sentinel://
// REDIS_URL). Webhooks are sent from 8 senders; a third of the way in,
// the primary is killed with SIGKILL. The sentinels promote the replica,
// every process follows it (commands, the brokers' BLMOVE, the cancel
// listener's pub/sub), and every webhook answered 202 ends in a succeeded
// run: nothing accepted is lost, even what the dead primary held and had
// not replicated (the rescuer publishes it again).
func TestSentinelFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	sent := testenv.StartSentinels(t)
	s := startFaultStackEnv(t, "e2e_sentinel",
		"ORCHEO_REDIS_SENTINELS="+strings.Join(sent.Addrs(), ","),
		"ORCHEO_REDIS_SENTINEL_MASTER="+testenv.SentinelMaster)
	s.createWorkflow("short", shortWork)
	if out, code := cli(t, s.cliEnv(), "triggers", "webhook", "enable", "short"); code != 0 {
		t.Fatalf("triggers webhook enable: exit %d: %s", code, out)
	}
	s.startWorker(10)
	s.startWorker(10, "ORCHEO_REDIS_SENTINELS=", "ORCHEO_REDIS_SENTINEL_MASTER=", "REDIS_URL="+sent.URL())

	const total = 600
	var (
		mu       sync.Mutex
		accepted []string
		refused  = map[int]int{}
		sent202  atomic.Int64
	)
	killAt := int64(total / 3)
	killed := make(chan string, 1)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				code, body := postWebhookNoFail(s.url, "short", fmt.Sprintf(`{"i":%d}`, i))
				mu.Lock()
				if code == http.StatusAccepted {
					var answer struct{ ID string }
					if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.ID == "" {
						t.Errorf("202 without a run id: %q", body)
					}
					accepted = append(accepted, answer.ID)
				} else {
					refused[code]++
				}
				mu.Unlock()
				if sent202.Add(1) == killAt {
					killed <- sent.KillPrimary()
				}
			}
		}()
	}
	go func() {
		for i := range total {
			next <- i
		}
		close(next)
	}()
	old := <-killed
	failedOver := time.Now()
	promoted := sent.WaitFailover(old)
	t.Logf("primary %s killed after %d webhooks; %s promoted in %s", old, killAt, promoted, time.Since(failedOver).Round(time.Millisecond))
	wg.Wait()

	mu.Lock()
	ids := append([]string(nil), accepted...)
	t.Logf("%d webhooks answered 202, refused: %v", len(ids), refused)
	mu.Unlock()
	// Refusals (503 while no primary answered) promise nothing; most must
	// still have been accepted: the api stores the run first and leaves an
	// unpublished one to the requeuer.
	if len(ids) < total/2 {
		t.Fatalf("only %d of %d webhooks accepted", len(ids), total)
	}
	waitFor(t, 2*time.Minute, "every accepted run to succeed", func() bool {
		return s.succeeded(ids) == len(ids)
	})
	retried := s.checkClaims()
	t.Logf("%d runs needed a second attempt", retried)
}

// succeeded counts the runs among ids that succeeded.
func (s *faultStack) succeeded(ids []string) int {
	s.t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(),
		`SELECT count(*) FROM runs WHERE id = ANY($1) AND status = 'succeeded'`, ids).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// postWebhookNoFail POSTs body to handle's webhook and returns the status
// and body; a transport error is status 0 (it may be called off the test's
// goroutine).
func postWebhookNoFail(base, handle, body string) (int, string) {
	resp, err := http.Post(base+"/api/workflows/"+handle+"/triggers/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}
