package tasks

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
)

// monitor records every command a redis-server executes (MONITOR), until
// stop. Commands run inside scripts are listed too, marked [… lua].
type monitor struct {
	conn net.Conn
	mu   sync.Mutex
	seen []string
	done chan struct{}
}

func startMonitor(tb testing.TB, addr string) *monitor {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		tb.Fatalf("monitor: %q, %v", line, err)
	}
	m := &monitor{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.seen = append(m.seen, strings.TrimSpace(line))
			m.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { _ = conn.Close(); <-m.done })
	return m
}

// lines returns what was seen so far.
func (m *monitor) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

// monitorLine is `+<time> [<db> <client>] "CMD" "arg1" …`.
var monitorLine = regexp.MustCompile(`^\+[0-9.]+ \[[^\]]*\] "([^"]+)"(?: "([^"]*)")?`)

// expiry is the SET option of a key that expires.
var expiry = regexp.MustCompile(`(?i)" "(ex|px)" "[0-9]+"$`)

// uuidKey is a key that is a task UUID ("task_<uuid>" as machinery makes
// them, or orcheo's "<prefix>:task:<uuid>"): where machinery's Redis
// backend keeps task states.
var uuidKey = regexp.MustCompile(`(^|^task_|:task:)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestResultBackend_OneWritePerRun runs runs through a worker on a
// private redis-server under MONITOR: the result backend writes one SET
// (with expiry) per run and reads nothing, where machinery's Redis backend
// wrote 4 SET and read 3 GET; and GetState reads back the success.
func TestResultBackend_OneWritePerRun(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL())
	f.worker.cfg.ResultBackend = ResultBackendRedis
	f.worker.cfg.ResultsExpireIn = time.Hour
	f.start(t)
	ctx := context.Background()
	first := f.createRun(t, okDefinition, `{"n":1}`)
	runs := []*orcheo.Run{first}
	const n = 20
	for len(runs) < n {
		r, _, err := store.Runs.CreateRun(ctx, &orcheo.Run{WorkflowID: first.WorkflowID, VersionID: first.VersionID,
			TriggeredBy: orcheo.TriggerManual, Input: []byte(`{"n":2}`)})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	// A failing run ends its task as a success too (the run's failure is
	// the database's business): one write as well.
	failing := f.createRun(t, failDefinition, `{"n":1}`)
	runs = append(runs, failing)

	m := startMonitor(t, rs.Addr())
	for _, r := range runs {
		if err := f.queue.EnqueueRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		f.waitTerminal(t, r.ID)
	}
	// The state is written when the task returns, just after the run's
	// completion commits: wait for the last ones.
	prefix := f.cfg.Prefix + ":result:"
	var sets, other []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		sets, other = nil, nil
		for _, line := range m.lines() {
			mm := monitorLine.FindStringSubmatch(line)
			if mm == nil {
				continue
			}
			cmd, key := strings.ToUpper(mm[1]), mm[2]
			switch {
			case strings.HasPrefix(key, prefix) && cmd == "SET" && expiry.MatchString(line):
				sets = append(sets, line)
			case strings.HasPrefix(key, prefix), uuidKey.MatchString(key):
				other = append(other, line)
			}
		}
		if len(sets) >= len(runs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(sets) != len(runs) || len(other) != 0 {
		t.Fatalf("%d runs: %d result SETs with expiry, want one each; other result commands: %q", len(runs), len(sets), other)
	}

	// GetState reads a terminal state back.
	key := monitorLine.FindStringSubmatch(sets[0])[2]
	b := newResultBackend(f.worker.Redis, prefix, time.Hour)
	state, err := b.GetState(strings.TrimPrefix(key, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if !state.IsSuccess() || prefix+state.TaskUUID != key {
		t.Fatalf("state = %+v, want the success of task %s", state, strings.TrimPrefix(key, prefix))
	}
	if ttl := f.worker.Redis.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl of %s = %s, want at most 1h", key, ttl)
	}
	if _, err := b.GroupCompleted("g", 1); err == nil {
		t.Fatal("GroupCompleted succeeded on a backend without groups")
	}
}
