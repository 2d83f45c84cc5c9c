package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

func webhookCommands(e *env, cfg Config) command {
	return &group{name: "triggers webhook", cmds: map[string]command{
		"enable":        &webhookEnable{env: e, cfg: cfg},
		"disable":       &webhookDisable{env: e, cfg: cfg},
		"show":          &webhookShow{env: e, cfg: cfg},
		"rotate-secret": &webhookRotateSecret{env: e, cfg: cfg},
	}}
}

// noSecretFlag is said wherever a secret is read: a value on the command
// line stays in shell history and in every process listing.
const noSecretFlag = "There is no --secret flag: a secret on the command line stays in shell history and\n" +
	"process listings. Give it with --secret-file PATH (a trailing newline is trimmed)\n" +
	"or --secret-stdin."

// webhookURL is the address third parties call to trigger ref.
func (c Config) webhookURL(ref string) string {
	return strings.TrimRight(c.URL, "/") + "/api/workflows/" + ref + "/triggers/webhook"
}

// webhookMethods returns the methods a webhook accepts: POST if none.
func webhookMethods(methods []string) []string {
	if len(methods) == 0 {
		return []string{"POST"}
	}
	return methods
}

// setUsage makes fs -h print the synopsis and notes above the flags.
func setUsage(fs *flag.FlagSet, synopsis, notes string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: orcheo %s\n\n", synopsis)
		if notes != "" {
			fmt.Fprintf(w, "%s\n\n", notes)
		}
		fmt.Fprintln(w, "Flags:")
		fs.PrintDefaults()
	}
}

// refuseSecretFlag returns EINVALID for a --secret flag, with the reason
// it does not exist, before the flag package would print a bare "not
// defined" (neither ever repeats the value).
func refuseSecretFlag(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "secret" || name == "previous-secret") {
			return orcheo.Errorf(orcheo.EINVALID, "--%s: no flag takes a secret's value (it would stay in shell history and process listings); use --secret-file PATH or --secret-stdin", name)
		}
	}
	return nil
}

// secretSource is where a command reads a secret from: --secret-file or
// --secret-stdin, at most one.
type secretSource struct {
	file  string
	stdin bool
}

func (s *secretSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "secret-file", "", "read the secret from this file (a trailing newline is trimmed); never give a secret on the command line")
	fs.BoolVar(&s.stdin, "secret-stdin", false, "read the secret from standard input (a trailing newline is trimmed)")
}

func (s *secretSource) given() bool { return s.file != "" || s.stdin }

// read returns the secret, or "" if no source was given. A trailing
// newline (\n or \r\n, as editors and echo leave) is trimmed; an empty or
// oversized secret is EINVALID. Errors never contain the secret.
func (s *secretSource) read(stdin io.Reader) (string, error) {
	var (
		r    io.Reader
		from string
	)
	switch {
	case s.file != "" && s.stdin:
		return "", orcheo.Errorf(orcheo.EINVALID, "--secret-file and --secret-stdin: give one")
	case s.file != "":
		f, err := os.Open(s.file)
		if err != nil {
			return "", orcheo.Errorf(orcheo.EINVALID, "--secret-file: %v", err)
		}
		defer f.Close()
		r, from = f, s.file
	case s.stdin:
		if stdin == nil {
			return "", orcheo.Errorf(orcheo.EINVALID, "--secret-stdin: no standard input")
		}
		r, from = stdin, "standard input"
	default:
		return "", nil
	}
	// Two bytes more than the bound leave room for "\r\n".
	b, err := io.ReadAll(io.LimitReader(r, orcheo.MaxSecretBytes+3))
	if err != nil {
		return "", orcheo.Errorf(orcheo.EINVALID, "read the secret from %s: %v", from, err)
	}
	secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case secret == "":
		return "", orcheo.Errorf(orcheo.EINVALID, "the secret in %s is empty", from)
	case len(secret) > orcheo.MaxSecretBytes:
		return "", orcheo.Errorf(orcheo.EINVALID, "the secret in %s is longer than %d bytes", from, orcheo.MaxSecretBytes)
	}
	return secret, nil
}

// listFlag is a repeatable flag whose values may also be comma-separated.
// Set says whether it was given at all; "" clears the list.
type listFlag struct {
	values []string
	set    bool
}

func (f *listFlag) String() string { return strings.Join(f.values, ",") }

func (f *listFlag) Set(s string) error {
	f.set = true
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			f.values = append(f.values, v)
		}
	}
	return nil
}

// kvFlag is a repeatable K=V flag. Given at all, it replaces the stored
// values; "" alone clears them.
type kvFlag struct {
	values map[string]string
	set    bool
}

func (f *kvFlag) String() string {
	var parts []string
	for k, v := range f.values {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (f *kvFlag) Set(s string) error {
	f.set = true
	if f.values == nil {
		f.values = map[string]string{}
	}
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return fmt.Errorf("%q is not NAME=VALUE", s)
	}
	if _, dup := f.values[k]; dup {
		return fmt.Errorf("%s given twice", k)
	}
	f.values[k] = v
	return nil
}

// rateLimitFlag is --rate-limit N/DURATION[,per-ip=M], or none.
type rateLimitFlag struct {
	limit *orcheo.WebhookRateLimit // nil with set: remove the limit
	set   bool
}

func (f *rateLimitFlag) String() string {
	if f.limit == nil {
		return ""
	}
	return formatRateLimit(f.limit)
}

func (f *rateLimitFlag) Set(s string) error {
	l, err := parseRateLimit(s)
	if err != nil {
		return err
	}
	f.limit, f.set = l, true
	return nil
}

// parseRateLimit reads "60/1m", "60/m" (a bare unit s, m or h is one of
// it), "100/1h,per-ip=10" or "none" (no limit, nil).
func parseRateLimit(s string) (*orcheo.WebhookRateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "none" || s == "off" {
		return nil, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%q: %s (want N/DURATION[,per-ip=M] such as 60/1m or 600/1h,per-ip=60, or none)", s, why)
	}
	head, extra, hasExtra := strings.Cut(s, ",")
	n, per, ok := strings.Cut(head, "/")
	if !ok {
		return nil, bad("no /")
	}
	l := &orcheo.WebhookRateLimit{}
	var err error
	if l.Limit, err = strconv.Atoi(strings.TrimSpace(n)); err != nil {
		return nil, bad("the count is not a whole number")
	}
	per = strings.TrimSpace(per)
	switch per {
	case "s", "m", "h":
		per = "1" + per
	}
	if _, err := time.ParseDuration(per); err != nil {
		return nil, bad("the window is not a duration")
	}
	l.Per = per
	if hasExtra {
		k, v, _ := strings.Cut(strings.TrimSpace(extra), "=")
		if k != "per-ip" && k != "per_ip" {
			return nil, bad("the only option is per-ip=M")
		}
		if l.PerIP, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || l.PerIP < 1 {
			return nil, bad("per-ip is not a positive whole number")
		}
	}
	if err := l.Validate(); err != nil {
		return nil, bad(orcheo.ErrorMessage(err))
	}
	return l, nil
}

// formatRateLimit is the human form of a limit, the one --rate-limit reads.
func formatRateLimit(l *orcheo.WebhookRateLimit) string {
	s := fmt.Sprintf("%d/%s", l.Limit, l.Per)
	if l.PerIP > 0 {
		s += fmt.Sprintf(",per-ip=%d", l.PerIP)
	}
	return s
}
