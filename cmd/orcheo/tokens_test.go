package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/server"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

const (
	tokA = "aaaaaaaaaaaaaaaa-1" // 18 characters
	tokB = "bbbbbbbbbbbbbbbb:2" // a colon belongs to the token
	tokC = "cccccccccccccccc-3"
)

func mapEnv(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// writeFile writes a token file with mode 0600 and returns its path.
func writeTokenFile(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "api-tokens")
	if err := os.WriteFile(path+".tmp", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// Replaced by rename, as an editor or config tool would.
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAPITokensFromEnv(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		got, err := ConfigFromEnv(mapEnv(map[string]string{
			"ORCHEO_API_TOKENS":      " ci:read:" + tokA + " ,, beat:dispatch:" + tokB + ",",
			"ORCHEO_API_TOKENS_FILE": " /etc/orcheo/api-tokens ",
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := []server.APIToken{{Name: "ci", Scope: server.ScopeRead, Value: tokA}, {Name: "beat", Scope: server.ScopeDispatch, Value: tokB}}
		if len(got.APITokens) != 2 || got.APITokens[0] != want[0] || got.APITokens[1] != want[1] {
			t.Fatalf("APITokens = %v, want %v", got.APITokens, want)
		}
		if got.APITokensFile != "/etc/orcheo/api-tokens" || !got.hasAPITokens() {
			t.Fatalf("APITokensFile = %q", got.APITokensFile)
		}
	})
	for name, tc := range map[string]struct{ value, message string }{
		"NoScope":       {"ci" + tokA, "ORCHEO_API_TOKENS entry 1: want name:scope:token"},
		"BareToken":     {"ci:read:" + tokA + "," + tokC, "ORCHEO_API_TOKENS entry 2: want name:scope:token"},
		"UnknownScope":  {"ci:write:" + tokA, "entry 1: unknown scope"},
		"SwappedFields": {"ci:" + tokC + ":read", "entry 1: unknown scope"},
		"Short":         {"ci:read:" + tokC + ",x:admin:short-one", "entry 2: the token is shorter than 16 characters"},
		"BadName":       {"c i:read:" + tokA, "entry 1: a name is"},
		"Empty":         {"ci:read:", "entry 1: the token is shorter"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigFromEnv(mapEnv(map[string]string{"ORCHEO_API_TOKENS": tc.value}))
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %q", err, tc.message)
			}
			for _, secret := range []string{tokA, tokC, "short-one"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the message shows a token: %v", err)
				}
			}
		})
	}
}

func TestParseTokenFile(t *testing.T) {
	t.Parallel()
	got, err := parseTokenFile(strings.NewReader("# name scope token\n\n  ops admin "+tokA+"\n\tprom\tmetrics\t"+tokB+"#x\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (server.APIToken{Name: "ops", Scope: server.ScopeAdmin, Value: tokA}) ||
		got[1] != (server.APIToken{Name: "prom", Scope: server.ScopeMetrics, Value: tokB + "#x"}) {
		t.Fatalf("got %v", got)
	}
	for name, tc := range map[string]struct{ text, message string }{
		"TwoFields":       {"# c\nops " + tokA + "\n", "ORCHEO_API_TOKENS_FILE f line 2: want name scope token, got 2 fields"},
		"TrailingComment": {"ops admin " + tokA + " # comment\n", "line 1: want name scope token, got 5 fields"},
		"Scope":           {"ops root " + tokA + "\n", "line 1: unknown scope"},
		"Short":           {"ops admin short\n", "line 1: the token is shorter"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseTokenFile(strings.NewReader(tc.text), "f")
			if err == nil || !strings.Contains(err.Error(), tc.message) || strings.Contains(err.Error(), tokA) {
				t.Fatalf("err = %v, want %q without the token", err, tc.message)
			}
		})
	}
}

// TestOpenAPITokens: the three sources make one set, checked as a whole.
func TestOpenAPITokens(t *testing.T) {
	t.Parallel()
	log, _ := logtest.NewNullLogger()
	dir := t.TempDir()
	file := writeTokenFile(t, dir, "prom metrics "+tokC+"\n")
	cfg := Config{APIToken: "legacy", APITokens: []server.APIToken{{Name: "ci", Scope: server.ScopeRead, Value: tokA}}, APITokensFile: file}
	tokens, err := openAPITokens(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tokens.Names(), ", "); got != "ci (read), default (admin), prom (metrics)" {
		t.Fatalf("Names = %q", got)
	}
	if tokens, err := openAPITokens(Config{}, log); tokens != nil || err != nil {
		t.Fatalf("no source: %v, %v; want nil (authentication off)", tokens, err)
	}
	for name, cfg := range map[string]Config{
		"DefaultTaken":   {APIToken: "legacy", APITokens: []server.APIToken{{Name: "default", Scope: server.ScopeRead, Value: tokA}}},
		"SameValue":      {APIToken: tokA, APITokens: []server.APIToken{{Name: "ci", Scope: server.ScopeRead, Value: tokA}}},
		"FileAndEnv":     {APITokens: []server.APIToken{{Name: "prom", Scope: server.ScopeRead, Value: tokA}}, APITokensFile: file},
		"MissingFile":    {APIToken: "legacy", APITokensFile: filepath.Join(dir, "nope")},
		"EmptyFileAlone": {APITokensFile: writeTokenFile(t, t.TempDir(), "# nothing yet\n")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := openAPITokens(cfg, log)
			if orcheo.ErrorCode(err) != orcheo.EINVALID || strings.Contains(err.Error(), tokA) {
				t.Fatalf("err = %v, want invalid without the token", err)
			}
		})
	}
}

// TestReloadAPITokens: a SIGHUP re-reads the file; a bad file keeps the
// tokens in use and logs why. The test sends itself the signal.
func TestReloadAPITokens(t *testing.T) {
	// Not parallel: it signals the whole test process.
	log, hook := logtest.NewNullLogger()
	dir := t.TempDir()
	file := writeTokenFile(t, dir, "old read "+tokA+"\n")
	cfg := Config{APITokensFile: file}
	tokens, err := openAPITokens(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchTokenReload(ctx, cfg, tokens, log)

	hup := func(want string) {
		t.Helper()
		hook.Reset()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			for _, e := range hook.AllEntries() {
				if strings.HasPrefix(e.Message, "api tokens") {
					if e.Message != want {
						t.Fatalf("log %q (%v), want %q", e.Message, e.Data, want)
					}
					text, _ := e.String()
					for _, secret := range []string{tokA, tokB, tokC} {
						if strings.Contains(text, secret) {
							t.Fatalf("the log shows a token: %s", text)
						}
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q logged within 5s of SIGHUP", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	names := func() string { return strings.Join(tokens.Names(), ", ") }

	// Add the new token next to the old one, then remove the old one.
	writeTokenFile(t, dir, "old read "+tokA+"\nnew read "+tokB+"\n")
	hup("api tokens reloaded")
	if names() != "new (read), old (read)" {
		t.Fatalf("after adding: %s", names())
	}
	writeTokenFile(t, dir, "new read "+tokB+"\n")
	hup("api tokens reloaded")
	if names() != "new (read)" {
		t.Fatalf("after removing: %s", names())
	}
	for _, bad := range []string{"new read " + tokB + "\nnew admin " + tokC + "\n", "new read short\n", "", "new\n"} {
		writeTokenFile(t, dir, bad)
		hup("api tokens not reloaded; the previous tokens stay in use")
		if names() != "new (read)" {
			t.Fatalf("after a bad file %q: %s", bad, names())
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	hup("api tokens not reloaded; the previous tokens stay in use")
	if names() != "new (read)" {
		t.Fatalf("after the file went away: %s", names())
	}
	for _, e := range hook.AllEntries() {
		if e.Level != logrus.ErrorLevel {
			t.Fatalf("a refused reload logged at %s", e.Level)
		}
	}
}
