package systemd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orcheo/orcheo/tasks"
)

const (
	binPath = "/usr/local/bin/orcheo"
	envPath = "/etc/orcheo/orcheo.env"
	// drainMargin is what the worker needs after its drain timeout to
	// cancel the runs still going and hand them back through PostgreSQL
	// and Redis; systemd must not SIGKILL before.
	drainMargin = 10 * time.Second
)

// services are the .service files; longRunning excludes the oneshot.
var (
	services    = []string{"orcheo-api.service", "orcheo-worker@.service", "orcheo-beat.service", "orcheo-migrate.service"}
	longRunning = []string{"orcheo-api.service", "orcheo-worker@.service", "orcheo-beat.service"}
)

// hardening is the [Service] block every unit must carry, value for value.
var hardening = map[string]string{
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"ProtectClock":            "yes",
	"ProtectHostname":         "yes",
	"ProtectProc":             "invisible",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"RemoveIPC":               "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service|~@privileged",
	"SystemCallErrorNumber":   "EPERM",
	"UMask":                   "0077",
}

// unit is a parsed unit file: section → key → values in order (a key may
// repeat, as EnvironmentFile= and SystemCallFilter= do).
type unit map[string]map[string][]string

func (u unit) get(section, key string) []string { return u[section][key] }

// one returns the last value of key, as systemd does for most keys.
func (u unit) one(section, key string) string {
	v := u.get(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// words is every value of key split on spaces, for list keys such as After=.
func (u unit) words(section, key string) []string {
	var out []string
	for _, v := range u.get(section, key) {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func parseUnit(t testing.TB, name string) unit {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", name, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// parseTimespan reads the systemd time spans the units use: "90" (seconds),
// "60s", "2min", "1min 30s".
func parseTimespan(s string) (time.Duration, error) {
	s = strings.ReplaceAll(s, " ", "")
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(strings.ReplaceAll(s, "min", "m"))
}

// envExample returns the variables of orcheo.env.example, set or shown
// commented out ("#NAME=default"), in order, with their values.
func envExample(t testing.TB) (names []string, values map[string]string) {
	t.Helper()
	f, err := os.Open("orcheo.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)
	values = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		names = append(names, m[2])
		if m[1] == "" {
			values[m[2]] = m[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names, values
}

// need returns the path of a systemd tool. Missing, the test skips, or
// fails under CI, where scripts/install-deps.sh installs the package.
func need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (Debian package systemd; scripts/install-deps.sh installs it): %v", tool, err)
		}
		t.Skipf("%s is missing (Debian package systemd): %v", tool, err)
	}
	return p
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// orcheoBinary builds cmd/orcheo once for the package's tests.
func orcheoBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "orcheo-systemd-test"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "orcheo"), "../../cmd/orcheo")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "orcheo")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// TestVerify runs systemd-analyze verify on a copy of the units whose
// ExecStart points at a freshly built orcheo. verify exits 0 on keys it
// ignores (a typo, a bad value), so any output fails the test too.
func TestVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	bin := orcheoBinary(t)
	dir := t.TempDir()
	files, err := filepath.Glob("orcheo*.service")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "orcheo.target")
	var args []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(binPath), []byte(bin))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// A template is verified through an instance.
		args = append(args, filepath.Join(dir, strings.Replace(f, "@.", "@1.", 1)))
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no", "--generators=no"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestExecStart runs each ExecStart's command line with -h: orcheo prints
// that command's usage, unless the command or one of the flags does not
// exist.
func TestExecStart(t *testing.T) {
	bin := orcheoBinary(t)
	for _, name := range services {
		u := parseUnit(t, name)
		lines := u.get("Service", "ExecStart")
		if len(lines) != 1 {
			t.Fatalf("%s: want one ExecStart, got %q", name, lines)
		}
		argv := strings.Fields(lines[0])
		if argv[0] != binPath || len(argv) < 2 {
			t.Fatalf("%s: ExecStart=%s, want %s <command>", name, lines[0], binPath)
		}
		out, _ := exec.Command(bin, append(argv[1:], "-h")...).CombinedOutput()
		if !strings.Contains(string(out), "Usage of "+argv[1]+":") || strings.Contains(string(out), "not defined") {
			t.Errorf("%s: %s -h does not print the usage of %q:\n%s", name, lines[0], argv[1], out)
		}
	}
}

// TestInvariants checks what the processes rely on and verify cannot see.
func TestInvariants(t *testing.T) {
	units := map[string]unit{}
	for _, name := range append(slices.Clone(services), "orcheo.target") {
		units[name] = parseUnit(t, name)
	}
	for _, name := range services {
		u := units[name]
		t.Run(name, func(t *testing.T) {
			if got := u.get("Service", "EnvironmentFile"); len(got) == 0 || got[0] != envPath {
				t.Errorf("EnvironmentFile=%q, want %s first", got, envPath)
			}
			if u.one("Service", "User") != "orcheo" || u.one("Service", "Group") != "orcheo" {
				t.Errorf("User=%q Group=%q, want orcheo", u.one("Service", "User"), u.one("Service", "Group"))
			}
			for key, want := range hardening {
				if got := strings.Join(u.get("Service", key), "|"); got != want || u.get("Service", key) == nil {
					t.Errorf("%s=%q, want %q", key, got, want)
				}
			}
			for _, key := range []string{"Wants", "After"} {
				if !slices.Contains(u.words("Unit", key), "network-online.target") {
					t.Errorf("%s= lacks network-online.target", key)
				}
			}
			// Every orcheo unit named as a dependency ships here.
			for _, key := range []string{"Wants", "Requires", "After", "Before", "PartOf"} {
				for _, dep := range u.words("Unit", key) {
					if _, ok := units[dep]; strings.HasPrefix(dep, "orcheo") && !ok {
						t.Errorf("%s=%s: no such unit in deploy/systemd", key, dep)
					}
				}
			}
		})
	}
	for _, name := range longRunning {
		u := units[name]
		t.Run(name+"/lifecycle", func(t *testing.T) {
			// A clean exit only follows a stop request, so on-failure
			// restarts everything else without fighting systemctl stop.
			if got := u.one("Service", "Restart"); got != "on-failure" {
				t.Errorf("Restart=%q, want on-failure", got)
			}
			// One SIGTERM, to the main process only: a second signal
			// makes the worker exit without handing its runs back.
			if got := u.one("Service", "KillMode"); got != "mixed" && got != "process" {
				t.Errorf("KillMode=%q, want mixed or process", got)
			}
			if got := u.one("Service", "KillSignal"); got != "SIGTERM" {
				t.Errorf("KillSignal=%q, want SIGTERM", got)
			}
			if !slices.Contains(u.words("Install", "WantedBy"), "orcheo.target") || !slices.Contains(u.words("Unit", "PartOf"), "orcheo.target") {
				t.Error("not WantedBy= and PartOf= orcheo.target")
			}
		})
	}

	drain := tasks.WorkerDrainTimeoutDefault
	if _, values := envExample(t); values["ORCHEO_WORKER_DRAIN_TIMEOUT"] != "" {
		d, err := time.ParseDuration(values["ORCHEO_WORKER_DRAIN_TIMEOUT"])
		if err != nil {
			t.Fatalf("orcheo.env.example: ORCHEO_WORKER_DRAIN_TIMEOUT: %v", err)
		}
		drain = max(drain, d)
	}
	raw := units["orcheo-worker@.service"].one("Service", "TimeoutStopSec")
	stop, err := parseTimespan(raw)
	if err != nil {
		t.Fatalf("orcheo-worker@.service: TimeoutStopSec=%q: %v", raw, err)
	}
	if stop < drain+drainMargin {
		t.Errorf("orcheo-worker@.service: TimeoutStopSec=%s, want at least the drain timeout %s + %s to hand runs back", stop, drain, drainMargin)
	}
}

// TestEnvExample checks that every variable of orcheo.env.example is
// documented in docs/configuration.md, and that orcheo accepts the values.
func TestEnvExample(t *testing.T) {
	names, values := envExample(t)
	if len(names) == 0 {
		t.Fatal("orcheo.env.example names no variable")
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			t.Errorf("%s appears twice", name)
		}
		seen[name] = true
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("%s is not documented in docs/configuration.md", name)
		}
	}
	for _, name := range []string{"ORCHEO_DATABASE_URL", "REDIS_URL", "ORCHEO_API_TOKEN", "ORCHEO_URL"} {
		if values[name] == "" {
			t.Errorf("%s is not set", name)
		}
	}

	// orcheo reads its whole configuration before any command, and an
	// offline one then proves every value parses.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for name, v := range values {
		env = append(env, name+"="+v)
	}
	cmd := exec.Command(orcheoBinary(t), "workflows", "validate", "-f", "../../examples/hello.yaml")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("orcheo with orcheo.env.example: %v\n%s", err, out)
	}
}
