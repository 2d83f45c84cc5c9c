package engine_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
)

// setDef is a one-node workflow whose set node computes v with src.
func setDef(src string) string {
	return fmt.Sprintf(`{"nodes":[{"id":"a","type":"set","values":{"v":%q}}]}`, src)
}

// Issue #8 item 2: one definition with deeply nested parentheses used to
// overflow the API's stack (510,000) or be stored (100,000). It must be
// refused quickly, as EINVALID naming the node and the field.
func TestCompile_RefusesDeepOrLongExpressions(t *testing.T) {
	t.Parallel()
	e := engine.New(engine.Options{})
	tests := []struct {
		name string
		def  string
		want string
	}{
		{"Parens100k", setDef(strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000)),
			`node "a": field "values.v": expression is longer than`},
		{"Parens510k", setDef(strings.Repeat("(", 510_000) + "1" + strings.Repeat(")", 510_000)),
			`node "a": field "values.v": expression is longer than`},
		{"DeepButShort", setDef(strings.Repeat("[", 65) + "1" + strings.Repeat("]", 65)),
			`node "a": field "values.v": expression nests brackets deeper than 64`},
		{"UnaryChain", setDef(strings.Repeat("-", 16_000) + "1"),
			`node "a": field "values.v": `},
		{"LongTemplate", `{"nodes":[{"id":"h","type":"http","url":"https://example.com/` + strings.Repeat("x", 70_000) + `"}]}`,
			`node "h": field "url": template is longer than`},
		{"DeepTemplateExpr", `{"nodes":[{"id":"h","type":"http","url":"https://example.com/{{` + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100) + `}}"}]}`,
			`node "h": field "url": expression nests brackets deeper than 64`},
		{"DeepJSONDocument", strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000), `definition`},
		{"DeepYAMLDocument", "nodes: " + strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000), `definition`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := e.Compile([]byte(tt.def))
			if err == nil {
				t.Fatal("Compile accepted the definition")
			}
			if orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Errorf("code %q, want %q (%v)", orcheo.ErrorCode(err), orcheo.EINVALID, err)
			}
			if msg := orcheo.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to contain %q", msg, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Compile took %s", d)
			}
		})
	}
}

// Issue #8 item 3: hostile expressions used to exhaust the worker's memory
// (replace of a string by itself), allocate 500 MB before failing (repeat)
// or return a 167 MB string (doubling). Each must fail its node with a
// clear error, allocating no more than the documented bound, while another
// run on the same engine succeeds.
func TestExecute_HostileExpressionsStayWithinMemoryBound(t *testing.T) {
	e := engine.New(engine.Options{Logger: quietLogger()})
	doubling := "let s0 = \"1234567890\";"
	for i := 1; i <= 24; i++ {
		doubling += fmt.Sprintf(" let s%d = s%d + s%d;", i, i-1, i-1)
	}
	doubling += " s24"
	tests := []struct{ name, src, want string }{
		{"ReplaceBySelf", `let s = repeat("a", 900000); len(replace(s, "a", s))`, "replace: result would be"},
		{"RepeatLong", `len(repeat("` + strings.Repeat("x", 500) + `", 1000000))`, "repeat: result would be"},
		{"StringDoubling", doubling, "+: expression allocated more than"},
		{"JoinAliases", `let s = repeat("a", 100000); len(join(map(1..100000, s), ""))`, "join: result would be"},
		{"UpperInLoop", `let s = repeat("a", 100000); len(map(1..10000, upper(s)))`, "upper: expression allocated more than"},
		{"ToJSONAliases", `let s = repeat("a", 100000); len(toJSON(map(1..10000, s)))`, "toJSON: result would be"},
		{"ResultAliases", `let s = repeat("a", 100000); map(1..10000, s)`, "result is larger than"},
		{"SplitEveryByte", `let s = repeat("a", 100000); len(map(1..1000, split(s, "")))`, "split: expression allocated more than"},
		{"MapLiterals", `len(map(1..400000, ({"k": #})))`, "expression allocated more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			x := e.Execute(context.Background(), []byte(setDef(tt.src)), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
			runtime.ReadMemStats(&after)
			if x.Err == nil {
				t.Fatalf("run succeeded with output of %d bytes", len(x.Output))
			}
			if !strings.Contains(x.Err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", x.Err, tt.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > engine.ExprMemoryBound {
				t.Errorf("allocated %d MiB, more than ExprMemoryBound (%d MiB)", n>>20, engine.ExprMemoryBound>>20)
			}
		})
	}
	t.Run("OtherRunsUnaffected", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, src := range []string{tests[0].src, `"ok"`} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := e.Execute(context.Background(), []byte(setDef(src)), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
				if src == `"ok"` && x.Err != nil {
					errs <- x.Err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("the well-behaved run failed: %v", err)
		}
	})
}

// cpuTime is the CPU time the test process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Issue #8 item 4: a node timeout used to fail the run while its
// expression kept burning CPU for seconds. After the timeout, or a cancel,
// the evaluation must stop within a small bound. Not parallel: it measures
// the process's CPU time.
func TestExecute_TimeoutStopsCPUBoundExpression(t *testing.T) {
	e := engine.New(engine.Options{Logger: quietLogger()})
	// 900³ loop iterations that allocate nothing: tens of seconds of CPU.
	const loop = `let a = 1..900; all(a, all(a, all(a, true)))`
	for _, tc := range []struct{ name, def string }{
		{"NodeTimeout", fmt.Sprintf(`{"nodes":[{"id":"a","type":"set","timeout":"300ms","values":{"v":%q}}]}`, loop)},
		{"Cancel", setDef(loop)},
		{"TemplateNodeTimeout", fmt.Sprintf(`{"nodes":[{"id":"a","type":"log","timeout":"300ms","message":%q}]}`, loop)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.name == "Cancel" {
				time.AfterFunc(300*time.Millisecond, cancel)
			}
			x := e.Execute(ctx, []byte(tc.def), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
			if x.Err == nil {
				t.Fatal("run succeeded")
			}
			stopped := time.Now()
			cpu := cpuTime(t)
			left := waitNodeGoroutines(2 * time.Second)
			time.Sleep(500*time.Millisecond - time.Since(stopped))
			if used := cpuTime(t) - cpu; used > 250*time.Millisecond {
				t.Errorf("used %s of CPU in the 500ms after the run stopped (%v)", used, x.Err)
			}
			if left > 200*time.Millisecond {
				t.Errorf("the evaluation went on for %s after the run stopped", left)
			}
		})
	}
}

// waitNodeGoroutines waits up to max for every node goroutine to end and
// returns how long that took.
func waitNodeGoroutines(max time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < max {
		if nodeGoroutines(0) == "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// Without any timeout, an expression's loops are bounded by a step budget.
func TestExecute_ExpressionStepBudget(t *testing.T) {
	t.Parallel()
	e := engine.New(engine.Options{Logger: quietLogger()})
	x := e.Execute(context.Background(), []byte(setDef(`let a = 1..900; all(a, all(a, all(a, true)))`)), &orcheo.Run{ID: "r"}, orcheo.ExecuteOptions{})
	if x.Err == nil || !strings.Contains(x.Err.Error(), "loop steps") {
		t.Fatalf("error %v, want the step budget's", x.Err)
	}
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
