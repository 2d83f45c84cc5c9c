package engine_test

import (
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

// TestCompile_NodeOptions checks that the new node types and node options
// reject bad definitions with a message naming the node and field.
func TestCompile_NodeOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct{ name, def, want string }{
		{"HTTPNoURL", `{"nodes":[{"id":"a","type":"http"}]}`, `node "a": field "url": required`},
		{"HTTPBadMethod", `{"nodes":[{"id":"a","type":"http","url":"https://x","method":"FETCH"}]}`, `node "a": field "method": "FETCH" is not one of`},
		{"HTTPTemplate", `{"nodes":[{"id":"a","type":"http","url":"https://x/{{ input.id"}]}`, `node "a": field "url": "{{" without "}}"`},
		{"HTTPTemplateExpr", `{"nodes":[{"id":"a","type":"http","url":"https://x/{{ inptu.id }}"}]}`, `node "a": field "url": unknown name inptu`},
		{"HTTPBodyAndJSON", `{"nodes":[{"id":"a","type":"http","method":"POST","url":"https://x","body":"b","json":"1"}]}`, `node "a": field "body": set either json or body`},
		{"HTTPGetBody", `{"nodes":[{"id":"a","type":"http","url":"https://x","body":"b"}]}`, `node "a": field "method": GET requests carry no body`},
		{"HTTPExpect", `{"nodes":[{"id":"a","type":"http","url":"https://x","expect_status":[700]}]}`, `node "a": field "expect_status[0]": 700 is not a status code`},
		{"HTTPHeaderName", `{"nodes":[{"id":"a","type":"http","url":"https://x","headers":{"Bad Name":"v"}}]}`, `node "a": field "headers.Bad Name": not a valid header name`},
		{"HTTPRedirects", `{"nodes":[{"id":"a","type":"http","url":"https://x","max_redirects":50}]}`, `node "a": field "max_redirects": must be from 0 to 10`},
		{"IfNoThen", `{"nodes":[{"id":"a","type":"if","condition":"true"}]}`, `node "a": field "then": required`},
		{"IfDangling", `{"nodes":[{"id":"a","type":"if","condition":"true","then":"zz"}]}`, `node "a": field "then": unknown node "zz"`},
		{"IfBadCondition", `{"nodes":[{"id":"a","type":"if","condition":"1 +","then":"b"},{"id":"b","type":"log","message":"1"}]}`, `node "a": field "condition": unexpected token EOF`},
		{"IfNext", `{"nodes":[{"id":"a","type":"if","condition":"true","then":"b","next":"b"},{"id":"b","type":"log","message":"1"}]}`, `node "a": field "next": a if node continues through its branches only`},
		{"IfExtraEdge", `{"nodes":[{"id":"a","type":"if","condition":"true","then":"b"},{"id":"b","type":"log","message":"1"},{"id":"c","type":"log","message":"1"}],"edges":[{"from":"a","to":"c"}]}`, `edges[0]: field "to": edge "a" → "c" leaves a if node`},
		{"IfContinue", `{"nodes":[{"id":"a","type":"if","condition":"true","then":"b","continue_on_error":true},{"id":"b","type":"log","message":"1"}]}`, `node "a": field "continue_on_error": not allowed on a if node`},
		{"SwitchNoCases", `{"nodes":[{"id":"a","type":"switch"}]}`, `node "a": field "cases": required`},
		{"SwitchBadCase", `{"nodes":[{"id":"a","type":"switch","cases":[{"when":"true","goto":"b"}]},{"id":"b","type":"log","message":"1"}]}`, `node "a": field "cases[0].goto": unknown key`},
		{"SwitchDangling", `{"nodes":[{"id":"a","type":"switch","cases":[{"when":"true","to":"b"}],"default":"zz"},{"id":"b","type":"log","message":"1"}]}`, `node "a": field "default": unknown node "zz"`},
		{"DelayNone", `{"nodes":[{"id":"a","type":"delay"}]}`, `node "a": field "duration": set duration or until`},
		{"DelayBad", `{"nodes":[{"id":"a","type":"delay","duration":"soon"}]}`, `node "a": field "duration": invalid duration "soon"`},
		{"DelayBoth", `{"nodes":[{"id":"a","type":"delay","duration":"1s","until":"input.t"}]}`, `node "a": field "until": set either duration or until`},
		{"WorkflowNone", `{"nodes":[{"id":"a","type":"workflow"}]}`, `node "a": field "workflow": required`},
		{"WorkflowWait", `{"nodes":[{"id":"a","type":"workflow","workflow":"x","wait":"yes"}]}`, `node "a": field "wait": must be true or false`},
		{"RetryShape", `{"nodes":[{"id":"a","type":"log","message":"1","retry":3}]}`, `node "a": field "retry": must be an object {max_attempts, backoff}`},
		{"RetryAttempts", `{"nodes":[{"id":"a","type":"log","message":"1","retry":{"max_attempts":0}}]}`, `node "a": field "retry.max_attempts": must be a whole number from 1 to 10`},
		{"RetryBackoff", `{"nodes":[{"id":"a","type":"log","message":"1","retry":{"max_attempts":2,"backoff":"1h"}}]}`, `node "a": field "retry.backoff": must be at most 1m0s`},
		{"RetryKey", `{"nodes":[{"id":"a","type":"log","message":"1","retry":{"max_attempts":2,"jitter":true}}]}`, `node "a": field "retry": unknown key "jitter"`},
		{"ContinueShape", `{"nodes":[{"id":"a","type":"log","message":"1","continue_on_error":"yes"}]}`, `node "a": field "continue_on_error": must be true or false`},
		{"EnvUnknownVar", `{"nodes":[{"id":"a","type":"log","message":"envv.X"}]}`, `node "a": field "message": unknown name envv`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := b.engine.Compile([]byte(tc.def))
			if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), tc.want) {
				t.Fatalf("Compile = %v, want EINVALID containing %q", err, tc.want)
			}
		})
	}
	t.Run("CanonicalKeepsNodeOptions", func(t *testing.T) {
		t.Parallel()
		def := "nodes:\n  - {id: a, type: log, message: '1', continue_on_error: true, retry: {backoff: 2s, max_attempts: 3}}\n"
		c := mustCompile(t, b.engine, def)
		want := `{"version":1,"nodes":[{"id":"a","type":"log","message":"1","retry":{"backoff":"2s","max_attempts":3},"continue_on_error":true}]}`
		if string(c) != want {
			t.Fatalf("canonical = %s\nwant      %s", c, want)
		}
		if again := mustCompile(t, b.engine, string(c)); string(again) != want {
			t.Fatalf("recompiled = %s", again)
		}
	})
}
