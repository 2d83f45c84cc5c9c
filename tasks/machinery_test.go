package tasks

import (
	"strings"
	"testing"

	machinery "github.com/RichardKnop/machinery/v2"
)

// TestMachineryConfig_NoSecretsLogged: machinery logs its broker and result
// backend URLs through RedactURL, which prints the whole URL when url.Parse
// fails on it, as it does on a redis+sentinel:// URL of several IPv6
// hosts; the URLs machinery gets hold the scheme and the hosts, never a
// password.
func TestMachineryConfig_NoSecretsLogged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"redis+sentinel://:s3cret@[::1]:26379,[::2]:26379/mymaster/0?sentinel_password=s3cret2", "redis+sentinel://[::1]:26379,[::2]:26379"},
		{"redis+sentinel://user:s3cret@10.0.0.1,10.0.0.2:26380/mymaster", "redis+sentinel://10.0.0.1,10.0.0.2:26380"},
		{"redis://:s3cret@127.0.0.1:6379/2", "redis://127.0.0.1:6379"},
		{"rediss://user:s3cret@[::1]:6380/0", "rediss://[::1]:6380"},
	} {
		cfg := Config{RedisURL: tc.url}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		cnf := machineryConfig(&cfg)
		for _, logged := range []string{machinery.RedactURL(cnf.Broker), machinery.RedactURL(cnf.ResultBackend)} {
			if strings.Contains(logged, "s3cret") {
				t.Errorf("machinery logs %q for %s: a password", logged, tc.want)
			}
		}
		if cnf.Broker != tc.want || cnf.ResultBackend != tc.want {
			t.Errorf("broker %q, result backend %q; want %q", cnf.Broker, cnf.ResultBackend, tc.want)
		}
	}
}
