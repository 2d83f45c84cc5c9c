package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

func TestWorkflows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("CreateAndFind", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		wf, err := e.client.CreateWorkflow(ctx, "hello", "Hello", "emails", []byte(okDefinition))
		if err != nil {
			t.Fatal(err)
		}
		if !orcheo.IsID(wf.ID) || wf.Handle != "hello" || wf.Name != "Hello" || wf.Queue != "emails" ||
			wf.LatestVersion != 1 || wf.LatestVersionID == "" || wf.CreatedAt.IsZero() {
			t.Fatalf("created %+v", wf)
		}
		for _, ref := range []string{"hello", wf.ID} {
			got, err := e.client.FindWorkflowByRef(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != wf.ID || got.LatestVersionID != wf.LatestVersionID {
				t.Fatalf("find %s = %+v", ref, got)
			}
		}
		_, err = e.client.FindWorkflowByRef(ctx, "nope")
		wantCode(t, err, orcheo.ENOTFOUND)
	})

	t.Run("DefaultQueue", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		if wf := e.mustWorkflow(t, "q"); wf.Queue != orcheo.DefaultQueue {
			t.Fatalf("queue %q", wf.Queue)
		}
	})

	t.Run("DefinitionForms", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		yamlDef := "nodes:\n  - id: a\n    type: set\n    values:\n      x: \"1\"\n"
		if _, err := e.client.CreateWorkflow(ctx, "yaml", "", "", []byte(yamlDef)); err != nil {
			t.Fatalf("YAML string: %v", err)
		}
		// A JSON object, not a string, in the request body.
		resp, body := do(t, e, "POST", "/api/workflows", testToken, "application/json",
			`{"handle":"object","name":"O","definition":`+okDefinition+`}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		vs, err := e.client.FindWorkflowVersions(ctx, "object")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0].Version != 1 || !json.Valid(vs[0].Definition) || !strings.Contains(string(vs[0].Definition), `"set"`) {
			t.Fatalf("versions %+v", vs)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "one")
		e.mustWorkflow(t, "two")
		if _, err := e.client.ArchiveWorkflow(ctx, "one"); err != nil {
			t.Fatal(err)
		}
		wfs, total, err := e.client.FindWorkflows(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(wfs) != 1 || wfs[0].Handle != "two" {
			t.Fatalf("active: %d %+v", total, wfs)
		}
		if wfs, total, err = e.client.FindWorkflows(ctx, true); err != nil || total != 2 || len(wfs) != 2 {
			t.Fatalf("all: %d %d %v", total, len(wfs), err)
		}
		resp, body := do(t, e, "GET", "/api/workflows?include_archived=true&limit=1&offset=1", testToken, "", "")
		var page struct {
			Workflows []*orcheo.Workflow `json:"workflows"`
			Total     int                `json:"total"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != 200 || page.Total != 2 || len(page.Workflows) != 1 {
			t.Fatalf("page %d %s", resp.StatusCode, body)
		}
		for _, q := range []string{"limit=x", "limit=-1", "limit=100000", "offset=-1", "include_archived=maybe"} {
			resp, body := do(t, e, "GET", "/api/workflows?"+q, testToken, "", "")
			wantError(t, resp, body, 400, orcheo.EINVALID)
		}
		resp, body = do(t, e, "GET", "/api/workflows", testToken, "", "")
		if resp.StatusCode != 200 || !strings.Contains(body, `"workflows":[`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		wf := e.mustWorkflow(t, "ver")
		v, err := e.client.CreateWorkflowVersion(ctx, "ver", []byte(`{"nodes":[{"id":"b","type":"set","values":{"y":"2"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 2 || v.WorkflowID != wf.ID {
			t.Fatalf("version %+v", v)
		}
		got, _ := e.client.FindWorkflowByRef(ctx, "ver")
		if got.LatestVersion != 2 || got.LatestVersionID != v.ID {
			t.Fatalf("latest %+v", got)
		}
		vs, err := e.client.FindWorkflowVersions(ctx, wf.ID)
		if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 {
			t.Fatalf("versions %+v %v", vs, err)
		}
		_, err = e.client.CreateWorkflowVersion(ctx, "ver", []byte(`{"nodes":[{"id":"bad","type":"nope"}]}`))
		wantCode(t, err, orcheo.EINVALID)
		if !strings.Contains(orcheo.ErrorMessage(err), "bad") {
			t.Fatalf("message %q does not name the node", orcheo.ErrorMessage(err))
		}
		_, err = e.client.CreateWorkflowVersion(ctx, "missing", []byte(okDefinition))
		wantCode(t, err, orcheo.ENOTFOUND)
		_, err = e.client.FindWorkflowVersions(ctx, "missing")
		wantCode(t, err, orcheo.ENOTFOUND)
		if vs, _ := e.client.FindWorkflowVersions(ctx, "ver"); len(vs) != 2 {
			t.Fatalf("%d versions after bad requests", len(vs))
		}
	})

	t.Run("Archive", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "arch")
		wf, err := e.client.ArchiveWorkflow(ctx, "arch")
		if err != nil || wf.ArchivedAt == nil {
			t.Fatalf("archive: %+v %v", wf, err)
		}
		if again, err := e.client.ArchiveWorkflow(ctx, "arch"); err != nil || again.ArchivedAt == nil {
			t.Fatalf("archive twice: %+v %v", again, err)
		}
		_, err = e.client.CreateWorkflowVersion(ctx, "arch", []byte(okDefinition))
		wantCode(t, err, orcheo.ECONFLICT)
		_, err = e.client.ArchiveWorkflow(ctx, "missing")
		wantCode(t, err, orcheo.ENOTFOUND)
	})

	t.Run("DuplicateHandle", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		e.mustWorkflow(t, "dup")
		wfs, runs := e.counts(t)
		_, err := e.client.CreateWorkflow(ctx, "dup", "again", "", []byte(okDefinition))
		wantCode(t, err, orcheo.ECONFLICT)
		e.unchanged(t, wfs, runs)
	})

	t.Run("BadInput", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{maxBody: 4096})
		e.mustWorkflow(t, "exists")
		wfs, runs := e.counts(t)
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			code, message            string
		}{
			{"MalformedJSON", "POST", "/api/workflows", `{"handle":"x",`, 400, orcheo.EINVALID, "invalid JSON"},
			{"NotAnObject", "POST", "/api/workflows", `[1]`, 400, orcheo.EINVALID, "invalid JSON"},
			{"TrailingData", "POST", "/api/workflows", `{"handle":"x","definition":` + okDefinition + `} {}`, 400, orcheo.EINVALID, "invalid JSON"},
			{"UnknownField", "POST", "/api/workflows", `{"handle":"x","definition":` + okDefinition + `,"color":"red"}`, 400, orcheo.EINVALID, "unknown field"},
			{"WrongType", "POST", "/api/workflows", `{"handle":1,"definition":` + okDefinition + `}`, 400, orcheo.EINVALID, "handle"},
			{"EmptyBody", "POST", "/api/workflows", ``, 400, orcheo.EINVALID, "empty"},
			{"NoDefinition", "POST", "/api/workflows", `{"handle":"x"}`, 400, orcheo.EINVALID, "definition is required"},
			{"DefinitionNumber", "POST", "/api/workflows", `{"handle":"x","definition":5}`, 400, orcheo.EINVALID, "definition must be"},
			{"InvalidDefinition", "POST", "/api/workflows", `{"handle":"x","definition":{"nodes":[{"id":"n1","type":"bogus"}]}}`, 400, orcheo.EINVALID, "n1"},
			{"InvalidYAML", "POST", "/api/workflows", `{"handle":"x","definition":"nodes: [\n"}`, 400, orcheo.EINVALID, ""},
			{"BadHandle", "POST", "/api/workflows", `{"handle":"Bad Handle","definition":` + okDefinition + `}`, 400, orcheo.EINVALID, "handle"},
			{"BadQueue", "POST", "/api/workflows", `{"handle":"x","queue":"no way","definition":` + okDefinition + `}`, 400, orcheo.EINVALID, "queue"},
			{"TooLarge", "POST", "/api/workflows", `{"handle":"x","name":"` + strings.Repeat("n", 5000) + `","definition":` + okDefinition + `}`, 413, orcheo.ETOOLARGE, "larger than 4096"},
			{"WrongMethod", "PATCH", "/api/workflows/exists", `{}`, 405, orcheo.EMETHOD, ""},
			{"UnknownWorkflowVersion", "POST", "/api/workflows/nope/versions", `{"definition":` + okDefinition + `}`, 404, orcheo.ENOTFOUND, ""},
			{"VersionMalformed", "POST", "/api/workflows/exists/versions", `{"definition":`, 400, orcheo.EINVALID, "invalid JSON"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := do(t, e, tc.method, tc.path, testToken, "application/json", tc.body)
				wantError(t, resp, body, tc.status, tc.code)
				if !strings.Contains(body, tc.message) {
					t.Fatalf("body %s does not mention %q", body, tc.message)
				}
				e.unchanged(t, wfs, runs)
			})
		}
		if vs, _ := e.client.FindWorkflowVersions(ctx, "exists"); len(vs) != 1 {
			t.Fatalf("%d versions of exists", len(vs))
		}
	})
}
