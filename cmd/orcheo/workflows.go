package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
)

func workflowCommands(e *env, cfg Config) map[string]command {
	return map[string]command{
		"create":   &workflowsCreate{env: e, cfg: cfg},
		"update":   &workflowsUpdate{env: e, cfg: cfg},
		"list":     &workflowsList{env: e, cfg: cfg},
		"show":     &workflowsShow{env: e, cfg: cfg},
		"versions": &workflowsVersions{env: e, cfg: cfg},
		"archive":  &workflowsArchive{env: e, cfg: cfg},
		"run":      &workflowsRun{env: e, cfg: cfg},
		"validate": &workflowsValidate{env: e, cfg: cfg},
	}
}

// workflowsValidate checks a definition offline with the same engine the
// API compiles uploads with: no API call, no configuration needed.
type workflowsValidate struct {
	*env
	cfg Config
}

func (c *workflowsValidate) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows validate")
	file := fs.String("f", "", "workflow definition file (JSON or YAML)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows validate -f FILE", pos); err != nil {
		return err
	}
	def, err := readDefinition(*file)
	if err != nil {
		return err
	}
	if _, err := engine.New(engine.Options{}).Compile(def); err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "%s: %s", *file, orcheo.ErrorMessage(err))
	}
	fmt.Fprintf(c.stdout, "%s: valid\n", *file)
	return nil
}

// readDefinition reads a workflow file named by -f.
func readDefinition(path string) ([]byte, error) {
	if path == "" {
		return nil, orcheo.Errorf(orcheo.EINVALID, "-f FILE is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "read %s: %v", path, err)
	}
	return b, nil
}

type workflowsCreate struct {
	*env
	cfg Config
}

func (c *workflowsCreate) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows create")
	file := fs.String("f", "", "workflow definition file (JSON or YAML)")
	handle := fs.String("handle", "", "handle (default: the file name without extension)")
	name := fs.String("name", "", "display name")
	queue := fs.String("queue", "", "queue its runs go to (default \"default\")")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows create -f FILE", pos); err != nil {
		return err
	}
	def, err := readDefinition(*file)
	if err != nil {
		return err
	}
	if *handle == "" {
		*handle = strings.TrimSuffix(filepath.Base(*file), filepath.Ext(*file))
	}
	wf, err := c.cfg.newClient().CreateWorkflow(ctx, *handle, *name, *queue, def)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, wf)
	}
	fmt.Fprintf(c.stdout, "created workflow %s (%s), version %d\n", wf.Handle, wf.ID, wf.LatestVersion)
	return nil
}

type workflowsUpdate struct {
	*env
	cfg Config
}

func (c *workflowsUpdate) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows update")
	file := fs.String("f", "", "workflow definition file (JSON or YAML)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows update REF -f FILE", pos, "REF"); err != nil {
		return err
	}
	def, err := readDefinition(*file)
	if err != nil {
		return err
	}
	v, err := c.cfg.newClient().CreateWorkflowVersion(ctx, pos[0], def)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, v)
	}
	fmt.Fprintf(c.stdout, "stored version %d of %s\n", v.Version, pos[0])
	return nil
}

type workflowsList struct {
	*env
	cfg Config
}

func (c *workflowsList) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows list")
	archived := fs.Bool("archived", false, "include archived workflows")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows list", pos); err != nil {
		return err
	}
	wfs, total, err := c.cfg.newClient().FindWorkflows(ctx, *archived)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]interface{}{"workflows": wfs, "total": total})
	}
	t := newTable(c.stdout, "HANDLE", "NAME", "VERSION", "QUEUE", "CREATED", "ID")
	for _, wf := range wfs {
		name := wf.Name
		if wf.Archived() {
			name += " (archived)"
		}
		t.row(wf.Handle, name, strconv.Itoa(wf.LatestVersion), wf.Queue, formatTime(&wf.CreatedAt), wf.ID)
	}
	return t.flush()
}

type workflowsShow struct {
	*env
	cfg Config
}

func (c *workflowsShow) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows show REF", pos, "REF"); err != nil {
		return err
	}
	cl := c.cfg.newClient()
	wf, err := cl.FindWorkflowByRef(ctx, pos[0])
	if err != nil {
		return err
	}
	hook, err := cl.FindWebhookConfig(ctx, wf.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]interface{}{"workflow": wf, "webhook": hook})
	}
	fmt.Fprintf(c.stdout, "Workflow  %s\nID        %s\nName      %s\nQueue     %s\nVersion   %d\nCreated   %s\n",
		wf.Handle, wf.ID, wf.Name, wf.Queue, wf.LatestVersion, formatTime(&wf.CreatedAt))
	if wf.Archived() {
		fmt.Fprintf(c.stdout, "Archived  %s\n", formatTime(wf.ArchivedAt))
	}
	state := "disabled"
	if hook.Enabled {
		methods := hook.Methods
		if len(methods) == 0 {
			methods = []string{"POST"}
		}
		state = "enabled (" + strings.Join(methods, ", ") + ") at " + c.cfg.URL + "/api/workflows/" + wf.Handle + "/triggers/webhook"
	}
	fmt.Fprintf(c.stdout, "Webhook   %s\n", state)
	return nil
}

type workflowsVersions struct {
	*env
	cfg Config
}

func (c *workflowsVersions) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows versions")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows versions REF", pos, "REF"); err != nil {
		return err
	}
	vs, err := c.cfg.newClient().FindWorkflowVersions(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, map[string]interface{}{"versions": vs})
	}
	t := newTable(c.stdout, "VERSION", "CREATED", "ID")
	for _, v := range vs {
		t.row(strconv.Itoa(v.Version), formatTime(&v.CreatedAt), v.ID)
	}
	return t.flush()
}

type workflowsArchive struct {
	*env
	cfg Config
}

func (c *workflowsArchive) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows archive")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows archive REF", pos, "REF"); err != nil {
		return err
	}
	wf, err := c.cfg.newClient().ArchiveWorkflow(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "archived workflow %s\n", wf.Handle)
	return nil
}

// workflowsRun starts a run by hand and, with --wait, waits for its end and
// exits non-zero unless it succeeded.
type workflowsRun struct {
	*env
	cfg Config
}

func (c *workflowsRun) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("workflows run")
	input := fs.String("input", "{}", "run input as JSON")
	key := fs.String("idempotency-key", "", "start at most one run for this key")
	wait := fs.Bool("wait", false, "wait until the run ends; exit 1 unless it succeeded")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("workflows run REF [--input JSON] [--wait]", pos, "REF"); err != nil {
		return err
	}
	if !json.Valid([]byte(*input)) {
		return orcheo.Errorf(orcheo.EINVALID, "--input is not valid JSON")
	}
	cl := c.cfg.newClient()
	run, err := cl.StartRun(ctx, pos[0], json.RawMessage(*input), *key)
	if err != nil {
		return err
	}
	if !*wait {
		if *asJSON {
			return writeJSON(c.stdout, run)
		}
		fmt.Fprintf(c.stdout, "started run %s (%s)\n", run.ID, run.Status)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	id := run.ID
	if run, err = cl.WaitRun(wctx, id, 200*time.Millisecond); err != nil {
		return fmt.Errorf("wait for run %s: %w", id, err)
	}
	if *asJSON {
		err = writeJSON(c.stdout, run)
	} else {
		err = printRun(c.stdout, run, pos[0])
	}
	if err != nil {
		return err
	}
	if run.Status != orcheo.RunSucceeded {
		return orcheo.Errorf(orcheo.ECONFLICT, "run %s %s", run.ID, run.Status)
	}
	return nil
}
