package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/sirupsen/logrus"
)

// The seed corpora in testdata/fuzz/<name>/ hold the hostile cases of
// issue #8 (deep parentheses, huge repeat and replace, string doubling,
// CPU-bound loops); `go test` runs them as ordinary tests, and
// `go test -run '^$' -fuzz '^FuzzX$' -fuzztime 20s ./engine/` explores
// from them.

// FuzzCompileDefinition checks that compiling any document either fails
// with EINVALID or succeeds with a canonical form that compiles to itself,
// quickly and without a crash.
func FuzzCompileDefinition(f *testing.F) {
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, path := range examples {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"nodes":[{"id":"a","type":"set","values":{"v":"1 + 2"}}]}`))
	f.Add([]byte("nodes:\n  - id: a\n    type: log\n    message: '\"hi \" + input.body.name'\n"))
	f.Add([]byte(`{"nodes":[{"id":"h","type":"http","url":"https://example.com/{{ input.id }}"}]}`))
	f.Add([]byte(`{"nodes":[{"id":"s","type":"switch","cases":[{"when":"true","to":"a"}]},{"id":"a","type":"fail","message":"\"x\""}]}`))
	e := New(Options{Logger: discardLogger()})
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		c, err := e.Compile(data)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("Compile took %s", took)
		}
		if err != nil {
			if code := orcheo.ErrorCode(err); code != orcheo.EINVALID {
				t.Fatalf("error code %q, want %q: %v", code, orcheo.EINVALID, err)
			}
			return
		}
		again, err := e.Compile(c)
		if err != nil {
			t.Fatalf("the canonical form %s does not compile: %v", c, err)
		}
		if !bytes.Equal(again, c) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c, again)
		}
	})
}

// fuzzTimeout is the node timeout FuzzEvalExpression evaluates under.
const fuzzTimeout = 100 * time.Millisecond

// FuzzEvalExpression checks that any expression either fails to compile,
// or evaluates within the engine's limits: it returns (a result or an
// error) soon after its timeout, allocates no more than ExprMemoryBound
// and returns a result no larger than ExprByteBudget.
func FuzzEvalExpression(f *testing.F) {
	const input = `{"body":{"name":"Ada","items":[1,2,3],"text":"a,b,c"},"headers":{"X":"1"}}`
	for _, src := range []string{
		`"hello, " + (input.body.name ?? "world")`,
		`len(input.body.items ?? [])`,
		`map(input.body.items, # * 2) | sum()`,
		`split(input.body.text, ",") | join("-") | upper()`,
		`toJSON(input) + string(keys(input.headers))`,
		`uniq([1, 1.0, "a", "a", [1], [1]])`,
		`let s = repeat("a", 900000); len(replace(s, "a", s))`,
		`let a = 1..900; all(a, all(a, all(a, true)))`,
		`reduce(1..100000, #acc + "x", "")`,
		`fromJSON(toJSON({"a": [1, 2, {"b": nil}]}))`,
	} {
		f.Add(src, []byte(input))
	}
	f.Fuzz(func(t *testing.T, src string, in []byte) {
		e, err := compileExpr("v", src, nil)
		if err != nil {
			return
		}
		var input any = map[string]any{}
		if len(in) <= 1<<20 && json.Valid(in) {
			_ = json.Unmarshal(in, &input)
		}
		env := &exprEnv{Input: input, Steps: map[string]any{}, State: map[string]any{}, Env: map[string]any{}}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		v, size, err := e.eval(ctx, env)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		// Generous for a shared machine; an unbounded loop takes minutes.
		if took > fuzzTimeout+2*time.Second {
			t.Fatalf("evaluation took %s", took)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > ExprMemoryBound {
			t.Fatalf("evaluation allocated %d MiB, more than ExprMemoryBound", n>>20)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "expression `") && ctx.Err() == nil {
				t.Fatalf("error does not quote the expression: %v", err)
			}
			return
		}
		if size > ExprByteBudget {
			t.Fatalf("result of %d bytes passed the budget", size)
		}
		_ = v
	})
}

func discardLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
