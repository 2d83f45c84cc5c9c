package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/engine"
	"github.com/orcheo/orcheo/examples"
	"github.com/sirupsen/logrus"
)

// devCommand runs the API, a worker and the cron beat in one process on embedded
// defaults (devMain): a SQLite file in the data directory and an in-process
// Redis.
type devCommand struct {
	*env
	cfg Config
}

func (c *devCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("dev")
	fs.StringVar(&c.cfg.HTTPAddr, "addr", c.cfg.HTTPAddr, "listen address (ORCHEO_HTTP_ADDR)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if !c.cfg.hasAPITokens() && !isLoopback(c.cfg.HTTPAddr) {
		return orcheo.Errorf(orcheo.EINVALID, "orcheo dev without ORCHEO_API_TOKEN (or ORCHEO_API_TOKENS, ORCHEO_API_TOKENS_FILE) listens on loopback only; %q is not", c.cfg.HTTPAddr)
	}
	log, err := newLogger(c.cfg, c.stderr)
	if err != nil {
		return err
	}
	m := &devMain{cfg: c.cfg, log: log}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	if m.cfg.APITokensFile != "" {
		// Only with a token file: otherwise a terminal's hangup ends dev.
		watchTokenReload(ctx, m.cfg, m.api.server.Tokens, log.WithField("component", "tokens"))
	}
	c.banner(m.api.server.URL(), m.dbPath)
	return waitAndClose(ctx, m, log, "dev shutting down")
}

// banner tells a first-time user where orcheo is and what to type next.
func (c *devCommand) banner(url, dbPath string) {
	where := dbPath
	if where == "" {
		where = "ORCHEO_DATABASE_URL"
	}
	auth := ""
	if c.cfg.APIToken != "" {
		auth = ` -H "Authorization: Bearer $ORCHEO_API_TOKEN"`
	} else if c.cfg.hasAPITokens() {
		auth = ` -H "Authorization: Bearer <a read or admin token>"`
	}
	fmt.Fprintf(c.stdout, `orcheo dev is running at %s
  database: %s
  redis:    in-process
Trigger the example workflow "hello":
  curl -X POST %s/api/workflows/hello/triggers/webhook -H 'Content-Type: application/json' -d '{"name":"Ada"}'
Then look at the run:
  curl%s %s/api/runs
  ORCHEO_URL=%s ./bin/orcheo runs list
Stop with Ctrl-C.
`, url, where, url, auth, url, url)
}

// requeuePending publishes every pending run again: the in-process Redis
// of a previous dev session is gone, and with it their messages. A run the
// submitter cannot publish is marked for the requeuer, as anywhere else.
func requeuePending(ctx context.Context, runs orcheo.RunService, sub orcheo.RunSubmitter, log logrus.FieldLogger) error {
	status := orcheo.RunPending
	failed := 0
	for offset := 0; ; {
		page, _, err := runs.FindRuns(ctx, orcheo.RunFilter{Status: &status, Offset: offset, Limit: 500})
		if err != nil {
			return fmt.Errorf("find pending runs: %w", err)
		}
		for _, err := range sub.PublishRuns(ctx, page, orcheo.PublishOptions{}) {
			if err != nil {
				failed++
			}
		}
		if len(page) < 500 {
			break
		}
		offset += len(page)
	}
	if failed > 0 {
		log.WithField("runs", failed).Warn("pending runs not published again; the requeuer retries them")
	}
	return nil
}

// installExamples creates each shipped example workflow that does not exist
// yet, and enables the webhook of "hello" for the banner's curl.
func installExamples(ctx context.Context, workflows orcheo.WorkflowService, triggers orcheo.TriggerService) error {
	eng := engine.New(engine.Options{})
	files := examples.Files()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		handle := strings.TrimSuffix(name, filepath.Ext(name))
		if _, err := workflows.FindWorkflowByRef(ctx, handle); err == nil {
			continue
		} else if orcheo.ErrorCode(err) != orcheo.ENOTFOUND {
			return err
		}
		def, err := eng.Compile(files[name])
		if err != nil {
			return fmt.Errorf("example %s: %w", name, err)
		}
		wf := &orcheo.Workflow{Handle: handle, Name: "Example: " + handle}
		if err := wf.Validate(); err != nil {
			return err
		}
		if _, err := workflows.CreateWorkflow(ctx, wf, def); err != nil {
			return fmt.Errorf("install example %s: %w", name, err)
		}
		if handle == "hello" {
			if err := triggers.SetWebhookConfig(ctx, wf.ID, &orcheo.WebhookConfig{Enabled: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

// isLoopback reports whether a listen address binds a loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
