package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/secrets"
)

// branchDefinition has an if node: its then branch and its else branch
// join at "end".
const branchDefinition = `{"nodes":[
	{"id":"start","type":"set","values":{"n":"input.body.n ?? 1"},"next":"check"},
	{"id":"check","type":"if","condition":"state.n > 0","then":"big","else":"small"},
	{"id":"big","type":"log","message":"\"big\"","next":"end"},
	{"id":"small","type":"log","message":"\"small\"","next":"end"},
	{"id":"end","type":"set","values":{"done":"true"}}]}`

// newWorkflow creates a workflow from a JSON definition.
func (e *env) newWorkflow(t *testing.T, handle, definition string) *orcheo.Workflow {
	t.Helper()
	def, err := e.srv.Engine.Compile([]byte(definition))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Workflows.CreateWorkflow(context.Background(), &orcheo.Workflow{Handle: handle}, def); err != nil {
		t.Fatal(err)
	}
	wf, err := e.store.Workflows.FindWorkflowByRef(context.Background(), handle)
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func TestWorkflowPages_NeedSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	for _, path := range []string{"/ui/workflows", "/ui/workflows/greet", "/ui/system"} {
		if a := b.get(path); a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without a session: %d to %q, want 303 to the login form", path, a.status, a.header.Get("Location"))
		}
	}
	a := b.post("/ui/workflows/greet/run", url.Values{"csrf": {"x"}, "input": {"{}"}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login" {
		t.Errorf("run now without a session: %d to %q", a.status, a.header.Get("Location"))
	}
	if n := e.countRuns(t); n != 0 {
		t.Errorf("%d runs after a run-now without a session", n)
	}
}

func (e *env) countRuns(t *testing.T) int {
	t.Helper()
	runs, _, err := e.store.Runs.ListRuns(context.Background(), orcheo.RunFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(runs)
}

func TestWorkflowsPage(t *testing.T) {
	e := newEnv(t)
	e.newWorkflow(t, "branchy", branchDefinition)
	b := e.browser(t)
	b.login(readToken)
	a := b.get("/ui/workflows")
	if a.status != http.StatusOK {
		t.Fatalf("workflows: %d %s", a.status, a.body)
	}
	for _, want := range []string{`data-workflow="greet"`, `data-workflow="branchy"`, `href="/ui/workflows/branchy"`, "2 workflows"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("workflows page lacks %q", want)
		}
	}
	if a := b.get("/ui/workflows?offset=-1"); a.status != http.StatusBadRequest {
		t.Errorf("offset -1: %d, want 400", a.status)
	}
}

var (
	nodeRE = regexp.MustCompile(`<g class="node([^"]*)" data-node="([^"]+)"`)
	edgeRE = regexp.MustCompile(`<g class="edge([^"]*)" data-from="([^"]+)" data-to="([^"]+)"`)
	rectRE = regexp.MustCompile(`data-node="([^"]+)"[^>]*>\s*<title>[^<]*</title>\s*<rect x="(\d+)" y="(\d+)"`)
)

func TestWorkflowPage_Graph(t *testing.T) {
	e := newEnv(t)
	wf := e.newWorkflow(t, "branchy", branchDefinition)
	b := e.browser(t)
	b.login(readToken)
	a := b.get("/ui/workflows/branchy")
	if a.status != http.StatusOK {
		t.Fatalf("workflow page: %d %s", a.status, a.body)
	}
	nodes := map[string]string{}
	for _, m := range nodeRE.FindAllStringSubmatch(a.body, -1) {
		nodes[m[2]] = m[1]
	}
	if len(nodes) != 5 {
		t.Fatalf("graph nodes = %v, want the 5 nodes", nodes)
	}
	edges := map[string]bool{}
	for _, m := range edgeRE.FindAllStringSubmatch(a.body, -1) {
		edges[m[2]+"->"+m[3]] = true
	}
	for _, want := range []string{"start->check", "check->big", "check->small", "big->end", "small->end"} {
		if !edges[want] {
			t.Errorf("graph lacks edge %s (has %v)", want, edges)
		}
	}
	if len(edges) != 5 {
		t.Errorf("graph edges = %v, want 5", edges)
	}
	// Layers: start, check, {big, small} side by side, end.
	y := map[string]string{}
	for _, m := range rectRE.FindAllStringSubmatch(a.body, -1) {
		y[m[1]] = m[3]
	}
	if y["big"] != y["small"] || y["start"] == y["check"] || y["check"] == y["big"] || y["end"] == y["big"] {
		t.Errorf("layers by y = %v: want start, check, big|small, end on their own rows", y)
	}
	for _, want := range []string{`>then</text>`, `>else</text>`, `id="definition"`, `&#34;condition&#34;: &#34;state.n &gt; 0&#34;`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("workflow page lacks %q", want)
		}
	}
	for _, m := range append(nodeRE.FindAllStringSubmatch(a.body, -1), edgeRE.FindAllStringSubmatch(a.body, -1)...) {
		if strings.Contains(m[1], "taken") {
			t.Errorf("%v is marked taken with no run chosen", m[0])
		}
	}

	// ?run= marks what the run ran: start, check, big, end, and the
	// edges between them; small was skipped.
	run, _, err := e.srv.Submitter.SubmitRun(context.Background(), wf, &orcheo.Run{TriggeredBy: orcheo.TriggerManual, Input: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	claimed := e.claim(t, run.ID)
	now := time.Now()
	var steps []*orcheo.RunStep
	for i, n := range []struct {
		node string
		st   orcheo.StepStatus
	}{{"start", orcheo.StepSucceeded}, {"check", orcheo.StepSucceeded}, {"big", orcheo.StepSucceeded}, {"small", orcheo.StepSkipped}, {"end", orcheo.StepSucceeded}} {
		steps = append(steps, &orcheo.RunStep{RunID: run.ID, Attempt: claimed.Attempt, Seq: i + 1, Node: n.node, NodeType: "set", Status: n.st, StartedAt: now, CompletedAt: &now})
	}
	if _, err := e.store.Runs.CompleteRun(context.Background(), run.ID, claimed.Attempt, orcheo.RunCompletion{Status: orcheo.RunSucceeded, Steps: steps}); err != nil {
		t.Fatal(err)
	}
	a = b.get("/ui/workflows/branchy?run=" + run.ID)
	if a.status != http.StatusOK {
		t.Fatalf("workflow page with a run: %d %s", a.status, a.body)
	}
	taken := map[string]bool{}
	for _, m := range nodeRE.FindAllStringSubmatch(a.body, -1) {
		taken[m[2]] = strings.Contains(m[1], "taken")
	}
	if !taken["start"] || !taken["check"] || !taken["big"] || !taken["end"] || taken["small"] {
		t.Errorf("taken nodes = %v, want all but small", taken)
	}
	takenEdges := map[string]bool{}
	for _, m := range edgeRE.FindAllStringSubmatch(a.body, -1) {
		takenEdges[m[2]+"->"+m[3]] = strings.Contains(m[1], "taken")
	}
	if !takenEdges["start->check"] || !takenEdges["check->big"] || !takenEdges["big->end"] || takenEdges["check->small"] || takenEdges["small->end"] {
		t.Errorf("taken edges = %v, want the path start, check, big, end", takenEdges)
	}

	// Without edges the nodes run in list order, and are drawn so.
	e.newWorkflow(t, "chain", `{"nodes":[{"id":"a","type":"log","message":"1"},{"id":"b","type":"log","message":"2"},{"id":"c","type":"log","message":"3"}]}`)
	chain := map[string]bool{}
	for _, m := range edgeRE.FindAllStringSubmatch(b.get("/ui/workflows/chain").body, -1) {
		chain[m[2]+"->"+m[3]] = true
	}
	if len(chain) != 2 || !chain["a->b"] || !chain["b->c"] {
		t.Errorf("a definition without edges is drawn with %v, want a->b->c", chain)
	}

	// A run of another workflow, or no run, is a 404; so is a bad ref.
	other := e.newRun(t, `{}`)
	for _, path := range []string{"/ui/workflows/branchy?run=" + other.ID, "/ui/workflows/branchy?run=" + orcheo.NewID(),
		"/ui/workflows/branchy?run=nope", "/ui/workflows/nope", "/ui/workflows/NOT%20A%20HANDLE"} {
		if a := b.get(path); a.status != http.StatusNotFound || !strings.Contains(a.body, "error-box") {
			t.Errorf("GET %s: %d, want a 404 page", path, a.status)
		}
	}
}

func TestWorkflowPage_WebhookSecretsNeverShown(t *testing.T) {
	e := newEnv(t)
	const secret, prev, headerValue, queryValue = "whsec-top-secret-0123456789", "whsec-old-secret-9876543210", "hdr-secret-value-42", "qry-secret-value-43"
	at := time.Now().UTC()
	key, _ := secrets.NewKey()
	box, err := secrets.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := box.Seal(secret)
	sealedPrev, _ := box.Seal(prev)
	cfg := &orcheo.WebhookConfig{Enabled: true, Methods: []string{"POST"},
		RequiredHeaders: map[string]string{"X-Shared": headerValue}, RequiredQuery: map[string]string{"token": queryValue},
		Verify: &orcheo.WebhookVerify{Type: orcheo.VerifyGitHub, SealedSecret: sealed, SecretSetAt: &at, SealedPreviousSecret: sealedPrev, PreviousSecretSetAt: &at}}
	if err := e.store.Triggers.SetWebhookConfig(context.Background(), e.wf.ID, cfg); err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{adminToken, readToken} {
		b := e.browser(t)
		b.login(token)
		a := b.get("/ui/workflows/greet")
		if a.status != http.StatusOK {
			t.Fatalf("workflow page: %d %s", a.status, a.body)
		}
		for _, leak := range []string{secret, prev, headerValue, queryValue, "whsec", sealed, sealedPrev, sealed[:16]} {
			if strings.Contains(a.body, leak) {
				t.Errorf("the workflow page shows %q", leak)
			}
		}
		for _, want := range []string{"/api/workflows/greet/triggers/webhook", "github", "x-shared", "token=", "previous secret still accepted", "masked"} {
			if !strings.Contains(strings.ToLower(a.body), want) {
				t.Errorf("the workflow page lacks %q", want)
			}
		}
	}
}

func TestWorkflowPage_CronSlots(t *testing.T) {
	e := newEnv(t)
	tr := &orcheo.CronTrigger{WorkflowID: e.wf.ID, Expression: "30 9 * * 1-5", Timezone: "America/New_York"}
	if err := (schedule.Scheduler{}).CheckCronTrigger(tr); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Cron.SetCronTrigger(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.login(readToken)
	a := b.get("/ui/workflows/greet")
	if a.status != http.StatusOK {
		t.Fatalf("workflow page: %d", a.status)
	}
	got := regexp.MustCompile(`<li><time datetime="([^"]+)">([^<]+)</time>`).FindAllStringSubmatch(a.body, -1)
	if len(got) != 5 {
		t.Fatalf("next slots = %v, want 5", got)
	}
	// The slots are the schedule package's, shown in the trigger's zone.
	ny, _ := time.LoadLocation("America/New_York")
	after := time.Now()
	for i, m := range got {
		next, err := (schedule.Scheduler{}).NextCronSlot(tr, after)
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != next.UTC().Format(time.RFC3339) {
			t.Errorf("slot %d = %s, want %s", i, m[1], next.UTC().Format(time.RFC3339))
		}
		if local := next.In(ny); !strings.Contains(m[2], local.Format("15:04:05")) || local.Format("15:04") != "09:30" ||
			!(strings.Contains(m[2], "EST") || strings.Contains(m[2], "EDT")) {
			t.Errorf("slot %d shows %q, want 09:30 New York time", i, m[2])
		}
		after = next
	}
	if !strings.Contains(a.body, "<code>30 9 * * 1-5</code>") || !strings.Contains(a.body, "America/New_York") {
		t.Error("the page lacks the expression or the zone")
	}
	// Without a trigger the page says so.
	e.newWorkflow(t, "nocron", branchDefinition)
	if a := b.get("/ui/workflows/nocron"); !strings.Contains(a.body, "No cron trigger.") {
		t.Error("a workflow without a trigger does not say so")
	}
}

func TestWorkflowRunNow(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login(adminToken)
	page := b.get("/ui/workflows/greet")
	if !strings.Contains(page.body, `id="run-now"`) {
		t.Fatal("an admin's workflow page has no run-now form")
	}
	csrf := csrfRE.FindStringSubmatch(page.body)[1]

	t.Run("Starts", func(t *testing.T) {
		a := b.post("/ui/workflows/greet/run", url.Values{"csrf": {csrf}, "input": {`{"name": "Ada"}`}, "idempotency_key": {"ui-key-1"}})
		loc := a.header.Get("Location")
		if a.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/runs/") || !strings.HasSuffix(loc, "?done=started") {
			t.Fatalf("run now: %d to %q: %s", a.status, loc, a.body)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(loc, "/ui/runs/"), "?done=started")
		run := e.run(t, id)
		if run.TriggeredBy != orcheo.TriggerManual || run.WorkflowID != e.wf.ID || string(run.Input) != `{"name":"Ada"}` && string(run.Input) != `{"name": "Ada"}` || run.IdempotencyKey != "ui-key-1" {
			t.Fatalf("run = %+v", run)
		}
		if e.queue.count(id) != 1 {
			t.Fatalf("the run was published %d times, want 1 (through the submitter)", e.queue.count(id))
		}
		if a := b.get(loc); !strings.Contains(a.body, "The run was started.") {
			t.Error("the run page does not say the run was started")
		}
		// The same key again is the same run.
		a = b.post("/ui/workflows/greet/run", url.Values{"csrf": {csrf}, "input": {`{}`}, "idempotency_key": {"ui-key-1"}})
		if a.header.Get("Location") != "/ui/runs/"+id+"?done=existing" {
			t.Fatalf("repeat key: %d to %q", a.status, a.header.Get("Location"))
		}
	})
	t.Run("BadJSON", func(t *testing.T) {
		before := e.countRuns(t)
		for _, input := range []string{`{"name": `, `{"a":1} {"b":2}`, "not json"} {
			a := b.post("/ui/workflows/greet/run", url.Values{"csrf": {csrf}, "input": {input}})
			if a.status != http.StatusBadRequest || !strings.Contains(a.body, "The input is not valid JSON") || !strings.Contains(a.body, `id="run-now-error"`) {
				t.Errorf("input %q: %d, want 400 with a message", input, a.status)
			}
			if !strings.Contains(a.body, ">"+strings.ReplaceAll(strings.TrimSpace(input), `"`, "&#34;")+"</textarea>") {
				t.Errorf("input %q is not kept in the form", input)
			}
		}
		if n := e.countRuns(t); n != before {
			t.Errorf("bad inputs made %d runs", n-before)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		big := `{"x":"` + strings.Repeat("a", 300<<10) + `"}`
		a := b.post("/ui/workflows/greet/run", url.Values{"csrf": {csrf}, "input": {big}})
		if a.status != http.StatusRequestEntityTooLarge {
			t.Errorf("a 300 KiB input: %d, want 413", a.status)
		}
	})
	t.Run("CSRF", func(t *testing.T) {
		before := e.countRuns(t)
		for name, form := range map[string]url.Values{"Missing": {"input": {"{}"}}, "Wrong": {"csrf": {"x" + csrf}, "input": {"{}"}}} {
			if a := b.post("/ui/workflows/greet/run", form); a.status != http.StatusForbidden {
				t.Errorf("%s CSRF: %d, want 403", name, a.status)
			}
		}
		evil := e.browser(t)
		evil.c.Jar = b.c.Jar
		evil.origin = "https://evil.example"
		if a := evil.post("/ui/workflows/greet/run", url.Values{"csrf": {csrf}, "input": {"{}"}}); a.status != http.StatusForbidden {
			t.Errorf("cross-origin run now: %d, want 403", a.status)
		}
		if n := e.countRuns(t); n != before {
			t.Errorf("refused forms made %d runs", n-before)
		}
	})
	t.Run("ReadToken", func(t *testing.T) {
		r := e.browser(t)
		r.login(readToken)
		page := r.get("/ui/workflows/greet")
		if strings.Contains(page.body, `id="run-now"`) {
			t.Error("a read token's workflow page shows the run-now form")
		}
		before := e.countRuns(t)
		if a := r.post("/ui/workflows/greet/run", url.Values{"csrf": {r.csrf()}, "input": {"{}"}}); a.status != http.StatusForbidden {
			t.Errorf("a read token's run now: %d, want 403", a.status)
		}
		if n := e.countRuns(t); n != before {
			t.Error("a read token started a run")
		}
	})
	t.Run("Archived", func(t *testing.T) {
		wf := e.newWorkflow(t, "gone", branchDefinition)
		if _, err := e.store.Workflows.ArchiveWorkflow(context.Background(), wf.ID); err != nil {
			t.Fatal(err)
		}
		if a := b.get("/ui/workflows/gone"); strings.Contains(a.body, `id="run-now"`) {
			t.Error("an archived workflow's page offers run now")
		}
		a := b.post("/ui/workflows/gone/run", url.Values{"csrf": {csrf}, "input": {"{}"}})
		if a.status != http.StatusConflict || !strings.Contains(a.body, "archived") {
			t.Errorf("run now of an archived workflow: %d, want 409 with a message", a.status)
		}
	})
}
