package engine_test

import (
	"context"
	"io"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
)

// BenchmarkExecuteSmallWorkflow executes a compiled set → log workflow,
// the shape of examples/hello.yaml.
func BenchmarkExecuteSmallWorkflow(b *testing.B) {
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	e := engine.New(engine.Options{Logger: logger})
	def, err := e.Compile([]byte(`
nodes:
  - id: greet
    type: set
    values:
      message: '"hello, " + (input.body.name ?? "world")'
      count: 'len(input.body.items ?? [])'
  - id: say
    type: log
    message: steps.greet.output.message
`))
	if err != nil {
		b.Fatal(err)
	}
	run := &orcheo.Run{ID: "r", Attempt: 1, Input: []byte(`{"body":{"name":"Ada","items":[1,2,3]}}`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if x := e.Execute(ctx, def, run, orcheo.ExecuteOptions{}); x.Err != nil {
			b.Fatal(x.Err)
		}
	}
}

// BenchmarkCompile compiles the same workflow from YAML.
func BenchmarkCompile(b *testing.B) {
	e := engine.New(engine.Options{})
	src := []byte(`
nodes:
  - id: greet
    type: set
    values:
      message: '"hello, " + (input.body.name ?? "world")'
  - id: say
    type: log
    message: steps.greet.output.message
`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}
