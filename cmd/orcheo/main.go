// Command orcheo is the one binary of orcheo: the API server, the worker,
// the all-in-one dev mode, migrations, and the CLI that talks to the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/orcheo/orcheo"
)

const usage = `orcheo runs workflows from webhooks, schedules and manual calls.

Usage: orcheo <command> [arguments]

Processes:
  api                      serve the HTTP API (PostgreSQL or SQLite + Redis)
  worker                   execute runs from Redis [-c|--concurrency N] [-Q|--queues q1,q2]
                           [-n|--name NAME (%h: the host)] [-l|--loglevel L] [--metrics-addr ADDR]
  beat                     fire cron triggers: POST the API's dispatch at each slot
                           [--health-addr ADDR]
  dev                      API + worker + beat in one process on embedded defaults
  migrate                  apply database migrations and exit

Client (talks to ORCHEO_URL with ORCHEO_TOKEN):
  workflows create -f FILE [--handle H] [--name N] [--queue Q]
  workflows update REF -f FILE        store a new version
  workflows list | show REF | versions REF | archive REF
  workflows run REF [--input JSON] [--wait] [--timeout D]
  workflows validate -f FILE          check a definition offline
  runs list [--workflow REF] [--status S] [--trigger T] [--queue Q] [--since T] [--until T]
            [--id ID] [--idempotency-key K] [--limit N] [--cursor C]
  runs show ID | cancel ID [--wait] | retry ID
  runs retry --status failed [--workflow REF] [--since 2h] [filters] [--dry-run] [--all]
  runs cancel --status pending [--queue Q] [filters] [--dry-run] [--all]
  runs purge --older-than AGE [--status S ...] [--dry-run]   delete finished runs by hand
  triggers webhook enable REF [--method M ...] [--verify TYPE] [--secret-file PATH | --secret-stdin]
                [--header NAME --algorithm A --encoding E --prefix P --timestamp-header NAME
                 --signed body|timestamp_body --separator S] [--tolerance 5m]
                [--required-header K=V ...] [--required-query K=V ...]
                [--rate-limit N/DURATION[,per-ip=M] | none] [--keep NAME ...]
  triggers webhook rotate-secret REF (--secret-file PATH | --secret-stdin | --drop-previous)
  triggers webhook show REF | disable REF
                           secrets are never on the command line: no --secret flag
  triggers cron set REF --expression EXPR [--timezone TZ] [--allow-overlapping]
                [--start-at T] [--end-at T] [--catchup none|latest|all] [--catchup-limit N]
  triggers cron show REF | delete REF
  status                   API health and readiness
  workers                  workers online: name, state, queues, concurrency, runs in flight,
                           started, last heartbeat (alias: inspect ping)
  inspect active           runs executing now, per worker (run, workflow, attempt, since)
  inspect reserved         messages a worker took and has not started
  inspect scheduled [--limit N]  delayed retries and suspended runs with their due time
  inspect stats            per worker: processed, failed, retried, pool, uptime
  control shutdown [WORKER ...]  drain workers (all without a name) and exit, as SIGTERM

Other:
  version                  build information (also --version)
  config                   the configuration the daemons would use here: each variable,
                           its value and source (env or default); secrets as ****

Read commands accept --json. Configuration is read from the environment:
see docs/configuration.md.
`

// command is one subcommand: its own flags, its own Run.
type command interface {
	Run(ctx context.Context, args []string) error
}

// env is what a command sees of the process: tests replace it.
type env struct {
	stdin  io.Reader // secrets for --secret-stdin
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if err := e.run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		if orcheo.ErrorCode(err) == orcheo.EINTERNAL {
			fmt.Fprintln(os.Stderr, "orcheo:", err)
		} else {
			fmt.Fprintln(os.Stderr, "orcheo:", orcheo.ErrorMessage(err))
		}
		os.Exit(1)
	}
}

// run dispatches args to a subcommand.
func (e *env) run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	if args[0] == "version" || args[0] == "--version" { // needs no configuration
		return (&versionCommand{env: e}).Run(ctx, args[1:])
	}
	cfg, err := ConfigFromEnv(e.getenv)
	if err != nil {
		return err
	}
	cmds := map[string]command{
		"api":       &apiCommand{env: e, cfg: cfg},
		"worker":    &workerCommand{env: e, cfg: cfg},
		"dev":       &devCommand{env: e, cfg: cfg},
		"beat":      &beatCommand{env: e, cfg: cfg},
		"migrate":   &migrateCommand{env: e, cfg: cfg},
		"workflows": &group{name: "workflows", cmds: workflowCommands(e, cfg)},
		"runs":      &group{name: "runs", cmds: runCommands(e, cfg)},
		"triggers":  &group{name: "triggers", cmds: triggerCommands(e, cfg)},
		"status":    &statusCommand{env: e, cfg: cfg},
		"workers":   &workersCommand{env: e, cfg: cfg, name: "workers"},
		"inspect":   &group{name: "inspect", cmds: inspectCommands(e, cfg)},
		"control":   &group{name: "control", cmds: controlCommands(e, cfg)},
		"config":    &configCommand{env: e, cfg: cfg},
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return orcheo.Errorf(orcheo.EINVALID, "unknown command %q (orcheo help lists them)", args[0])
	}
	return cmd.Run(ctx, args[1:])
}

// group is a command with subcommands, such as "runs".
type group struct {
	name string
	cmds map[string]command
}

func (g *group) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return orcheo.Errorf(orcheo.EINVALID, "orcheo %s needs a subcommand (orcheo help lists them)", g.name)
	}
	cmd, ok := g.cmds[args[0]]
	if !ok {
		return orcheo.Errorf(orcheo.EINVALID, "unknown command \"%s %s\" (orcheo help lists them)", g.name, args[0])
	}
	return cmd.Run(ctx, args[1:])
}

// parseArgs parses flags that may come before, between or after positional
// arguments ("runs show ID --json") and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err // usage was printed; main exits 2
		} else if err != nil {
			return nil, orcheo.Errorf(orcheo.EINVALID, "%s", err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func (e *env) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// wantArgs checks the number of positional arguments; usage is the
// command's synopsis.
func wantArgs(usage string, got []string, names ...string) error {
	if len(got) != len(names) {
		return orcheo.Errorf(orcheo.EINVALID, "usage: orcheo %s", usage)
	}
	return nil
}
