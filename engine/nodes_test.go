package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/sirupsen/logrus"
)

// loopbackEngine returns an Engine whose http nodes may reach loopback
// (the test servers), plus opts applied on top.
func loopbackEngine(tb testing.TB, opts engine.Options) *engine.Engine {
	tb.Helper()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	opts.Logger = logger
	opts.HTTP.AllowCIDRs = append(opts.HTTP.AllowCIDRs, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	return engine.New(opts)
}

func run(tb testing.TB, e *engine.Engine, ctx context.Context, def, input string, opts orcheo.ExecuteOptions) *orcheo.Execution {
	tb.Helper()
	c, err := e.Compile([]byte(def))
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	r := &orcheo.Run{ID: "run-1", WorkflowID: "wf-1", Attempt: 1, TriggeredBy: orcheo.TriggerManual}
	if input != "" {
		r.Input = []byte(input)
	}
	return e.Execute(ctx, c, r, opts)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestNodes_Branching covers if, switch, skipped steps, retry and
// continue_on_error, and the env and run variables.
func TestNodes_Branching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, def, input, output, err string
		steps                         []stepSummary
	}{
		{
			name: "IfThen",
			def: `{"nodes":[
				{"id":"check","type":"if","condition":"input.n > 10","then":"big","else":"small"},
				{"id":"big","type":"set","values":{"size":"\"big\""}},
				{"id":"small","type":"set","values":{"size":"\"small\""}},
				{"id":"after_small","type":"log","message":"\"only after small\""}],
				"edges":[{"from":"small","to":"after_small"}]}`,
			input:  `{"n":11}`,
			output: `{"size":"big"}`,
			steps: []stepSummary{
				{"check", "succeeded", `{"branch":"big","result":true}`, ""},
				{"big", "succeeded", `{"size":"big"}`, ""},
				{"small", "skipped", "", ""},
				{"after_small", "skipped", "", ""},
			},
		},
		{
			name: "IfElseJoins",
			def: `{"nodes":[
				{"id":"check","type":"if","condition":"input.n > 10","then":"big","else":"small"},
				{"id":"big","type":"set","values":{"size":"\"big\""},"next":"done"},
				{"id":"small","type":"set","values":{"size":"\"small\""},"next":"done"},
				{"id":"done","type":"set","values":{"msg":"state.size + \"!\""}}]}`,
			input:  `{"n":1}`,
			output: `{"msg":"small!","size":"small"}`,
			steps: []stepSummary{
				{"check", "succeeded", `{"branch":"small","result":false}`, ""},
				{"big", "skipped", "", ""},
				{"small", "succeeded", `{"size":"small"}`, ""},
				{"done", "succeeded", `{"msg":"small!"}`, ""},
			},
		},
		{
			name:   "IfWithoutElse",
			def:    `{"nodes":[{"id":"check","type":"if","condition":"false","then":"x"},{"id":"x","type":"set","values":{"x":"1"}}]}`,
			output: `{}`,
			steps:  []stepSummary{{"check", "succeeded", `{"branch":null,"result":false}`, ""}, {"x", "skipped", "", ""}},
		},
		{
			name:   "IfNotBool",
			def:    `{"nodes":[{"id":"check","type":"if","condition":"input.n","then":"x"},{"id":"x","type":"set","values":{"x":"1"}}]}`,
			input:  `{"n":3}`,
			output: `{}`,
			err:    "node \"check\": field \"condition\": must give true or false, got 3 (expression `input.n`)",
			steps:  []stepSummary{{"check", "failed", "", "field \"condition\": must give true or false, got 3 (expression `input.n`)"}},
		},
		{
			name: "SwitchFirstMatch",
			def: `{"nodes":[
				{"id":"route","type":"switch","cases":[{"when":"input.kind == \"a\"","to":"a"},{"when":"input.kind != \"\"","to":"b"}],"default":"other"},
				{"id":"a","type":"set","values":{"got":"\"a\""}},
				{"id":"b","type":"set","values":{"got":"\"b\""}},
				{"id":"other","type":"set","values":{"got":"\"other\""}}]}`,
			input:  `{"kind":"z"}`,
			output: `{"got":"b"}`,
			steps: []stepSummary{
				{"route", "succeeded", `{"branch":"b","case":1}`, ""},
				{"a", "skipped", "", ""}, {"b", "succeeded", `{"got":"b"}`, ""}, {"other", "skipped", "", ""},
			},
		},
		{
			name: "SwitchDefault",
			def: `{"nodes":[
				{"id":"route","type":"switch","cases":[{"when":"input.kind == \"a\"","to":"a"}],"default":"other"},
				{"id":"a","type":"set","values":{"got":"\"a\""}},
				{"id":"other","type":"set","values":{"got":"\"other\""}}]}`,
			output: `{"got":"other"}`,
			steps: []stepSummary{
				{"route", "succeeded", `{"branch":"other","case":null}`, ""},
				{"a", "skipped", "", ""}, {"other", "succeeded", `{"got":"other"}`, ""},
			},
		},
		{
			name: "ContinueOnError",
			def: `{"nodes":[
				{"id":"boom","type":"fail","message":"\"nope\"","continue_on_error":true},
				{"id":"after","type":"set","values":{"saw":"steps.boom.error + \"/\" + steps.boom.status"}}]}`,
			output: `{"saw":"nope/failed"}`,
			steps:  []stepSummary{{"boom", "failed", "", "nope"}, {"after", "succeeded", `{"saw":"nope/failed"}`, ""}},
		},
		{
			name: "EnvAndRun",
			def: `{"nodes":[{"id":"a","type":"set","values":{
				"region":"env.REGION","missing":"env.SECRET ?? \"unset\"","slot":"run.scheduled_for ?? \"none\""}}]}`,
			output: `{"missing":"unset","region":"eu-west","slot":"none"}`,
			steps:  []stepSummary{{"a", "succeeded", `{"missing":"unset","region":"eu-west","slot":"none"}`, ""}},
		},
	}
	e := loopbackEngine(t, engine.Options{Env: map[string]string{"REGION": "eu-west"}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := run(t, e, context.Background(), tc.def, tc.input, orcheo.ExecuteOptions{})
			if string(x.Output) != tc.output || errText(x.Err) != tc.err {
				t.Errorf("output %s, err %q; want %s, %q", x.Output, errText(x.Err), tc.output, tc.err)
			}
			if got := summarize(x.Steps); fmt.Sprint(got) != fmt.Sprint(tc.steps) {
				t.Errorf("steps:\n got %+v\nwant %+v", got, tc.steps)
			}
		})
	}
}

// TestNodes_Retry retries a transient http failure and records one step
// per try; a permanent failure is not retried.
func TestNodes_Retry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if r.URL.Path == "/flaky" && n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	e := loopbackEngine(t, engine.Options{})

	x := run(t, e, context.Background(), `{"nodes":[{"id":"call","type":"http","url":"`+srv.URL+`/flaky",
		"retry":{"max_attempts":3,"backoff":"1ms"}}]}`, "", orcheo.ExecuteOptions{})
	if x.Err != nil || len(x.Steps) != 3 {
		t.Fatalf("err %v, %d steps", x.Err, len(x.Steps))
	}
	for i, st := range x.Steps {
		want := orcheo.StepFailed
		if i == 2 {
			want = orcheo.StepSucceeded
		}
		if st.Status != want || st.NodeAttempt != i+1 || st.Seq != i+1 || st.Node != "call" {
			t.Errorf("step %d = %+v", i, st)
		}
	}
	if !strings.Contains(x.Steps[0].Error, "status 503") {
		t.Errorf("first try's error = %q", x.Steps[0].Error)
	}

	x = run(t, e, context.Background(), `{"nodes":[{"id":"call","type":"http","url":"`+srv.URL+`/missing",
		"retry":{"max_attempts":3,"backoff":"1ms"}}]}`, "", orcheo.ExecuteOptions{})
	if len(x.Steps) != 1 || !strings.Contains(errText(x.Err), "status 404 Not Found (expected 2xx)") {
		t.Fatalf("a 404 is not transient: err %v, %d steps", x.Err, len(x.Steps))
	}
}

// TestNodes_HTTP calls local test servers.
func TestNodes_HTTP(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Seen", r.Header.Get("X-Token"))
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "q": r.URL.Query().Get("q"),
			"type": r.Header.Get("Content-Type"), "body": string(body)})
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "plain text") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2048)) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/text", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := loopbackEngine(t, engine.Options{HTTP: engine.HTTPOptions{MaxResponseBytes: 1024}})

	tests := []struct {
		name, node, output, err string
	}{
		{"JSONPost", `"method":"POST","url":"` + srv.URL + `/echo","query":{"q":"{{ input.q }}"},"headers":{"X-Token":"t-{{ input.n }}"},"json":"{\"name\": input.q}"`,
			`{"body":{"body":"{\"name\":\"a b\"}","method":"POST","path":"/echo","q":"a b","type":"application/json"},"headers":{"content-length":"`, ""},
		{"TextBody", `"method":"PUT","url":"` + srv.URL + `/echo","body":"n={{ input.n }}","content_type":"text/csv"`,
			`{"body":{"body":"n=7","method":"PUT","path":"/echo","q":"","type":"text/csv"}`, ""},
		{"TextResponse", `"url":"` + srv.URL + `/text"`, `{"body":"plain text"`, ""},
		{"Non2xx", `"url":"` + srv.URL + `/fail"`, "", `node "call": status 500 Internal Server Error (expected 2xx)`},
		{"ExpectedStatus", `"url":"` + srv.URL + `/teapot","expect_status":[418,"2xx"]`, `{"body":null`, ""},
		{"Oversize", `"url":"` + srv.URL + `/big"`, "", `node "call": response body is larger than 1024 bytes`},
		{"RedirectFollowed", `"url":"` + srv.URL + `/hop"`, `{"body":"plain text"`, ""},
		{"RedirectLoop", `"url":"` + srv.URL + `/loop","max_redirects":3`, "", `node "call": stopped after 3 redirects`},
		{"NoRedirects", `"url":"` + srv.URL + `/hop","max_redirects":0,"expect_status":[302]`, `{"body":`, ""},
		{"NodeTimeout", `"url":"` + srv.URL + `/slow","timeout":"100ms"`, "", `node "call": timed out after 100ms`},
		{"BadURL", `"url":"ftp://{{ input.q }}"`, "", `node "call": field "url": "ftp://a b" is not an http or https URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := run(t, e, context.Background(), `{"nodes":[{"id":"call","type":"http",`+tc.node+`}]}`, `{"q":"a b","n":7}`, orcheo.ExecuteOptions{})
			if errText(x.Err) != tc.err {
				t.Fatalf("err = %q, want %q", errText(x.Err), tc.err)
			}
			if tc.err == "" && !strings.HasPrefix(string(x.Steps[0].Output), tc.output) {
				t.Fatalf("output = %s, want prefix %s", x.Steps[0].Output, tc.output)
			}
			if tc.name != "BadURL" && !strings.Contains(string(x.Steps[0].Input), `"url":"`) {
				t.Fatalf("input summary = %s", x.Steps[0].Input)
			}
		})
	}
	t.Run("StatusHeadersInOutput", func(t *testing.T) {
		t.Parallel()
		x := run(t, e, context.Background(), `{"nodes":[{"id":"call","type":"http","url":"`+srv.URL+`/echo","headers":{"X-Token":"abc"}},
			{"id":"use","type":"set","values":{"status":"steps.call.output.status","seen":"steps.call.output.headers[\"x-seen\"]","method":"steps.call.output.body.method"}}]}`, "", orcheo.ExecuteOptions{})
		if x.Err != nil || string(x.Output) != `{"method":"GET","seen":"abc","status":200}` {
			t.Fatalf("output %s, err %v", x.Output, x.Err)
		}
		if strings.Contains(string(x.Steps[0].Input), "abc") {
			t.Fatalf("header values leaked into the input summary: %s", x.Steps[0].Input)
		}
	})
}

// TestNodes_HTTPRefusesInternal checks the address guard: loopback is
// refused unless allowed, and the error says how to allow it.
func TestNodes_HTTPRefusesInternal(t *testing.T) {
	t.Parallel()
	hit := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- struct{}{} }))
	t.Cleanup(srv.Close)
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	strict := engine.New(engine.Options{Logger: logger})
	for _, url := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "http://[::1]:1/", "http://10.1.2.3:1/", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0:1/"} {
		x := run(t, strict, context.Background(), `{"nodes":[{"id":"call","type":"http","url":"`+url+`","retry":{"max_attempts":3,"backoff":"1ms"}}]}`, "", orcheo.ExecuteOptions{})
		if !strings.Contains(errText(x.Err), "refused to connect to") || !strings.Contains(errText(x.Err), "ORCHEO_HTTP_ALLOW_PRIVATE") {
			t.Errorf("%s: err = %v, want a refusal", url, x.Err)
		}
		if len(x.Steps) != 1 {
			t.Errorf("%s: a refusal is retried (%d steps)", url, len(x.Steps))
		}
	}
	select {
	case <-hit:
		t.Fatal("the loopback server was reached")
	default:
	}
	allowed := engine.New(engine.Options{Logger: logger, HTTP: engine.HTTPOptions{AllowPrivate: true}})
	if x := run(t, allowed, context.Background(), `{"nodes":[{"id":"call","type":"http","url":"`+srv.URL+`"}]}`, "", orcheo.ExecuteOptions{}); x.Err != nil {
		t.Fatalf("with AllowPrivate: %v", x.Err)
	}
}

// TestNodes_CancelMidWait cancels a run in the middle of a delay and of an
// HTTP call: both end at once, the step fails "cancelled".
func TestNodes_CancelMidWait(t *testing.T) {
	t.Parallel()
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-r.Context().Done() // the engine's cancel aborts the call
	}))
	t.Cleanup(srv.Close)
	e := loopbackEngine(t, engine.Options{})
	for name, def := range map[string]string{
		"Delay": `{"nodes":[{"id":"wait","type":"delay","duration":"10m"},{"id":"never","type":"set","values":{"x":"1"}}]}`,
		"HTTP":  `{"nodes":[{"id":"wait","type":"http","url":"` + srv.URL + `"},{"id":"never","type":"set","values":{"x":"1"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			started := make(chan struct{}, 4)
			rec := orcheo.StepRecorderFunc(func(_ context.Context, st *orcheo.RunStep) {
				if st.Status == orcheo.StepRunning && len(st.Input) > 0 {
					started <- struct{}{}
				}
			})
			go func() {
				<-started
				if name == "HTTP" {
					<-reached
				}
				cancel()
			}()
			begin := time.Now()
			x := run(t, e, ctx, def, "", orcheo.ExecuteOptions{Recorder: rec})
			if !errors.Is(x.Err, context.Canceled) || errText(x.Err) != `node "wait": cancelled` {
				t.Fatalf("err = %v", x.Err)
			}
			if len(x.Steps) != 1 || x.Steps[0].Status != orcheo.StepFailed || time.Since(begin) > time.Minute {
				t.Fatalf("steps = %+v", summarize(x.Steps))
			}
		})
	}
}

// TestNodes_Delay waits for a short duration and for an until time, and
// rejects waits beyond MaxDelay.
func TestNodes_Delay(t *testing.T) {
	t.Parallel()
	e := loopbackEngine(t, engine.Options{MaxDelay: time.Minute})
	x := run(t, e, context.Background(), `{"nodes":[{"id":"a","type":"delay","duration":"20ms"},{"id":"b","type":"delay","until":"input.at"}]}`,
		`{"at":"2000-01-01T00:00:00Z"}`, orcheo.ExecuteOptions{})
	if x.Err != nil || !strings.Contains(string(x.Steps[1].Output), `"waited":"0s"`) || !strings.Contains(string(x.Steps[0].Input), `"until"`) {
		t.Fatalf("err %v, steps %+v", x.Err, summarize(x.Steps))
	}
	if _, err := e.Compile([]byte(`{"nodes":[{"id":"a","type":"delay","duration":"2m"}]}`)); err == nil ||
		!strings.Contains(err.Error(), `node "a": field "duration": 2m0s is longer than the longest delay allowed (1m0s)`) {
		t.Fatalf("Compile of a long delay: %v", err)
	}
	x = run(t, e, context.Background(), `{"nodes":[{"id":"a","type":"delay","until":"input.at"}]}`, `{"at":"2999-01-01T00:00:00Z"}`, orcheo.ExecuteOptions{})
	if !strings.Contains(errText(x.Err), "the longest delay allowed") {
		t.Fatalf("until far ahead: %v", x.Err)
	}
	x = run(t, e, context.Background(), `{"nodes":[{"id":"a","type":"delay","until":"input.at"}]}`, `{"at":"tomorrow"}`, orcheo.ExecuteOptions{})
	if !strings.Contains(errText(x.Err), `field "until": "tomorrow" is not an RFC 3339 time`) {
		t.Fatalf("bad until: %v", x.Err)
	}
}

// fakeStarter is an in-memory orcheo.RunStarter whose children finish as
// the test says.
type fakeStarter struct {
	mu       sync.Mutex
	runs     map[string]*orcheo.Run
	started  []orcheo.ChildRun
	finishAs orcheo.RunStatus
	polls    int
}

func (f *fakeStarter) StartChildRun(_ context.Context, c orcheo.ChildRun) (*orcheo.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Workflow == "missing" {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", c.Workflow)
	}
	key := fmt.Sprintf("%s/%d/%s", c.Parent.ID, c.Parent.Attempt, c.Node)
	if r, ok := f.runs[key]; ok {
		return r, nil
	}
	f.started = append(f.started, c)
	r := &orcheo.Run{ID: "child-" + c.Node, Status: orcheo.RunPending, Input: c.Input}
	f.runs[key] = r
	return r, nil
}

func (f *fakeStarter) FindRunByID(_ context.Context, id string) (*orcheo.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	for _, r := range f.runs {
		if r.ID == id {
			cp := *r
			if f.polls >= 2 { // pending at first, then done
				cp.Status = f.finishAs
				cp.Output = json.RawMessage(`{"doubled":` + string(mustGet(r.Input, "n")) + `}`)
				if f.finishAs == orcheo.RunFailed {
					cp.Error = `node "x": broken`
				}
			}
			return &cp, nil
		}
	}
	return nil, orcheo.Errorf(orcheo.ENOTFOUND, "run %q not found", id)
}

func mustGet(raw json.RawMessage, key string) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m[key]
}

// TestNodes_Workflow starts a child run, waits for it and uses its output;
// a failed child fails the node; without a starter the node fails.
func TestNodes_Workflow(t *testing.T) {
	t.Parallel()
	def := `{"nodes":[{"id":"child","type":"workflow","workflow":"double","input":"{\"n\": input.n}"},
		{"id":"use","type":"set","values":{"got":"steps.child.output.output.doubled"}}]}`
	ok := &fakeStarter{runs: map[string]*orcheo.Run{}, finishAs: orcheo.RunSucceeded}
	e := loopbackEngine(t, engine.Options{Runs: ok, ChildPollInterval: 5 * time.Millisecond})
	x := run(t, e, context.Background(), def, `{"n":21}`, orcheo.ExecuteOptions{})
	if x.Err != nil || string(x.Output) != `{"got":21}` {
		t.Fatalf("output %s, err %v", x.Output, x.Err)
	}
	if len(ok.started) != 1 || ok.started[0].Workflow != "double" || string(ok.started[0].Input) != `{"n":21}` || ok.started[0].Parent.ID != "run-1" {
		t.Fatalf("started %+v", ok.started)
	}

	failed := &fakeStarter{runs: map[string]*orcheo.Run{}, finishAs: orcheo.RunFailed}
	e = loopbackEngine(t, engine.Options{Runs: failed, ChildPollInterval: 5 * time.Millisecond})
	x = run(t, e, context.Background(), def, `{"n":1}`, orcheo.ExecuteOptions{})
	if errText(x.Err) != `node "child": child run child-child failed: node "x": broken` {
		t.Fatalf("err = %v", x.Err)
	}

	x = run(t, e, context.Background(), `{"nodes":[{"id":"c","type":"workflow","workflow":"missing","wait":false}]}`, "", orcheo.ExecuteOptions{})
	if errText(x.Err) != `node "c": field "workflow": workflow "missing" not found` {
		t.Fatalf("missing workflow: %v", x.Err)
	}
	x = run(t, e, context.Background(), `{"nodes":[{"id":"c","type":"workflow","workflow":"double","wait":false}]}`, "", orcheo.ExecuteOptions{})
	if x.Err != nil || string(x.Steps[0].Output) != `{"run_id":"child-c","status":"pending"}` {
		t.Fatalf("no wait: %s, %v", x.Steps[0].Output, x.Err)
	}

	none := loopbackEngine(t, engine.Options{})
	x = run(t, none, context.Background(), `{"nodes":[{"id":"c","type":"workflow","workflow":"double"}]}`, "", orcheo.ExecuteOptions{})
	if !strings.Contains(errText(x.Err), "cannot start child runs") {
		t.Fatalf("without a starter: %v", x.Err)
	}
}

// TestExecute_Recorder checks that every step is reported running, then
// ended, in order, and that large outputs are truncated in the record only.
func TestExecute_Recorder(t *testing.T) {
	t.Parallel()
	var got []string
	rec := orcheo.StepRecorderFunc(func(_ context.Context, st *orcheo.RunStep) {
		got = append(got, fmt.Sprintf("%d:%s:%s", st.Seq, st.Node, st.Status))
	})
	e := loopbackEngine(t, engine.Options{MaxStepOutputBytes: 100})
	x := run(t, e, context.Background(), `{"nodes":[
		{"id":"big","type":"set","values":{"s":"repeat(\"x\", 500)"},"next":"check"},
		{"id":"check","type":"if","condition":"len(steps.big.output.s) == 500","then":"yes","else":"no"},
		{"id":"yes","type":"log","message":"\"whole\""},
		{"id":"no","type":"log","message":"\"cut\""}]}`, "", orcheo.ExecuteOptions{Recorder: rec})
	if x.Err != nil {
		t.Fatal(x.Err)
	}
	want := []string{"1:big:running", "1:big:succeeded", "2:check:running", "2:check:succeeded", "3:yes:running", "3:yes:succeeded", "4:no:skipped"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	var marker struct {
		Truncated bool   `json:"truncated"`
		Bytes     int    `json:"bytes"`
		Preview   string `json:"preview"`
	}
	if err := json.Unmarshal(x.Steps[0].Output, &marker); err != nil || !marker.Truncated || marker.Bytes != 508 || !strings.HasPrefix(marker.Preview, `{"s":"xxx`) {
		t.Fatalf("truncated output = %s (%v)", x.Steps[0].Output, err)
	}
	if !strings.Contains(string(x.Output), strings.Repeat("x", 500)) {
		t.Fatal("the run's state lost the whole value")
	}
}
