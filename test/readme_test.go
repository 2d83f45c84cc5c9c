package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orcheo/orcheo/internal/testenv"
)

// TestReadmeWalkthrough runs the README's walkthrough block, as written,
// against `orcheo dev` (the walkthrough's first terminal).
func TestReadmeWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- walkthrough:start -->")
	block, _, ok2 := strings.Cut(block, "<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no walkthrough block")
	}
	block = strings.TrimSpace(block)
	block = strings.TrimSuffix(strings.TrimPrefix(block, "```sh"), "```")

	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	dev := startProcess(t, []string{"ORCHEO_DATA_DIR=" + t.TempDir(), fmt.Sprintf("ORCHEO_HTTP_ADDR=127.0.0.1:%d", port)}, "dev")
	waitHealthy(t, dev, url)

	// The walkthrough runs from the repository root with bin/orcheo built.
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(work, "bin", "orcheo")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(work, "examples")); err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(block, "http://127.0.0.1:8080", url)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = baseEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	secret, err := os.ReadFile(filepath.Join(work, "greet.secret"))
	if err != nil || len(strings.TrimSpace(string(secret))) != 40 {
		t.Fatalf("greet.secret: %q, %v", secret, err)
	}
	if strings.Contains(string(out)+dev.out.String(), strings.TrimSpace(string(secret))) {
		t.Error("the webhook secret shows in the walkthrough's output or orcheo dev's log")
	}
	for _, want := range []string{"created workflow greet", "started run ", "unsigned: 401", "secret set", "succeeded", "greet", "say", "hello, Ada", "hello, Grace"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
}
