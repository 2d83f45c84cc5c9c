package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
	"github.com/orcheo/orcheo/internal/testenv"
)

// BenchmarkStatementForms compares what PostgreSQL spends on each batch
// statement at batch size 1 in its array form and its row form (rowForms),
// with the bench's floor (cmd/orcheo-bench: a bare INSERT and two bare
// UPDATEs) beside them. Each sub-benchmark runs its statement b.N times on
// the pool's one connection and reports the CPU of that connection's
// backend per statement (pg-µs/op, read from /proc: PostgreSQL must run on
// this machine, else it reports 0) beside the wall time, which is mostly
// the round trip and the commit.
//
//	go test -run '^$' -bench StatementForms -benchtime 2000x ./db/postgres/
func BenchmarkStatementForms(b *testing.B) {
	ctx := context.Background()
	dsn := testenv.PostgresURL(b, "db_postgres_forms")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	pdb, err := Open(ctx, dsn+sep+"pool_max_conns=1")
	if err != nil {
		b.Fatal(err)
	}
	defer pdb.Close()
	wf := &orcheo.Workflow{Handle: "forms", Name: "forms"}
	if _, err := NewWorkflowService(pdb).CreateWorkflow(ctx, wf, json.RawMessage(`{"nodes":[{"id":"set","type":"set"}]}`)); err != nil {
		b.Fatal(err)
	}
	var pid int
	if err := pdb.pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	newRun := func() *orcheo.Run {
		return &orcheo.Run{WorkflowID: wf.ID, VersionID: wf.LatestVersionID, TriggeredBy: orcheo.TriggerWebhook, Input: json.RawMessage(`{"bench":1}`)}
	}
	// pending makes n pending runs (in batches, outside the measurement).
	pending := func(b *testing.B, s *RunService, n int) []string {
		var ids []string
		for len(ids) < n {
			batch := make([]*orcheo.Run, min(100, n-len(ids)))
			for i := range batch {
				batch[i] = newRun()
			}
			for _, r := range s.CreateRuns(ctx, batch) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
				ids = append(ids, r.Run.ID)
			}
		}
		return ids
	}
	running := func(b *testing.B, s *RunService, n int) []*orcheo.Run {
		ids := pending(b, s, n)
		var runs []*orcheo.Run
		for i := 0; i < len(ids); i += 100 {
			claims, err := s.ClaimRuns(ctx, ids[i:min(i+100, len(ids))], "bench", time.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range claims {
				if c.Err != nil {
					b.Fatal(c.Err)
				}
				runs = append(runs, c.Run)
			}
		}
		return runs
	}
	// measure runs op(i) for i < b.N and reports the backend's CPU per op.
	measure := func(b *testing.B, op func(i int) error) {
		b.ReportAllocs()
		cpu0 := backendCPU(pid)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(backendCPU(pid)-cpu0)/float64(time.Microsecond)/float64(b.N), "pg-µs/op")
	}
	completion := func(r *orcheo.Run) orcheo.AttemptCompletion {
		now := time.Now()
		return orcheo.AttemptCompletion{RunID: r.ID, Attempt: r.Attempt, Completion: orcheo.RunCompletion{
			Status: orcheo.RunSucceeded, Output: json.RawMessage(`{"ok":true}`),
			Steps: []*orcheo.RunStep{{Seq: 1, Node: "set", NodeType: "set", Status: orcheo.StepSucceeded, NodeAttempt: 1,
				Output: json.RawMessage(`{"ok":true}`), StartedAt: now, CompletedAt: &now}}}}
	}
	for _, form := range []struct {
		name   string
		arrays bool
	}{{"arrays", true}, {"rows", false}} {
		s := &RunService{db: pdb, arrays: form.arrays}
		b.Run("Insert/"+form.name, func(b *testing.B) {
			measure(b, func(int) error { return s.CreateRuns(ctx, []*orcheo.Run{newRun()})[0].Err })
		})
		b.Run("Claim/"+form.name, func(b *testing.B) {
			ids := pending(b, s, b.N)
			measure(b, func(i int) error {
				claims, err := s.ClaimRuns(ctx, ids[i:i+1], "bench", time.Now().Add(time.Minute))
				if err == nil {
					err = claims[0].Err
				}
				return err
			})
		})
		b.Run("Complete/"+form.name, func(b *testing.B) {
			runs := running(b, s, b.N)
			measure(b, func(i int) error {
				res, err := s.CompleteRuns(ctx, []orcheo.AttemptCompletion{completion(runs[i])})
				if err == nil {
					err = res[0].Err
				}
				return err
			})
		})
	}
	// The floor's statements, as cmd/orcheo-bench's ceilingRun sends them.
	s := NewRunService(pdb)
	b.Run("Insert/floor", func(b *testing.B) {
		now := pdb.now()
		measure(b, func(int) error {
			in := newRun()
			if err := rules.NewRun(in, now); err != nil {
				return err
			}
			_, err := pdb.pool.Exec(ctx, `INSERT INTO runs (id, workflow_id, version_id, queue, status, triggered_by, input, created_at, enqueued_at)
				VALUES ($1, $2, $3, 'default', 'pending', 'manual', '{"bench":true}', now(), now())`, in.ID, wf.ID, wf.LatestVersionID)
			return err
		})
	})
	b.Run("Claim/floor", func(b *testing.B) {
		ids := pending(b, s, b.N)
		measure(b, func(i int) error {
			_, err := pdb.pool.Exec(ctx, `UPDATE runs SET status = 'running', attempt = attempt + 1, worker_id = 'ceiling',
					lease_until = now() + interval '30 seconds', started_at = now()
				WHERE id = $1 AND status = 'pending'`, ids[i])
			return err
		})
	})
	b.Run("Complete/floor", func(b *testing.B) {
		runs := running(b, s, b.N)
		measure(b, func(i int) error {
			_, err := pdb.pool.Exec(ctx, `UPDATE runs SET status = 'succeeded', output = '{"ok":true}', lease_until = NULL, completed_at = now()
				WHERE id = $1 AND status = 'running'`, runs[i].ID)
			return err
		})
	})
}

// backendCPU is the user plus system CPU of process pid (a PostgreSQL
// backend on this machine), or 0 if it cannot be read.
func backendCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+sys) * (time.Second / 100) // USER_HZ
}
