package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/orcheo/orcheo"
)

// TestPostgresCutWebhooks sends a stream of webhooks to a real `orcheo api`
// while the test terminates every backend of the api's database, several
// times, spread over the stream: the cuts hit connections idle in the
// api's pool and statements in flight. Every webhook is accepted (202, not
// one 503), and every accepted run is stored, once: the store runs the
// lookups and the run's insert (whose id the api made) again on a fresh
// connection.
func TestPostgresCutWebhooks(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, "pg_cut_webhooks")
	ctx := context.Background()
	s.createWorkflow("pg-cut", pgOKDefinition)
	if _, err := s.client.SetWebhookConfig(ctx, "pg-cut", &orcheo.WebhookConfig{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	admin := adminConn(t)
	name := dbNameOf(t, s)

	const (
		total   = 600
		senders = 8
		cuts    = 6
	)
	// A sender that ends a stretch of total/(cuts+1) answers asks for a
	// cut, so that every cut falls inside the stream.
	stretch := int64(total / (cuts + 1))
	cutNow := make(chan struct{}, cuts)
	var (
		answered atomic.Int64
		next     atomic.Int64
		mu       sync.Mutex
		statuses = map[int]int{}
		ids      []string
		wg       sync.WaitGroup
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				code, id, err := postRun(s.url, "pg-cut", fmt.Sprintf(`{"i":%d}`, i))
				mu.Lock()
				statuses[code]++
				if code == http.StatusAccepted {
					ids = append(ids, id)
				} else if statuses[code] == 1 {
					t.Errorf("webhook %d answered %d: %v", i, code, err)
				}
				mu.Unlock()
				if n := answered.Add(1); n%stretch == 0 && n/stretch <= cuts {
					cutNow <- struct{}{}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	made := 0
cutting:
	for made < cuts {
		select {
		case <-cutNow:
		case <-done:
			break cutting
		}
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
			t.Fatal(err)
		}
		made++
	}
	<-done
	if made < 3 {
		t.Fatalf("only %d cuts fell inside the stream", made)
	}
	if statuses[http.StatusAccepted] != total {
		t.Fatalf("answers %v to %d webhooks across %d cuts; want every one 202", statuses, total, made)
	}

	// The test's own pool was cut too: check on a new connection.
	check, err := pgx.Connect(ctx, s.db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	var stored, distinct int
	if err := check.QueryRow(ctx, `SELECT count(*), count(DISTINCT r.input) FROM runs r
		WHERE r.id = ANY($1::uuid[])`, ids).Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	var all int
	if err := check.QueryRow(ctx, `SELECT count(*) FROM runs`).Scan(&all); err != nil {
		t.Fatal(err)
	}
	if stored != total || distinct != total || all != total {
		t.Fatalf("%d of %d accepted runs stored (%d distinct inputs), %d runs in all; want each once", stored, total, distinct, all)
	}
	t.Logf("%d webhooks accepted across %d cuts", total, made)
}

// postRun POSTs body to a workflow's webhook and returns the status and
// the accepted run's id; err is a transport failure or the error body.
func postRun(base, handle, body string) (int, string, error) {
	resp, err := http.Post(base+"/api/workflows/"+handle+"/triggers/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	var run struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, "", errors.New(string(b))
	}
	if err := json.Unmarshal(b, &run); err != nil || run.ID == "" {
		return resp.StatusCode, "", fmt.Errorf("answer %q: %v", b, err)
	}
	return resp.StatusCode, run.ID, nil
}
