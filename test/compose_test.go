package test

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/orcheo/orcheo/internal/testenv"
	"gopkg.in/yaml.v3"
)

// TestComposeMatchesReadme parses docker-compose.yml (this machine has no
// Docker engine or compose plugin; Debian's docker-compose package pulls in
// a Python stack) and checks it against the README: a postgres and a redis
// service, published on the loopback ports and with the credentials of the
// README's connection strings for `docker compose up -d`.
func TestComposeMatchesReadme(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("docker compose up -d`[^`]*`ORCHEO_DATABASE_URL='([^']+)'`[^`]*`REDIS_URL=([^`]+)`").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no `docker compose up -d` paragraph with ORCHEO_DATABASE_URL and REDIS_URL")
	}
	pg, err := url.Parse(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := url.Parse(string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	if len(compose.Services) != 2 {
		t.Errorf("services %v, want postgres and redis", compose.Services)
	}
	p, r := compose.Services["postgres"], compose.Services["redis"]
	pass, _ := pg.User.Password()
	env := map[string]string{"POSTGRES_USER": pg.User.Username(), "POSTGRES_PASSWORD": pass, "POSTGRES_DB": pg.Path[1:]}
	for k, want := range env {
		if p.Environment[k] != want {
			t.Errorf("postgres %s=%q, the README's URL says %q", k, p.Environment[k], want)
		}
	}
	if want := pg.Hostname() + ":" + pg.Port() + ":5432"; !slices.Contains(p.Ports, want) {
		t.Errorf("postgres ports %q, want %q (the README's URL)", p.Ports, want)
	}
	if want := rd.Hostname() + ":" + rd.Port() + ":6379"; !slices.Contains(r.Ports, want) {
		t.Errorf("redis ports %q, want %q (the README's REDIS_URL)", r.Ports, want)
	}
	if p.Image == "" || r.Image == "" {
		t.Errorf("images %q %q", p.Image, r.Image)
	}
}

// TestDatabaseURLFromPGVariables checks what docs/configuration.md says of
// the PG* variables: a postgres:// URL without host, user or TLS mode is
// completed from them.
func TestDatabaseURLFromPGVariables(t *testing.T) {
	u, err := url.Parse(testenv.PostgresURL(t, "e2e_pgenv"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"ORCHEO_DATABASE_URL=postgres://" + u.Path, "PGHOST=" + u.Hostname(), "PGPORT=" + u.Port(),
		"PGUSER=" + u.User.Username(), "PGSSLMODE=disable"}
	if out, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("orcheo migrate with PG* variables: exit %d: %s", code, out)
	}
	// And they are read: a wrong PGPORT fails.
	bad := append(append([]string{}, env...), "PGPORT=1", "PGCONNECT_TIMEOUT=2")
	if out, code := cli(t, bad, "migrate"); code == 0 {
		t.Fatalf("orcheo migrate with PGPORT=1 succeeded: %s", out)
	}
}
