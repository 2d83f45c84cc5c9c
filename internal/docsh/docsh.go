// Package docsh reads the shell commands that the docs show in fenced ```sh
// blocks, so that tests can run or check every one of them: the README's
// walkthrough, production and systemd blocks (test/readme_test.go,
// deploy/systemd) and docs/runbook.md (test/runbook_test.go). It is written
// once here because the e2e tests in test/ and the unit tests in
// deploy/systemd both need it and neither may import the other.
package docsh

import (
	"fmt"
	"strings"
)

// Block is one fenced ```sh block of a markdown file.
type Block struct {
	Line    int    // line of the opening fence, from 1
	Heading string // the nearest heading above it, without the #s
	Region  string // NAME of the <!-- NAME:start --> … <!-- NAME:end --> around it, if any
	Text    string // the lines between the fences
}

// Blocks returns every ```sh block of markdown, in order.
func Blocks(markdown string) []Block {
	var (
		out     []Block
		cur     *Block
		body    []string
		heading string
		region  string
	)
	for i, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if trimmed == "```" {
				cur.Text = strings.Join(body, "\n")
				out = append(out, *cur)
				cur, body = nil, nil
				continue
			}
			body = append(body, line)
			continue
		}
		switch {
		case trimmed == "```sh":
			cur = &Block{Line: i + 1, Heading: heading, Region: region}
		case strings.HasPrefix(trimmed, "#") && !strings.HasPrefix(trimmed, "#!"):
			heading = strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		case strings.HasPrefix(trimmed, "<!-- ") && strings.HasSuffix(trimmed, ":start -->"):
			region = strings.TrimSuffix(strings.TrimPrefix(trimmed, "<!-- "), ":start -->")
		case strings.HasPrefix(trimmed, "<!-- ") && strings.HasSuffix(trimmed, ":end -->"):
			region = ""
		}
	}
	return out
}

// Region returns the one ```sh block inside <!-- name:start --> and
// <!-- name:end -->.
func Region(markdown, name string) (Block, error) {
	var found []Block
	for _, b := range Blocks(markdown) {
		if b.Region == name {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		return Block{}, fmt.Errorf("want one ```sh block in <!-- %s:start --> … <!-- %s:end -->, found %d", name, name, len(found))
	}
	return found[0], nil
}

// Command is one logical line of a block: continuation lines joined, the
// comment removed.
type Command struct {
	Line int // line in the markdown file, from 1
	Text string
}

// Commands returns the block's logical lines, without blank and comment
// lines.
func (b Block) Commands() []Command {
	var out []Command
	var pending []string
	start := 0
	for i, line := range strings.Split(b.Text, "\n") {
		if len(pending) == 0 {
			start = b.Line + 1 + i
		}
		code := strings.TrimSpace(StripComment(line))
		if cont := strings.HasSuffix(code, `\`); cont {
			pending = append(pending, strings.TrimSpace(strings.TrimSuffix(code, `\`)))
			continue
		}
		pending = append(pending, code)
		text := strings.TrimSpace(strings.Join(pending, " "))
		pending = nil
		if text != "" {
			out = append(out, Command{Line: start, Text: text})
		}
	}
	return out
}

// StripComment removes a # comment that starts a word outside quotes.
func StripComment(line string) string {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t' || prev == ';'):
			return line[:i]
		}
		prev = r
	}
	return line
}

// Simple splits a command line into its simple commands at &&, ||, ;, |
// and ( ) outside quotes and $( ): "make build && install …" is two.
func Simple(line string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		depth int // inside $( … )
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			}
		case quote == '"' && r == '"':
			quote = 0
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			depth++
			cur.WriteRune(r)
			i++
			r = rs[i]
		case depth > 0 && r == ')':
			depth--
		case quote != 0 || depth > 0:
		case r == '\'' || r == '"':
			quote = r
		case r == '&' && i+1 < len(rs) && rs[i+1] == '&', r == '|' && i+1 < len(rs) && rs[i+1] == '|':
			flush()
			i++
			continue
		case r == ';' || r == '|' || r == '(' || r == ')':
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return out
}

// Tool is the program a simple command runs: its first word after any
// leading NAME=value assignments and "sudo"; "" for a bare assignment.
func Tool(simple string) string {
	depth := 0 // inside an assignment's $( … ), whose commands are not this one's
	for _, w := range strings.Fields(simple) {
		if depth > 0 || isAssignment(w) {
			depth += strings.Count(w, "$(") - strings.Count(w, ")")
			continue
		}
		if w == "sudo" {
			continue
		}
		return w
	}
	return ""
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// HostTools are the programs that change or read a host's systemd and
// files, which the tests in test/ cannot run: deploy/systemd's tests check
// every such command of README.md and docs/runbook.md (TestDocHostCommands)
// and run the install blocks against a scratch root.
var HostTools = map[string]bool{
	"systemctl":  true,
	"journalctl": true,
	"install":    true,
	"useradd":    true,
}

// HostCommands returns the simple commands of markdown's blocks whose tool
// is one of HostTools, each with its line.
func HostCommands(markdown string) []Command {
	var out []Command
	for _, b := range Blocks(markdown) {
		for _, c := range b.Commands() {
			for _, s := range Simple(c.Text) {
				if HostTools[Tool(s)] {
					out = append(out, Command{Line: c.Line, Text: s})
				}
			}
		}
	}
	return out
}
