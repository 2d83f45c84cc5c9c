package engine_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/orcheo/orcheo"
)

// exampleRuns gives the expected result of each example in examples/ for
// the input {"body": {"name": "Ada"}}. Every file there must have an entry,
// so a new example cannot slip in untested.
var exampleRuns = map[string]struct {
	output string
	err    string
}{
	"hello.yaml": {output: `{"message":"hello, Ada"}`},
	"fail.yaml":  {output: `{"total":0}`, err: `node "reject": order total must be positive (got 0)`},
}

// TestExamples compiles and executes every workflow in examples/.
func TestExamples(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml", "*.json"} {
		m, err := filepath.Glob(filepath.Join("..", "examples", pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := exampleRuns[name]
			if !ok {
				t.Fatalf("add %s to exampleRuns", name)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b := setup(t)
			def := mustCompile(t, b.engine, string(src))
			if !json.Valid(def) {
				t.Fatalf("canonical form is not JSON: %s", def)
			}
			x := b.engine.Execute(context.Background(), def, &orcheo.Run{ID: "r", Input: []byte(`{"body":{"name":"Ada"}}`)}, orcheo.ExecuteOptions{})
			if string(x.Output) != want.output {
				t.Errorf("output = %s, want %s", x.Output, want.output)
			}
			var gotErr string
			if x.Err != nil {
				gotErr = x.Err.Error()
			}
			if gotErr != want.err {
				t.Errorf("err = %q, want %q", gotErr, want.err)
			}
			if len(x.Steps) == 0 {
				t.Error("no steps recorded")
			}
		})
	}
}

// TestExampleHelloWithoutName checks hello.yaml's fallback.
func TestExampleHelloWithoutName(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("..", "examples", "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	for _, input := range []string{``, `{}`, `{"body":{}}`, `{"body":{"name":null}}`} {
		x := b.engine.Execute(context.Background(), mustCompile(t, b.engine, string(src)), &orcheo.Run{Input: []byte(input)}, orcheo.ExecuteOptions{})
		if x.Err != nil || string(x.Output) != `{"message":"hello, world"}` {
			t.Errorf("input %q: output %s, err %v", input, x.Output, x.Err)
		}
	}
}
