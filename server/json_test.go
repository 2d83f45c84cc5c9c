package server_test

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/server"
)

// goType matches Go type names in a message.
var goType = regexp.MustCompile(`server\.|orcheo\.|json\.|\[\]|\b(bool|int|int64|float64|struct|interface|Go)\b`)

// TestJSONErrors: decode errors speak of the API's fields and JSON types,
// never of Go types (issue 8, item 12).
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{setup: func(s *server.Server, st *db.Store) {
		s.Cron, s.CronScheduler = st.Cron, schedule.Scheduler{}
		s.Submitter = startSubmitter(t, st.Runs, &recordingQueue{})
		s.CronDispatcher = &schedule.Dispatcher{Cron: st.Cron, Workflows: st.Workflows, Submitter: s.Submitter, Logger: s.Logger}
	}})
	e.mustWorkflow(t, "j")
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"WorkflowArray", "POST", "/api/workflows", `[]`, `invalid JSON: request body must be a JSON object, got an array`},
		{"WorkflowString", "POST", "/api/workflows", `"x"`, `invalid JSON: request body must be a JSON object, got a string`},
		{"WorkflowNumber", "POST", "/api/workflows", `1e999999`, `invalid JSON: request body must be a JSON object, got a number`},
		{"HandleNumber", "POST", "/api/workflows", `{"handle":5}`, `invalid JSON: field "handle" must be a string, got a number`},
		{"VersionArray", "POST", "/api/workflows/j/versions", `[1]`, `invalid JSON: request body must be a JSON object, got an array`},
		{"RunArray", "POST", "/api/workflows/j/runs", `[]`, `invalid JSON: request body must be a JSON object, got an array`},
		{"RunKeyObject", "POST", "/api/workflows/j/runs", `{"idempotency_key":{}}`, `invalid JSON: field "idempotency_key" must be a string, got an object`},
		{"EnabledString", "PUT", "/api/workflows/j/triggers/webhook/config", `{"enabled":"yes"}`, `invalid JSON: field "enabled" must be true or false, got a string`},
		{"MethodsString", "PUT", "/api/workflows/j/triggers/webhook/config", `{"methods":"POST"}`, `invalid JSON: field "methods" must be an array of strings, got a string`},
		{"MethodsNumbers", "PUT", "/api/workflows/j/triggers/webhook/config", `{"methods":[1]}`, `invalid JSON: field "methods" must be an array of strings, got a number`},
		{"KeepObject", "PUT", "/api/workflows/j/triggers/webhook/config", `{"keep":{}}`, `invalid JSON: field "keep" must be an array of strings, got an object`},
		{"CronLimitString", "PUT", "/api/workflows/j/triggers/cron/config", `{"expression":"* * * * *","catchup_limit":"3"}`, `invalid JSON: field "catchup_limit" must be an integer, got a string`},
		{"CronLimitFraction", "PUT", "/api/workflows/j/triggers/cron/config", `{"expression":"* * * * *","catchup_limit":1.5}`, `invalid JSON: field "catchup_limit" must be an integer, got 1.5`},
		{"CronLimitHuge", "PUT", "/api/workflows/j/triggers/cron/config", `{"expression":"* * * * *","catchup_limit":1e999999}`, `invalid JSON: field "catchup_limit" must be an integer, got 1e999999`},
		{"CronStartNumber", "PUT", "/api/workflows/j/triggers/cron/config", `{"expression":"* * * * *","start_at":1}`, `invalid JSON: field "start_at" must be a string, got a number`},
		{"CronCatchupArray", "PUT", "/api/workflows/j/triggers/cron/config", `{"expression":"* * * * *","catchup":[]}`, `invalid JSON: field "catchup" must be a string, got an array`},
		{"DispatchArray", "POST", "/api/triggers/cron/dispatch", `[]`, `invalid JSON: request body must be a JSON object, got an array`},
		{"DispatchNowBool", "POST", "/api/triggers/cron/dispatch", `{"now":true}`, `invalid JSON: field "now" must be a string, got a boolean`},
		{"UnknownField", "POST", "/api/workflows", `{"handel":"x"}`, `invalid JSON: unknown field "handel"`},
		{"Syntax", "POST", "/api/workflows", `{"handle":}`, `invalid JSON: invalid character '}' looking for beginning of value (at byte 11)`},
		{"Truncated", "POST", "/api/workflows", `{"handle":"x"`, `invalid JSON: unexpected end of input`},
		{"Trailing", "POST", "/api/workflows", `{} {}`, `invalid JSON: unexpected data after the top-level value`},
		{"LimitWord", "GET", "/api/runs?limit=abc", ``, `limit must be an integer from 0 to 1000`},
		{"LimitHuge", "GET", "/api/workflows?limit=99999999999999999999999", ``, `limit must be an integer from 0 to 1000`},
		{"OffsetWord", "GET", "/api/runs?offset=x", ``, `offset must be a non-negative integer`},
		{"Archived", "GET", "/api/workflows?include_archived=maybe", ``, `include_archived must be true or false`},
		{"DispatchNow", "POST", "/api/triggers/cron/dispatch", `{"now":"tomorrow"}`, `now: "tomorrow" is not an RFC 3339 time such as 2025-01-31T09:00:00Z`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, e, tc.method, tc.path, testToken, "application/json", tc.body)
			wantError(t, resp, body, 400, orcheo.EINVALID)
			var got struct {
				Error struct{ Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Error.Message != tc.want {
				t.Fatalf("message %q, want %q", got.Error.Message, tc.want)
			}
			if goType.MatchString(got.Error.Message) {
				t.Fatalf("message %q names a Go type", got.Error.Message)
			}
		})
	}
}
