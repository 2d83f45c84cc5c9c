package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orcheo/orcheo/internal/docsh"
)

// docs are the files whose host commands (docsh.HostTools) this package
// checks; test/ runs the rest of their commands against real processes.
var docs = []string{"../../README.md", "../../docs/runbook.md"}

// installRegions are the blocks that set a host up; they run whole against
// a scratch root (TestInstallBlocks). Host commands elsewhere are checked
// one by one (TestDocHostCommands).
var installRegions = map[string]string{"../../README.md": "systemd", "../../docs/runbook.md": "install"}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostShims stand in for what needs a running systemd or changes the
// machine's users; every other command of the block runs for real, with
// /etc/ and /usr/local/ moved under $ROOT.
const hostShims = `
make() { [ "$*" = build ] && [ -x bin/orcheo ]; }
useradd() { printf '%s\n' "$*" >>"$LOG/useradd"; }
systemctl() {
  case "$1" in
  daemon-reload) printf 'daemon-reload\n' >>"$LOG/systemctl" ;;
  enable) shift; local a=(); for u in "$@"; do [ "$u" = --now ] || a+=("$u"); done
    command systemctl --root="$ROOT" enable "${a[@]}" ;;
  *) echo "systemctl $1: not expected in an install block" >&2; return 1 ;;
  esac
}
`

// runInstallBlock runs block from a scratch copy of the repository (bin/orcheo
// freshly built, deploy/systemd) against a scratch root and returns the root
// and the shims' log directory.
func runInstallBlock(t *testing.T, block docsh.Block) (root, log string) {
	t.Helper()
	need(t, "systemctl")
	root, log, repo := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"usr/local/bin", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repo, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(orcheoBinary(t), filepath.Join(repo, "bin/orcheo")); err != nil {
		t.Fatal(err)
	}
	deploy, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(deploy, filepath.Join(repo, "deploy")); err != nil {
		t.Fatal(err)
	}
	script := regexp.MustCompile(`(^|[\s=>"'])/(etc|usr/local)/`).ReplaceAllString(block.Text, `${1}$$ROOT/${2}/`)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", hostShims+script)
	cmd.Dir = repo
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOT=" + root, "LOG=" + log}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("line %d (%s): %v\n%s", block.Line, block.Heading, err, out)
	}
	return root, log
}

// checkInstalled checks what an install block must leave on a host: the
// binary, the env file readable by root only, the units, the user of the
// units, and the api, two workers and the beat enabled in orcheo.target.
func checkInstalled(t *testing.T, root, log string) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{
		"usr/local/bin/orcheo":                      0o755,
		"etc/orcheo":                                os.ModeDir | 0o755,
		"etc/orcheo/orcheo.env":                     0o600,
		"etc/systemd/system/orcheo-api.service":     0o644,
		"etc/systemd/system/orcheo-worker@.service": 0o644,
		"etc/systemd/system/orcheo-beat.service":    0o644,
		"etc/systemd/system/orcheo-migrate.service": 0o644,
		"etc/systemd/system/orcheo.target":          0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode() != mode {
			t.Errorf("/%s: %v, %v; want mode %v", path, fi.Mode(), err, mode)
		}
	}
	if out, err := exec.Command(filepath.Join(root, "usr/local/bin/orcheo"), "help").CombinedOutput(); err != nil {
		t.Errorf("the installed orcheo does not run: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(log, "useradd"))
	args := strings.Fields(string(b))
	user := parseUnit(t, "orcheo-api.service").one("Service", "User")
	if err != nil || !slices.Contains(args, "--system") || len(args) == 0 || args[len(args)-1] != user {
		t.Errorf("useradd %q (%v): want a --system user %q, the units' User=", args, err, user)
	}
	dir := filepath.Join(root, "etc/systemd/system")
	for link, target := range map[string]string{
		"multi-user.target.wants/orcheo.target":       "orcheo.target",
		"orcheo.target.wants/orcheo-api.service":      "orcheo-api.service",
		"orcheo.target.wants/orcheo-worker@1.service": "orcheo-worker@.service",
		"orcheo.target.wants/orcheo-worker@2.service": "orcheo-worker@.service",
		"orcheo.target.wants/orcheo-beat.service":     "orcheo-beat.service",
	} {
		got, err := os.Readlink(filepath.Join(dir, link))
		if err != nil || filepath.Base(got) != target {
			t.Errorf("%s → %q (%v), want → %s", link, got, err, target)
		}
	}
}

// TestInstallBlocks runs the README's "Deploying with systemd" block and the
// runbook's install block as written against a scratch root: the binary,
// the env file and the units are installed for real, and systemctl enable
// runs with --root, as on a host (--now needs a running systemd).
func TestInstallBlocks(t *testing.T) {
	for doc, region := range installRegions {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			block, err := docsh.Region(readDoc(t, doc), region)
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			root, log := runInstallBlock(t, block)
			checkInstalled(t, root, log)
			if region != "install" {
				return
			}
			// The runbook's block also fills in the secrets.
			env, err := os.ReadFile(filepath.Join(root, "etc/orcheo/orcheo.env"))
			if err != nil {
				t.Fatal(err)
			}
			for name, re := range map[string]string{
				"ORCHEO_API_TOKEN":   `[0-9a-f]{64}`,
				"ORCHEO_SECRETS_KEY": `[A-Za-z0-9+/]{43}=`,
			} {
				if !regexp.MustCompile(`(?m)^` + name + `=` + re + `$`).Match(env) {
					t.Errorf("the runbook's install block leaves %s unset in orcheo.env", name)
				}
			}
		})
	}
}

// systemctlVerbs are the verbs the docs may use, with whether the verb's
// units must exist here.
var systemctlVerbs = map[string]bool{
	"start": true, "stop": true, "restart": true, "reload": true, "status": true, "kill": true,
	"edit": true, "enable": true, "disable": true, "is-active": true, "daemon-reload": false,
	"list-units": false,
}

// externalUnits are units of other packages the docs may name.
var externalUnits = []string{"postgresql", "redis-server"}

// resolveUnit returns the file in deploy/systemd that unit (a name, an
// instance of a template, or a glob) stands for; "" for an external unit.
func resolveUnit(t *testing.T, unit string) []string {
	t.Helper()
	unit = strings.Trim(unit, `'"`)
	if slices.Contains(externalUnits, strings.TrimSuffix(unit, ".service")) {
		return nil
	}
	if !strings.Contains(unit, ".") || strings.HasSuffix(unit, "*") {
		unit += ".service"
	}
	if at := strings.Index(unit, "@"); at >= 0 && !strings.Contains(unit, "*") {
		unit = unit[:at+1] + unit[strings.LastIndex(unit, "."):]
	}
	files, err := filepath.Glob(unit)
	if err != nil || len(files) == 0 {
		// A glob of services ("orcheo-*") matches the target too.
		if files, err = filepath.Glob(strings.TrimSuffix(unit, ".service")); err != nil || len(files) == 0 {
			return []string{"!" + unit}
		}
	}
	return files
}

// TestDocHostCommands checks each systemctl and journalctl command of the
// README and the runbook, which test/ cannot run: its verb and flags, that
// every unit it names ships here (a worker instance through the template),
// that reload is only used on a unit with ExecReload, enable and disable
// run against a scratch root, and journalctl's arguments are run against an
// empty journal directory (which rejects an unknown flag). install and
// useradd may appear only in the install blocks, which TestInstallBlocks
// runs.
func TestDocHostCommands(t *testing.T) {
	systemctl := need(t, "systemctl")
	journalctl := need(t, "journalctl")
	scratch := t.TempDir()
	units := filepath.Join(scratch, "etc/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("orcheo*")
	for _, f := range files {
		if strings.HasSuffix(f, ".service") || strings.HasSuffix(f, ".target") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(units, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	emptyJournal := t.TempDir()
	seen := 0
	for _, doc := range docs {
		md := readDoc(t, doc)
		install, _ := docsh.Region(md, installRegions[doc])
		installed := map[string]bool{}
		for _, c := range install.Commands() {
			for _, s := range docsh.Simple(c.Text) {
				installed[s] = true
			}
		}
		for _, c := range docsh.HostCommands(md) {
			where := filepath.Base(doc) + ":" + strconv.Itoa(c.Line) + ": " + c.Text
			words := strings.Fields(c.Text)
			if words[0] == "sudo" {
				words = words[1:]
			}
			seen++
			switch words[0] {
			case "install", "useradd":
				if !installed[c.Text] {
					t.Errorf("%s: outside the install block (<!-- %s:start -->), which runs against a scratch root", where, installRegions[doc])
				}
			case "journalctl":
				var args []string
				for i := 1; i < len(words); i++ {
					w := words[i]
					switch {
					case w == "-f" || w == "--follow":
						continue
					case w == "-u" && i+1 < len(words):
						for _, f := range resolveUnit(t, words[i+1]) {
							if strings.HasPrefix(f, "!") {
								t.Errorf("%s: no unit %s in deploy/systemd", where, f[1:])
							}
						}
					}
					args = append(args, w)
				}
				// Through bash, which rejoins quoted arguments ("1 hour ago").
				cmd := exec.Command("bash", "-c", `exec "$0" --directory="$1" --no-pager `+strings.Join(args, " ")+` </dev/null`, journalctl, emptyJournal)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: journalctl refuses the arguments: %v\n%s", where, err, out)
				}
			case "systemctl":
				checkSystemctl(t, where, systemctl, scratch, words[1:])
			}
		}
	}
	if seen == 0 {
		t.Fatal("no host command found in the docs")
	}
}

func checkSystemctl(t *testing.T, where, systemctl, root string, args []string) {
	t.Helper()
	var verb string
	var unitArgs, flags []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
		case verb == "":
			verb = a
		default:
			unitArgs = append(unitArgs, a)
		}
	}
	mustHaveUnits, ok := systemctlVerbs[verb]
	if !ok {
		t.Errorf("%s: systemctl %s is not a verb the docs may use", where, verb)
		return
	}
	for _, f := range flags {
		switch {
		case f == "--now" && (verb == "enable" || verb == "disable"):
		case f == "--kill-whom=main" || f == "--kill-whom=all":
		case strings.HasPrefix(f, "--signal=SIG"):
		case f == "--no-pager" || f == "-l":
		default:
			t.Errorf("%s: flag %s is not one the docs may use", where, f)
		}
	}
	if mustHaveUnits && len(unitArgs) == 0 {
		t.Errorf("%s: names no unit", where)
	}
	for _, u := range unitArgs {
		for _, f := range resolveUnit(t, u) {
			if strings.HasPrefix(f, "!") {
				t.Errorf("%s: no unit %s in deploy/systemd", where, f[1:])
				continue
			}
			if verb == "reload" && len(parseUnit(t, f).get("Service", "ExecReload")) == 0 {
				t.Errorf("%s: %s has no ExecReload, so reload fails", where, f)
			}
		}
	}
	if verb == "enable" || verb == "disable" {
		var clean []string
		for _, a := range append(flags, unitArgs...) {
			if a != "--now" {
				clean = append(clean, a)
			}
		}
		cmd := exec.Command(systemctl, append([]string{"--root=" + root, verb}, clean...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: against a scratch root: %v\n%s", where, err, out)
		}
	}
}

// TestScrapeTargets checks that docs/metrics.md's Prometheus example
// scrapes the ports the env example and the runbook give the beat and the
// workers.
func TestScrapeTargets(t *testing.T) {
	metrics := readDoc(t, "../../docs/metrics.md")
	targets := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)job_name: (orcheo-\w+).*?targets: \[([^\]]*)\]`).FindAllStringSubmatch(metrics, -1) {
		targets[m[1]] = m[2]
	}
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":"):] }
	_, values := envExample(t)
	beat := values["ORCHEO_BEAT_HEALTH_ADDR"]
	if beat == "" || !strings.Contains(targets["orcheo-beat"], port(beat)+`"`) {
		t.Errorf("orcheo.env.example's ORCHEO_BEAT_HEALTH_ADDR=%s is not among docs/metrics.md's orcheo-beat targets %s", beat, targets["orcheo-beat"])
	}
	workers := regexp.MustCompile(`worker-\d\.env`).FindAllString(readDoc(t, "../../docs/runbook.md"), -1)
	for _, m := range regexp.MustCompile(`ORCHEO_WORKER_METRICS_ADDR=(\S+) > /etc/orcheo/worker-[12]\.env`).FindAllStringSubmatch(readDoc(t, "../../docs/runbook.md"), -1) {
		if !strings.Contains(targets["orcheo-worker"], port(m[1])+`"`) {
			t.Errorf("the runbook's worker port %s is not among docs/metrics.md's orcheo-worker targets %s", m[1], targets["orcheo-worker"])
		}
	}
	if len(workers) == 0 {
		t.Error("the runbook gives the workers no metrics port")
	}
}
