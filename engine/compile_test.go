package engine_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
)

// TestCompile_Invalid checks that every kind of invalid definition is
// rejected with EINVALID and a message naming the node (or list entry) and
// the field at fault.
func TestCompile_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		def  string
		want []string // substrings of the error message, in order
	}{
		{"Empty", ``, []string{"definition is empty"}},
		{"NotObject", `[1, 2]`, []string{"definition must be an object"}},
		{"YAMLInfinity", "description: .inf\nnodes: [{id: a, type: log, message: '1'}]\n", []string{"+Inf is not a JSON number"}},
		{"YAMLSyntax", "nodes: [\n  - id: a\n", []string{"neither JSON nor YAML"}},
		{"SeveralYAMLDocuments", "nodes: []\n---\nnodes: []\n", []string{"single YAML document"}},
		{"UnknownTopLevelKey", `{"nodes":[{"id":"a","type":"log","message":"1"}],"node":[]}`, []string{`field "node": unknown key`}},
		{"BadVersion", `{"version":2,"nodes":[{"id":"a","type":"log","message":"1"}]}`, []string{`field "version": must be 1`}},
		{"BadRunTimeout", `{"timeout":"soon","nodes":[{"id":"a","type":"log","message":"1"}]}`, []string{`field "timeout": invalid duration "soon"`}},
		{"NegativeRunTimeout", `{"timeout":"-1s","nodes":[{"id":"a","type":"log","message":"1"}]}`, []string{`field "timeout"`, "must be positive"}},
		{"NumericRunTimeout", `{"timeout":30,"nodes":[{"id":"a","type":"log","message":"1"}]}`, []string{`field "timeout": must be a duration string`}},
		{"MissingNodes", `{"description":"x"}`, []string{`field "nodes": required`}},
		{"EmptyNodes", `{"nodes":[]}`, []string{`field "nodes": at least one node`}},
		{"NodesNotList", `{"nodes":{"a":1}}`, []string{`field "nodes": must be a list`}},
		{"NodeNotObject", `{"nodes":["a"]}`, []string{`nodes[0]: must be an object`}},
		{"MissingID", `{"nodes":[{"id":"a","type":"log","message":"1"},{"type":"log","message":"1"}]}`, []string{`nodes[1]: field "id": required`}},
		{"BadID", `{"nodes":[{"id":"1st","type":"log","message":"1"}]}`, []string{`nodes[0]: field "id": "1st" must start with a letter`}},
		{"DuplicateID", `{"nodes":[{"id":"a","type":"log","message":"1"},{"id":"a","type":"log","message":"2"}]}`, []string{`node "a": field "id": duplicate id (nodes[1])`}},
		{"MissingType", `{"nodes":[{"id":"a","message":"1"}]}`, []string{`node "a": field "type": required`}},
		{"UnknownType", `{"nodes":[{"id":"a","type":"http2"}]}`, []string{`node "a": field "type": unknown node type "http2"`, `"delay", "fail", "http", "if", "log", "set", "switch", "workflow"`}},
		{"UnknownOption", `{"nodes":[{"id":"a","type":"log","message":"1","colour":"red"}]}`, []string{`node "a": field "colour": unknown option for type "log"`}},
		{"MissingLogMessage", `{"nodes":[{"id":"a","type":"log"}]}`, []string{`node "a": field "message": required`}},
		{"MissingFailMessage", `{"nodes":[{"id":"a","type":"fail"}]}`, []string{`node "a": field "message": required`}},
		{"MissingSetValues", `{"nodes":[{"id":"a","type":"set"}]}`, []string{`node "a": field "values": required`}},
		{"EmptySetValues", `{"nodes":[{"id":"a","type":"set","values":{}}]}`, []string{`node "a": field "values": must set at least one key`}},
		{"SetValuesNotObject", `{"nodes":[{"id":"a","type":"set","values":["x"]}]}`, []string{`node "a": field "values": must be an object`}},
		{"SetValueNotString", `{"nodes":[{"id":"a","type":"set","values":{"n":5}}]}`, []string{`node "a": field "values.n": must be an expression string`}},
		{"MessageNotString", `{"nodes":[{"id":"a","type":"log","message":5}]}`, []string{`node "a": field "message": must be an expression string`}},
		{"EmptyExpression", `{"nodes":[{"id":"a","type":"log","message":"  "}]}`, []string{`node "a": field "message": empty expression`}},
		{"BadLevel", `{"nodes":[{"id":"a","type":"log","message":"1","level":"loud"}]}`, []string{`node "a": field "level": "loud" is not one of "debug", "info", "warn", "error"`}},
		{"ExpressionSyntax", `{"nodes":[{"id":"say","type":"log","message":"a + )"}]}`, []string{`node "say": field "message": unexpected token`, "(1:5)"}},
		{"ExpressionSyntaxInSet", `{"nodes":[{"id":"greet","type":"set","values":{"m":"\"hi\" +"}}]}`, []string{`node "greet": field "values.m": unexpected token`}},
		{"ExpressionUnknownName", `{"nodes":[{"id":"say","type":"log","message":"inptu.body"}]}`, []string{`node "say": field "message": unknown name inptu`}},
		{"ExpressionUnknownRunField", `{"nodes":[{"id":"say","type":"log","message":"run.idd"}]}`, []string{`node "say": field "message": type run has no field idd`}},
		{"ExpressionUnknownStep", `{"nodes":[{"id":"greet","type":"set","values":{"m":"1"}},{"id":"say","type":"log","message":"steps.gret.output.m"}]}`, []string{`node "say": field "message": unknown step "gret"`}},
		{"BadNodeTimeout", `{"nodes":[{"id":"a","type":"log","message":"1","timeout":"5 parsecs"}]}`, []string{`node "a": field "timeout": invalid duration "5 parsecs"`}},
		{"ZeroNodeTimeout", `{"nodes":[{"id":"a","type":"log","message":"1","timeout":"0s"}]}`, []string{`node "a": field "timeout"`, "must be positive"}},
		{"DanglingNext", `{"nodes":[{"id":"a","type":"log","message":"1","next":"b"}]}`, []string{`node "a": field "next": unknown node "b"`}},
		{"NextNotString", `{"nodes":[{"id":"a","type":"log","message":"1","next":["b"]}]}`, []string{`node "a": field "next": must be a node id`}},
		{"DanglingEdgeTo", `{"nodes":[{"id":"a","type":"log","message":"1"}],"edges":[{"from":"a","to":"zz"}]}`, []string{`edges[0]: field "to": unknown node "zz"`}},
		{"DanglingEdgeFrom", `{"nodes":[{"id":"a","type":"log","message":"1"}],"edges":[{"from":"zz","to":"a"}]}`, []string{`edges[0]: field "from": unknown node "zz"`}},
		{"EdgeMissingTo", `{"nodes":[{"id":"a","type":"log","message":"1"}],"edges":[{"from":"a"}]}`, []string{`edges[0]: field "to": required`}},
		{"EdgeUnknownKey", `{"nodes":[{"id":"a","type":"log","message":"1"}],"edges":[{"from":"a","to":"a","when":"x"}]}`, []string{`edges[0]: field "when": unknown key`}},
		{"EdgesNotList", `{"nodes":[{"id":"a","type":"log","message":"1"}],"edges":{"a":"b"}}`, []string{`field "edges": must be a list`}},
		{"DuplicateEdge", `{"nodes":[{"id":"a","type":"log","message":"1","next":"b"},{"id":"b","type":"log","message":"1"}],"edges":[{"from":"a","to":"b"}]}`, []string{`node "a": field "next": duplicate edge "a" → "b" (also declared by edges[0])`}},
		{"SelfLoop", `{"nodes":[{"id":"a","type":"log","message":"1","next":"a"}]}`, []string{`node "a": field "next": edge "a" → "a" closes a cycle "a" → "a"`}},
		{"CycleThroughEdges", `{"nodes":[{"id":"s","type":"log","message":"1"},{"id":"a","type":"log","message":"1"},{"id":"b","type":"log","message":"1"}],"edges":[{"from":"s","to":"a"},{"from":"a","to":"b"},{"from":"b","to":"a"}]}`,
			[]string{`edges[2]: field "to": edge "b" → "a" closes a cycle "a" → "b" → "a"`}},
		{"CycleThroughNext", `{"nodes":[{"id":"a","type":"log","message":"1","next":"b"},{"id":"b","type":"log","message":"1","next":"a"}]}`, []string{`node "b": field "next": edge "b" → "a" closes a cycle "a" → "b" → "a"`}},
		{"SeveralStartNodes", `{"nodes":[{"id":"a","type":"log","message":"1"},{"id":"b","type":"log","message":"1"},{"id":"c","type":"log","message":"1"}],"edges":[{"from":"a","to":"b"}]}`,
			[]string{`field "edges": nodes "a", "c" have no incoming edge`}},
		{"YAMLNodeError", "nodes:\n  - id: say\n    type: log\n    message: '\"hi\" +'\n", []string{`node "say": field "message": unexpected token`}},
	}
	e := engine.New(engine.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := e.Compile([]byte(tt.def))
			if err == nil {
				t.Fatalf("Compile succeeded with %s", out)
			}
			if code := orcheo.ErrorCode(err); code != orcheo.EINVALID {
				t.Fatalf("code = %q, want invalid (err %v)", code, err)
			}
			msg := orcheo.ErrorMessage(err)
			rest := msg
			for _, want := range tt.want {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("message %q lacks %q", msg, want)
				}
				rest = rest[i+len(want):]
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q spans lines", msg)
			}
		})
	}
}

// TestCompile_Canonical checks that the same workflow written as YAML and
// as JSON, with keys in any order, compiles to the same canonical JSON, and
// that compiling the canonical form returns it unchanged.
func TestCompile_Canonical(t *testing.T) {
	t.Parallel()
	const yamlDef = `
# comments are fine
description: greets
timeout: 30s
nodes:
  - id: greet
    type: set
    values:
      z: '1 < 2 && true'
      message: '"hello, " + (input.body.name ?? "world")'
    timeout: 5s
    next: say
  - type: log
    id: say
    level: debug
    message: steps.greet.output.message
  - id: end
    type: fail
    message: '"stop"'
edges:
  - {from: say, to: end}
`
	const jsonSame = `{
	  "version": 1,
	  "edges": [{"to": "end", "from": "say"}],
	  "timeout": "30s",
	  "nodes": [
	    {"timeout": "5s", "values": {"message": "\"hello, \" + (input.body.name ?? \"world\")", "z": "1 < 2 && true"}, "type": "set", "id": "greet", "next": "say"},
	    {"message": "steps.greet.output.message", "id": "say", "type": "log", "level": "debug"},
	    {"id": "end", "message": "\"stop\"", "type": "fail"}
	  ],
	  "description": "greets"
	}`
	const want = `{"version":1,"description":"greets","timeout":"30s","nodes":[` +
		`{"id":"greet","type":"set","values":{"message":"\"hello, \" + (input.body.name ?? \"world\")","z":"1 < 2 && true"},"timeout":"5s","next":"say"},` +
		`{"id":"say","type":"log","level":"debug","message":"steps.greet.output.message"},` +
		`{"id":"end","type":"fail","message":"\"stop\""}],` +
		`"edges":[{"from":"say","to":"end"}]}`

	e := engine.New(engine.Options{})
	fromYAML, err := e.Compile([]byte(yamlDef))
	if err != nil {
		t.Fatalf("Compile(yaml): %v", err)
	}
	fromJSON, err := e.Compile([]byte(jsonSame))
	if err != nil {
		t.Fatalf("Compile(json): %v", err)
	}
	if string(fromYAML) != want {
		t.Errorf("yaml canonical:\n got %s\nwant %s", fromYAML, want)
	}
	if !bytes.Equal(fromYAML, fromJSON) {
		t.Errorf("yaml and json differ:\n%s\n%s", fromYAML, fromJSON)
	}
	again, err := e.Compile(fromYAML)
	if err != nil {
		t.Fatalf("Compile(canonical): %v", err)
	}
	if !bytes.Equal(again, fromYAML) {
		t.Errorf("canonical form is not stable:\n%s\n%s", fromYAML, again)
	}
}

// TestCompile_Minimal checks the defaults of a minimal definition: version
// 1 is filled in, absent optional keys stay absent, null reads as absent.
func TestCompile_Minimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, def, want string
	}{
		{"JSON", `{"nodes":[{"id":"a","type":"log","message":"1"}]}`, `{"version":1,"nodes":[{"id":"a","type":"log","message":"1"}]}`},
		{"YAMLNulls", "version:\ntimeout:\nnodes:\n  - id: a\n    type: log\n    message: '1'\n    level:\n", `{"version":1,"nodes":[{"id":"a","type":"log","message":"1"}]}`},
		{"YAMLScalars", "description: 2026-01-01\nnodes:\n  - id: a\n    type: set\n    values: {1: '1', true: '2'}\n",
			`{"version":1,"description":"2026-01-01","nodes":[{"id":"a","type":"set","values":{"1":"1","true":"2"}}]}`},
		{"YAMLTimestamp", "description: 2026-01-01T10:00:00Z\nnodes: [{id: a, type: log, message: '1'}]\n",
			`{"version":1,"description":"2026-01-01T10:00:00Z","nodes":[{"id":"a","type":"log","message":"1"}]}`},
		{"YAMLFlow", `{nodes: [{id: a, type: log, message: "1"}]}`, `{"version":1,"nodes":[{"id":"a","type":"log","message":"1"}]}`},
	}
	e := engine.New(engine.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := e.Compile([]byte(tt.def))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
