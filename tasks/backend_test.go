package tasks

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/internal/testenv"
	"github.com/redis/go-redis/v9"
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

// resultSetSpy is a go-redis hook counting the result backend's SETs:
// those sent alone, and those sent in a pipeline with an ack script.
type resultSetSpy struct {
	prefix         string
	mu             sync.Mutex
	alone, withAck int
}

func (s *resultSetSpy) isResultSet(cmd redis.Cmder) bool {
	args := cmd.Args()
	return len(args) > 1 && strings.EqualFold(fmt.Sprint(args[0]), "set") && strings.HasPrefix(fmt.Sprint(args[1]), s.prefix)
}

func (s *resultSetSpy) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *resultSetSpy) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if s.isResultSet(cmd) {
			s.mu.Lock()
			s.alone++
			s.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (s *resultSetSpy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		sets, ack := 0, false
		for _, cmd := range cmds {
			keys := scriptKeys(cmd)
			ack = ack || len(keys) == 2 && strings.Contains(keys[0], ":processing:") && strings.HasSuffix(keys[1], ":messages")
			if s.isResultSet(cmd) {
				sets++
			}
		}
		s.mu.Lock()
		if ack {
			s.withAck += sets
		} else {
			s.alone += sets
		}
		s.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestResultBackend_StateWrittenWithTheAck: the worker writes each run's
// task state in its ack's round trip (a pipeline with the ack script),
// never in a round trip of its own on the task's slot.
func TestResultBackend_StateWrittenWithTheAck(t *testing.T) {
	t.Parallel()
	store := openStore(t, db.BackendSQLite, "")
	rs := testenv.StartRedis(t)
	f := newFixture(t, store, rs.URL())
	f.worker.cfg.ResultBackend = ResultBackendRedis
	f.worker.cfg.ResultsExpireIn = time.Hour
	spy := &resultSetSpy{prefix: f.cfg.Prefix + ":result:"}
	f.worker.Redis.AddHook(spy)
	f.start(t)
	ctx := context.Background()
	runs := []*orcheo.Run{f.createRun(t, okDefinition, `{"n":1}`), f.createRun(t, failDefinition, `{"n":1}`)}
	for range 8 {
		runs = append(runs, f.createRun(t, okDefinition, `{"n":2}`))
	}
	for _, r := range runs {
		if err := f.queue.EnqueueRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		f.waitTerminal(t, r.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		spy.mu.Lock()
		alone, withAck := spy.alone, spy.withAck
		spy.mu.Unlock()
		if alone != 0 {
			t.Fatalf("%d result SETs in a round trip of their own, want none (%d with an ack)", alone, withAck)
		}
		if withAck == len(runs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d result SETs with an ack for %d runs", withAck, len(runs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each state is readable, and expires.
	keys, err := f.worker.Redis.Keys(ctx, spy.prefix+"*").Result()
	if err != nil || len(keys) != len(runs) {
		t.Fatalf("%d state keys (%v), want %d", len(keys), err, len(runs))
	}
	b := newResultBackend(f.worker.Redis, spy.prefix, time.Hour)
	for _, key := range keys {
		state, err := b.GetState(strings.TrimPrefix(key, spy.prefix))
		if err != nil || !state.IsSuccess() {
			t.Fatalf("state of %s = %+v, %v; want a success", key, state, err)
		}
		if ttl := f.worker.Redis.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("ttl of %s = %s", key, ttl)
		}
	}
}
