// Package prometheus_test checks the alert rules orcheo ships
// (alerts.yml): that docs/metrics.md shows them verbatim, that promtool
// accepts them, and that they name only metrics orcheo exports.
package prometheus_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/orcheo/orcheo/metrics"
)

const doc = "../../docs/metrics.md"

// docBlock returns the ```yaml block between <!-- alerts:start --> and
// <!-- alerts:end --> of docs/metrics.md.
func docBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- alerts:start -->")
	region, _, ok2 := strings.Cut(rest, "<!-- alerts:end -->")
	if !ok || !ok2 {
		t.Fatalf("%s has no <!-- alerts:start --> … <!-- alerts:end --> region", doc)
	}
	_, body, ok := strings.Cut(region, "```yaml\n")
	body, _, ok2 = strings.Cut(body, "```")
	if !ok || !ok2 {
		t.Fatalf("%s: no ```yaml block in the alerts region", doc)
	}
	return body
}

// TestAlertsDocMatchesFile: the rules an operator copies from the doc are
// the ones the test checks.
func TestAlertsDocMatchesFile(t *testing.T) {
	file, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := docBlock(t); got != string(file) {
		t.Fatalf("the alerts block of %s differs from deploy/prometheus/alerts.yml; copy the file into the block", doc)
	}
}

// TestAlertsPromtool runs `promtool check rules` on the file. Without
// promtool (scripts/install-deps.sh installs it) the test skips, and
// fails under CI=true.
func TestAlertsPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/install-deps.sh installs Debian's prometheus package, which ships it)")
		}
		t.Skip("promtool is not installed (scripts/install-deps.sh)")
	}
	out, err := exec.Command(bin, "check", "rules", "alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules alerts.yml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules alerts.yml said:\n%s", out)
	}
}

// TestAlertsNameExportedMetrics: every orcheo_ metric an alert names is
// one docs/metrics.md's table lists, so a renamed metric cannot leave an
// alert that never fires; and every worker health check is one the
// worker reports.
func TestAlertsNameExportedMetrics(t *testing.T) {
	file, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`orcheo_[a-z_]+`)
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(orcheo_[a-z_]+)`").FindAllStringSubmatch(string(d), -1) {
		documented[m[1]] = true
	}
	for _, name := range names.FindAllString(string(file), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !documented[base] {
			t.Errorf("alerts.yml names %s, which the table of %s does not list", name, doc)
		}
	}
	for _, m := range regexp.MustCompile(`check!?="([a-z]+)"`).FindAllStringSubmatch(string(file), -1) {
		if !slices.Contains(metrics.WorkerHealthChecks, m[1]) {
			t.Errorf("alerts.yml names the health check %q, which workers do not report", m[1])
		}
	}
}
