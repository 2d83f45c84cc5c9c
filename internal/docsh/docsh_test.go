package docsh

import (
	"reflect"
	"testing"
)

const doc = "# Title\n\n## Install\n\n<!-- setup:start -->\n```sh\n" +
	"make build && install -m 755 bin/orcheo /usr/local/bin/orcheo   # the binary\n" +
	"# a comment line\n\n" +
	"curl -s -X POST \"$URL/x?a=1#frag\" \\\n  -d '{\"a\": \"# not a comment\"}'\n" +
	"```\n<!-- setup:end -->\n\ntext\n\n```sh\nsystemctl reload orcheo-api; journalctl -u orcheo-api | tail -n 5\n```\n" +
	"```yaml\nnot: sh\n```\n"

func TestBlocks(t *testing.T) {
	bs := Blocks(doc)
	if len(bs) != 2 {
		t.Fatalf("got %d blocks, want 2: %+v", len(bs), bs)
	}
	if bs[0].Line != 6 || bs[0].Heading != "Install" || bs[0].Region != "setup" || bs[1].Region != "" {
		t.Errorf("block 0 = %+v, block 1 = %+v", bs[0], bs[1])
	}
	got := bs[0].Commands()
	want := []Command{
		{Line: 7, Text: "make build && install -m 755 bin/orcheo /usr/local/bin/orcheo"},
		{Line: 10, Text: `curl -s -X POST "$URL/x?a=1#frag" -d '{"a": "# not a comment"}'`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Commands() = %+v, want %+v", got, want)
	}
	if _, err := Region(doc, "setup"); err != nil {
		t.Error(err)
	}
	if _, err := Region(doc, "missing"); err == nil {
		t.Error("Region of a missing name: no error")
	}
}

func TestSimpleAndTool(t *testing.T) {
	for line, want := range map[string][]string{
		"make build && install -m 755 a b":                                  {"make build", "install -m 755 a b"},
		"systemctl reload orcheo-api; journalctl -u orcheo-api | tail -n 5": {"systemctl reload orcheo-api", "journalctl -u orcheo-api", "tail -n 5"},
		`X=$(orcheo runs list | head -n1) && echo "a; b || c"`:              {"X=$(orcheo runs list | head -n1)", `echo "a; b || c"`},
		"(umask 077; openssl rand -hex 20 > s)":                             {"umask 077", "openssl rand -hex 20 > s"},
	} {
		if got := Simple(line); !reflect.DeepEqual(got, want) {
			t.Errorf("Simple(%q) = %q, want %q", line, got, want)
		}
	}
	for s, want := range map[string]string{
		"ORCHEO_URL=http://x:8080 ./bin/orcheo beat": "./bin/orcheo",
		"sudo systemctl start orcheo-worker@3":       "systemctl",
		"RUN_ID=abc":                                 "",
	} {
		if got := Tool(s); got != want {
			t.Errorf("Tool(%q) = %q, want %q", s, got, want)
		}
	}
	hc := HostCommands(doc)
	if len(hc) != 3 || hc[0].Text != "install -m 755 bin/orcheo /usr/local/bin/orcheo" || hc[2].Text != "journalctl -u orcheo-api" {
		t.Errorf("HostCommands = %+v", hc)
	}
}
