package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runConfigCommand runs `orcheo config args…` in the environment kv and
// returns what it printed.
func runConfigCommand(t *testing.T, kv map[string]string, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return kv[k] }}
	if err := e.run(context.Background(), append([]string{"config"}, args...)); err != nil {
		t.Fatalf("orcheo config %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// configJSON runs `orcheo config --json` and returns its settings by name.
func configJSON(t *testing.T, kv map[string]string) map[string]configSetting {
	t.Helper()
	var doc struct {
		Settings []configSetting `json:"settings"`
	}
	if err := json.Unmarshal([]byte(runConfigCommand(t, kv, "--json")), &doc); err != nil {
		t.Fatal(err)
	}
	byName := map[string]configSetting{}
	for _, s := range doc.Settings {
		if _, dup := byName[s.Name]; dup {
			t.Fatalf("%s is listed twice", s.Name)
		}
		byName[s.Name] = s
	}
	return byName
}

// TestConfigCommand_NoSecrets: with a distinctive value in every secret
// (tokens, the secrets key, passwords in the database and Redis URLs, in
// the user info and in the query, a sentinel password, a token file, a
// workflow's variable), neither the text nor the JSON output holds any of
// them, raw or escaped, and each set secret shows as ****.
func TestConfigCommand_NoSecrets(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokenFile, []byte("ops admin fileSecret9ZZZZZZZZZZZZ\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		"apiSecret1XXXXXXXXXXXXX", "tokSecret2YYYYYYYYYYYY", "tokSecret3WWWWWWWWWWWW", "keySecret4", "cliSecret5",
		"db$ecret6@x/y:z", "dbSecret7", "dbSecret8", "redisSecret9", "sentinelSecret10", "fileSecret9ZZZZZZZZZZZZ",
		"wfSecret11",
	}
	base := map[string]string{
		"ORCHEO_API_TOKEN":       secrets[0],
		"ORCHEO_API_TOKENS":      "ops:admin:" + secrets[1] + ",grafana:read:" + secrets[2],
		"ORCHEO_SECRETS_KEY":     secrets[3],
		"ORCHEO_TOKEN":           secrets[4],
		"ORCHEO_API_TOKENS_FILE": tokenFile,
		"ORCHEO_DATABASE_URL": "postgres://orcheo:" + url.QueryEscape(secrets[5]) + "@db:5432/orcheo?sslmode=require&password=" +
			secrets[6] + "&sslpassword=" + secrets[7],
		"ORCHEO_WORKFLOW_ENV": "PARTNER_KEY",
		"PARTNER_KEY":         secrets[11],
	}
	plain := map[string]string{"REDIS_URL": "redis://:" + secrets[8] + "@127.0.0.1:6379/0"}
	sentinel := map[string]string{
		"REDIS_URL":                    "redis://:" + secrets[8] + "@x/2",
		"ORCHEO_REDIS_SENTINELS":       "s1:26379,s2:26379",
		"ORCHEO_REDIS_SENTINEL_MASTER": "mymaster",
	}
	sentinelURL := map[string]string{"REDIS_URL": "redis+sentinel://:" + secrets[8] + "@s1,s2/mymaster/2?sentinel_password=" + secrets[9]}
	for name, redisEnv := range map[string]map[string]string{"Plain": plain, "Sentinels": sentinel, "SentinelURL": sentinelURL} {
		t.Run(name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range base {
				kv[k] = v
			}
			for k, v := range redisEnv {
				kv[k] = v
			}
			text, js := runConfigCommand(t, kv), runConfigCommand(t, kv, "--json")
			for _, out := range []string{text, js} {
				for _, s := range secrets {
					quoted, _ := json.Marshal(s)
					for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), string(quoted[1 : len(quoted)-1])} {
						if strings.Contains(out, form) {
							t.Fatalf("the output holds the secret %q:\n%s", form, out)
						}
					}
				}
			}
			got := configJSON(t, kv)
			for name, want := range map[string]string{
				"ORCHEO_API_TOKEN":       masked,
				"ORCHEO_API_TOKENS":      "ops:admin:****,grafana:read:****",
				"ORCHEO_SECRETS_KEY":     masked,
				"ORCHEO_TOKEN":           masked,
				"ORCHEO_API_TOKENS_FILE": tokenFile,
				"ORCHEO_DATABASE_URL":    "postgres://orcheo:****@db:5432/orcheo?sslmode=require&password=****&sslpassword=****",
				"ORCHEO_WORKFLOW_ENV":    "PARTNER_KEY",
			} {
				if got[name].Value != want || got[name].Source != "env" {
					t.Errorf("%s = %+v, want %q from env", name, got[name], want)
				}
			}
			if r := got["REDIS_URL"]; !strings.Contains(r.Value, ":****@") || r.Source != "env" {
				t.Errorf("REDIS_URL = %+v, want its password masked", r)
			}
			if strings.Contains(kv["REDIS_URL"], "sentinel_password") && !strings.Contains(got["REDIS_URL"].Value, "sentinel_password=****") {
				t.Errorf("REDIS_URL = %q, want the sentinel password masked", got["REDIS_URL"].Value)
			}
		})
	}
}

// TestConfigCommand_EveryVariable: every variable ConfigFromEnv reads is
// listed once, with its source; the values are the effective ones,
// including what the tasks package derives from a zero (the heartbeat is
// a third of a short lease).
func TestConfigCommand_EveryVariable(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	if _, err := ConfigFromEnv(func(name string) string { read[name] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	kv := map[string]string{
		"ORCHEO_WORKER_CONCURRENCY": "3",
		"ORCHEO_LEASE_DURATION":     "15s",
		"ORCHEO_RUN_RETENTION":      "7d",
		"ORCHEO_QUEUES":             "a,b",
		"ORCHEO_API_TOKEN":          "only-the-cli-falls-back-to-it",
	}
	got := configJSON(t, kv)
	for name := range read {
		s, ok := got[name]
		if !ok {
			t.Errorf("%s is read by ConfigFromEnv but not shown by orcheo config", name)
			continue
		}
		want := "default"
		if kv[name] != "" || name == "ORCHEO_TOKEN" {
			want = "env"
		}
		if s.Source != want {
			t.Errorf("%s: source %q, want %q", name, s.Source, want)
		}
	}
	for name := range got {
		if !read[name] {
			t.Errorf("orcheo config shows %s, which ConfigFromEnv never reads", name)
		}
	}
	for name, want := range map[string]string{
		"ORCHEO_WORKER_CONCURRENCY": "3", "ORCHEO_LEASE_DURATION": "15s", "ORCHEO_HEARTBEAT_INTERVAL": "5s",
		"ORCHEO_CONSUMER_TTL": "30s", "ORCHEO_RUN_RETENTION": "7d", "ORCHEO_QUEUES": "a,b", "ORCHEO_HEALTH_GRACE": "30s",
		"ORCHEO_WORKER_DRAIN_TIMEOUT": "30s", "ORCHEO_HTTP_ADDR": "127.0.0.1:8080", "ORCHEO_TOKEN": masked,
		"ORCHEO_SECRETS_KEY": "",
	} {
		if got[name].Value != want {
			t.Errorf("%s = %q, want %q", name, got[name].Value, want)
		}
	}
	// The table for people has the same rows.
	text := runConfigCommand(t, kv)
	for name, s := range got {
		v := s.Value
		if v == "" {
			v = "-"
		}
		if !strings.Contains(text, name+" ") || !strings.Contains(text, v) {
			t.Errorf("the table has no row %s %s:\n%s", name, v, text)
		}
	}
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                                      "",
		"sqlite:/var/lib/orcheo/orcheo.db":                      "sqlite:/var/lib/orcheo/orcheo.db",
		"postgres://u@h/db":                                     "postgres://u@h/db",
		"postgres://u:p@h/db":                                   "postgres://u:****@h/db",
		"postgres://u:p@ss/w@h:5432/db":                         "postgres://u:****@h:5432/db",
		"postgres:///db?password=x&sslmode=":                    "postgres:///db?password=****&sslmode=",
		"host=h user=u password='a b\\'c' dbname=d":             "host=h user=u password=**** dbname=d",
		"host=h password = secret dbname=d":                     "host=h password = **** dbname=d",
		"redis://:pw@127.0.0.1:6379/0":                          "redis://:****@127.0.0.1:6379/0",
		"redis+sentinel://:pw@a:1,b:2/m/0?sentinel_password=sp": "redis+sentinel://:****@a:1,b:2/m/0?sentinel_password=****",
		"unix:///run/redis.sock?password=x&db=1":                "unix:///run/redis.sock?password=****&db=1",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}
