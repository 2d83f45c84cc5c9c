package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
)

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]*orcheo.WebhookRateLimit{
		"60/1m":              {Limit: 60, Per: "1m"},
		"60/m":               {Limit: 60, Per: "1m"},
		"5/s":                {Limit: 5, Per: "1s"},
		" 1000 / 1h ":        {Limit: 1000, Per: "1h"},
		"10/30s":             {Limit: 10, Per: "30s"},
		"600/1h,per-ip=60":   {Limit: 600, Per: "1h", PerIP: 60},
		"600/1h, per_ip=600": {Limit: 600, Per: "1h", PerIP: 600},
		"none":               nil,
		"off":                nil,
	} {
		got, err := parseRateLimit(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, want %+v", in, got, want)
		}
		if want != nil {
			// What show prints, --rate-limit reads back.
			if again, err := parseRateLimit(formatRateLimit(got)); err != nil || !reflect.DeepEqual(again, want) {
				t.Errorf("%q: %q reads back as %+v, %v", in, formatRateLimit(got), again, err)
			}
		}
	}
	for _, in := range []string{
		"", "60", "60/", "/1m", "x/1m", "60/1x", "60/minute", "1.5/1m", "0/1m", "-1/1m", "2000000/1m",
		"60/0s", "60/500ms", "60/25h", "60/1m,per-ip=0", "60/1m,per-ip=61", "60/1m,per-ip=x", "60/1m,burst=3", "60/1m,",
	} {
		if _, err := parseRateLimit(in); err == nil {
			t.Errorf("%q: no error", in)
		} else if !strings.Contains(err.Error(), "N/DURATION") {
			t.Errorf("%q: error %q does not say the form", in, err)
		}
	}
}

func TestKVFlag(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		var f kvFlag
		for _, s := range []string{"X-Env=prod", "token=a=b", "empty=", " spaced =v "} {
			if err := f.Set(s); err != nil {
				t.Fatalf("%q: %v", s, err)
			}
		}
		want := map[string]string{"X-Env": "prod", "token": "a=b", "empty": "", "spaced": "v "}
		if !f.set || !reflect.DeepEqual(f.values, want) {
			t.Fatalf("got %v (set %v), want %v", f.values, f.set, want)
		}
	})
	t.Run("Clear", func(t *testing.T) {
		var f kvFlag
		if err := f.Set(""); err != nil || !f.set || len(f.values) != 0 {
			t.Fatalf("\"\": %v, set %v, values %v", err, f.set, f.values)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, s := range []string{"novalue", "=v", " =v"} {
			var f kvFlag
			if err := f.Set(s); err == nil {
				t.Errorf("%q: no error", s)
			}
		}
		var f kvFlag
		if err := f.Set("a=1"); err != nil {
			t.Fatal(err)
		}
		if err := f.Set("a=2"); err == nil {
			t.Error("a name given twice: no error")
		}
	})
}

func TestListFlag(t *testing.T) {
	t.Parallel()
	var f listFlag
	for _, s := range []string{"POST", "put, patch", ""} {
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if !f.set || !reflect.DeepEqual(f.values, []string{"POST", "put", "patch"}) {
		t.Fatalf("got %v (set %v)", f.values, f.set)
	}
}

func testEnv() (*env, *strings.Builder, *strings.Builder) {
	var out, errOut strings.Builder
	return &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}, &out, &errOut
}

func TestParseWebhookEdit(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		e, _, _ := testEnv()
		ed, pos, err := e.parseWebhookEdit([]string{"greet", "--verify", "HMAC", "--secret-file", "/s",
			"--header", "X-Sig", "--prefix", "", "--method", "post", "--methods", "PUT,patch",
			"--required-header", "X-Env=prod", "--required-header", "X-Team=a", "--required-query", "k=v",
			"--rate-limit", "60/m,per-ip=5", "--keep", "x-api-key", "--tolerance", "2m"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pos, []string{"greet"}) || ed.verify != "hmac" || ed.secret.file != "/s" || ed.secret.stdin {
			t.Fatalf("pos %v verify %q secret %+v", pos, ed.verify, ed.secret)
		}
		if want := map[string]string{"header": "X-Sig", "prefix": "", "tolerance": "2m"}; !reflect.DeepEqual(ed.options, want) {
			t.Fatalf("options %v, want %v (a flag given as \"\" is given)", ed.options, want)
		}
		if !reflect.DeepEqual(ed.methods.values, []string{"post", "PUT", "patch"}) ||
			!reflect.DeepEqual(ed.headers.values, map[string]string{"X-Env": "prod", "X-Team": "a"}) ||
			!reflect.DeepEqual(ed.query.values, map[string]string{"k": "v"}) ||
			!reflect.DeepEqual(ed.rateLimit.limit, &orcheo.WebhookRateLimit{Limit: 60, Per: "1m", PerIP: 5}) ||
			!reflect.DeepEqual(ed.keep.values, []string{"x-api-key"}) {
			t.Fatalf("got %+v", ed)
		}
	})
	t.Run("NothingGiven", func(t *testing.T) {
		e, _, _ := testEnv()
		ed, _, err := e.parseWebhookEdit([]string{"greet"})
		if err != nil {
			t.Fatal(err)
		}
		if ed.methods.set || ed.keep.set || ed.headers.set || ed.query.set || ed.rateLimit.set || ed.verify != "" ||
			ed.secret.given() || len(ed.options) > 0 {
			t.Fatalf("nothing given, yet %+v", ed)
		}
	})
	for name, args := range map[string][]string{
		"BothSecretSources":     {"greet", "--verify", "github", "--secret-file", "/s", "--secret-stdin"},
		"UnknownType":           {"greet", "--verify", "md5"},
		"NoneWithSecret":        {"greet", "--verify", "none", "--secret-stdin"},
		"NoneWithOption":        {"greet", "--verify", "none", "--header", "x"},
		"BadRateLimit":          {"greet", "--rate-limit", "60 per minute"},
		"BadRequiredHeader":     {"greet", "--required-header", "X-Env"},
		"BadRequiredQuery":      {"greet", "--required-query", "=v"},
		"UnknownFlag":           {"greet", "--verfy", "github"},
		"SecretFileWithoutPath": {"greet", "--secret-file"},
	} {
		t.Run(name, func(t *testing.T) {
			e, _, _ := testEnv()
			if _, _, err := e.parseWebhookEdit(args); orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("%v: %v, want EINVALID", args, err)
			}
		})
	}
}

// TestNoSecretFlag: no command takes a secret's value, and saying one is
// refused with the reason, without repeating the value.
func TestNoSecretFlag(t *testing.T) {
	t.Parallel()
	const value = "s3cr3t-on-the-command-line"
	for _, cmd := range []string{"enable", "rotate-secret"} {
		for _, args := range [][]string{
			{"--secret", value}, {"--secret=" + value}, {"-secret", value}, {"-secret=" + value},
			{"--previous-secret", value}, {"--verify", "github", "--secret", value},
		} {
			e, out, errOut := testEnv()
			err := e.run(t.Context(), append([]string{"triggers", "webhook", cmd, "greet"}, args...))
			if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(err.Error(), "--secret-file") {
				t.Errorf("%s %v: %v, want EINVALID naming --secret-file", cmd, args, err)
			}
			if all := out.String() + errOut.String() + err.Error(); strings.Contains(all, value) {
				t.Errorf("%s %v: the value is repeated: %s", cmd, args, all)
			}
		}
		// The flag set has no such flag, and -h says why.
		e, _, errOut := testEnv()
		if err := e.run(t.Context(), []string{"triggers", "webhook", cmd, "-h"}); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s -h: %v", cmd, err)
		}
		help := errOut.String()
		if !strings.Contains(help, "There is no --secret flag") || strings.Contains(help, "  -secret\n") ||
			!strings.Contains(help, "-secret-file") || !strings.Contains(help, "Usage: orcheo triggers webhook "+cmd) {
			t.Errorf("%s -h:\n%s", cmd, help)
		}
	}
}

func TestSecretSourceRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("k", orcheo.MaxSecretBytes)
	for name, tc := range map[string]struct {
		content, want string
	}{
		"Newline":       {"hunter2\n", "hunter2"},
		"CRLF":          {"hunter2\r\n", "hunter2"},
		"NoNewline":     {"hunter2", "hunter2"},
		"OneNewline":    {"hunter2\n\n", "hunter2\n"},
		"InnerSpaces":   {" a b \n", " a b "},
		"AtTheBound":    {long + "\r\n", long},
		"StandardWhsec": {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	} {
		t.Run(name, func(t *testing.T) {
			src := secretSource{file: file(name, tc.content)}
			if got, err := src.read(nil); err != nil || got != tc.want {
				t.Fatalf("file: %q, %v; want %q", got, err, tc.want)
			}
			src = secretSource{stdin: true}
			if got, err := src.read(strings.NewReader(tc.content)); err != nil || got != tc.want {
				t.Fatalf("stdin: %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for name, tc := range map[string]struct {
		src   secretSource
		stdin string
	}{
		"EmptyFile":     {src: secretSource{file: file("empty", "")}},
		"OnlyNewline":   {src: secretSource{file: file("nl", "\n")}},
		"TooLong":       {src: secretSource{file: file("long", long+"x\n")}},
		"Missing":       {src: secretSource{file: filepath.Join(dir, "nope")}},
		"Directory":     {src: secretSource{file: dir}},
		"EmptyStdin":    {src: secretSource{stdin: true}},
		"NewlineStdin":  {src: secretSource{stdin: true}, stdin: "\r\n"},
		"TooLongStdin":  {src: secretSource{stdin: true}, stdin: long + "xx"},
		"BothSources":   {src: secretSource{file: file("both", "s\n"), stdin: true}, stdin: "s\n"},
		"NilStdinGiven": {src: secretSource{stdin: true}, stdin: "\x00nil"},
	} {
		t.Run(name, func(t *testing.T) {
			var r *strings.Reader
			if tc.stdin != "\x00nil" {
				r = strings.NewReader(tc.stdin)
			}
			var err error
			if r == nil {
				_, err = tc.src.read(nil)
			} else {
				_, err = tc.src.read(r)
			}
			if orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("%v, want EINVALID", err)
			}
			if strings.Contains(err.Error(), "kkkk") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
	if got, err := (&secretSource{}).read(strings.NewReader("x")); got != "" || err != nil {
		t.Fatalf("no source: %q, %v", got, err)
	}
}

func TestWebhookEditApply(t *testing.T) {
	t.Parallel()
	github := func() *orcheo.WebhookConfig {
		return &orcheo.WebhookConfig{
			Methods: []string{"POST"}, Keep: []string{"x-api-key"},
			RequiredHeaders: map[string]string{"x-env": "prod"}, RequiredQuery: map[string]string{"k": "v"},
			Verify:    &orcheo.WebhookVerify{Type: "github"},
			RateLimit: &orcheo.WebhookRateLimit{Limit: 60, Per: "1m"},
		}
	}
	hmac := func() *orcheo.WebhookConfig {
		return &orcheo.WebhookConfig{Verify: &orcheo.WebhookVerify{Type: "hmac", Header: "x-sig", Prefix: "sha256=", Algorithm: "sha256"}}
	}
	for name, tc := range map[string]struct {
		stored  *orcheo.WebhookConfig
		args    []string
		secret  string
		hasOne  bool
		want    *orcheo.WebhookConfig
		wantErr bool
	}{
		"NothingChangesButEnabled": {
			stored: github(), hasOne: true, args: nil,
			want: func() *orcheo.WebhookConfig { c := github(); c.Enabled = true; return c }(),
		},
		"NoVerifyStaysNone": {
			stored: &orcheo.WebhookConfig{}, want: &orcheo.WebhookConfig{Enabled: true},
		},
		"NewType": {
			stored: &orcheo.WebhookConfig{}, args: []string{"--verify", "github"}, secret: "s",
			want: &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: "github", Secret: "s"}},
		},
		"NewTypeNeedsSecret": {
			stored: &orcheo.WebhookConfig{}, args: []string{"--verify", "github"}, wantErr: true,
		},
		"OtherTypeNeedsSecret": {
			stored: github(), hasOne: true, args: []string{"--verify", "stripe"}, wantErr: true,
		},
		"OtherTypeDropsOptions": {
			stored: hmac(), hasOne: true, args: []string{"--verify", "slack", "--tolerance", "1m"}, secret: "s",
			want: &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: "slack", Secret: "s", Tolerance: "1m"}},
		},
		"SameTypeKeepsSecretAndOptions": {
			stored: hmac(), hasOne: true, args: []string{"--verify", "hmac", "--encoding", "base64", "--prefix", ""},
			want: &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: "hmac", Header: "x-sig", Algorithm: "sha256", Encoding: "base64"}},
		},
		"OptionsWithoutVerify": {
			stored: hmac(), hasOne: true, args: []string{"--timestamp-header", "x-ts", "--signed", "timestamp_body"},
			want: &orcheo.WebhookConfig{Enabled: true, Verify: &orcheo.WebhookVerify{Type: "hmac", Header: "x-sig", Prefix: "sha256=",
				Algorithm: "sha256", TimestampHeader: "x-ts", Signed: "timestamp_body"}},
		},
		"NewSecretSameType": {
			stored: github(), hasOne: true, secret: "new",
			want: func() *orcheo.WebhookConfig { c := github(); c.Enabled = true; c.Verify.Secret = "new"; return c }(),
		},
		"SecretWithoutVerification": {
			stored: &orcheo.WebhookConfig{}, secret: "s", wantErr: true,
		},
		"OptionWithoutVerification": {
			stored: &orcheo.WebhookConfig{Verify: &orcheo.WebhookVerify{Type: "none"}}, args: []string{"--header", "x"}, wantErr: true,
		},
		"VerifyNone": {
			stored: github(), hasOne: true, args: []string{"--verify", "none"},
			want: func() *orcheo.WebhookConfig {
				c := github()
				c.Enabled, c.Verify = true, &orcheo.WebhookVerify{Type: "none"}
				return c
			}(),
		},
		"ReplaceAndClear": {
			stored: github(), hasOne: true,
			args: []string{"--method", "put", "--required-header", "X-Team=a", "--required-query", "", "--keep", "", "--rate-limit", "none"},
			want: &orcheo.WebhookConfig{Enabled: true, Methods: []string{"PUT"}, RequiredHeaders: map[string]string{"X-Team": "a"},
				Verify: &orcheo.WebhookVerify{Type: "github"}},
		},
		"MethodsClearedMeansPost": {
			stored: github(), hasOne: true, args: []string{"--method", ""},
			want: func() *orcheo.WebhookConfig { c := github(); c.Enabled, c.Methods = true, nil; return c }(),
		},
	} {
		t.Run(name, func(t *testing.T) {
			e, _, _ := testEnv()
			ed, _, err := e.parseWebhookEdit(append([]string{"greet"}, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.stored
			err = ed.apply(cfg, tc.secret, tc.hasOne)
			if tc.wantErr {
				if orcheo.ErrorCode(err) != orcheo.EINVALID {
					t.Fatalf("%v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Fatalf("got %+v\nverify %+v\nwant %+v\nverify %+v", cfg, cfg.Verify, tc.want, tc.want.Verify)
			}
		})
	}
}

func TestRotateSecretFlags(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"NothingGiven":       {"greet"},
		"SecretAndDrop":      {"greet", "--secret-stdin", "--drop-previous"},
		"BothSecretSources":  {"greet", "--secret-stdin", "--secret-file", "/s"},
		"NoRef":              {"--drop-previous"},
		"TwoRefs":            {"a", "b", "--drop-previous"},
		"EmptySecretOnStdin": {"greet", "--secret-stdin"},
	} {
		t.Run(name, func(t *testing.T) {
			e, out, _ := testEnv()
			e.stdin = strings.NewReader("\n")
			err := e.run(t.Context(), append([]string{"triggers", "webhook", "rotate-secret"}, args...))
			if orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("%v, want EINVALID", err)
			}
			if out.Len() > 0 {
				t.Fatalf("printed %q", out.String())
			}
		})
	}
}

// TestUsage: orcheo help names every subcommand of each group it can
// reach, on a line that starts with the group's name.
func TestUsage(t *testing.T) {
	t.Parallel()
	e, out, _ := testEnv()
	if err := e.run(t.Context(), []string{"help"}); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	var walk func(name string, c command)
	walk = func(name string, c command) {
		g, ok := c.(*group)
		if !ok {
			fields := strings.Fields(name)
			prefix, leaf := strings.Join(fields[:len(fields)-1], " "), fields[len(fields)-1]
			found := false
			for _, line := range strings.Split(help, "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix+" "); ok {
					found = found || slices.Contains(strings.Fields(rest), leaf)
				}
			}
			if !found {
				t.Errorf("orcheo help does not list %q", name)
			}
			return
		}
		for sub, c := range g.cmds {
			walk(name+" "+sub, c)
		}
	}
	cfg := DefaultConfig()
	for name, cmds := range map[string]map[string]command{
		"workflows": workflowCommands(e, cfg), "runs": runCommands(e, cfg), "triggers": triggerCommands(e, cfg),
	} {
		walk(name, &group{name: name, cmds: cmds})
	}
	for _, want := range []string{"--secret-file PATH", "--secret-stdin", "--rate-limit N/DURATION", "--required-header K=V",
		"rotate-secret REF", "--drop-previous", "no --secret flag"} {
		if !strings.Contains(help, want) {
			t.Errorf("orcheo help lacks %q", want)
		}
	}
}
