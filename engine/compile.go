package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// FormatVersion is the only definition format version this engine reads.
const FormatVersion = 1

var (
	idRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]*$`)

	topLevelKeys = []string{"version", "description", "timeout", "retry", "nodes", "edges"}
	// nodeKeys are read by the engine itself; all other keys of a node are
	// options of its type.
	nodeKeys = []string{"id", "type", "timeout", "next", "retry", "continue_on_error"}
	edgeKeys = []string{"from", "to"}
)

// program is a compiled definition, immutable and shared by every run of it.
type program struct {
	description string
	timeout     time.Duration // 0: none
	timeoutText string        // as written, for the canonical form
	// retry is the run retry policy object as written (checked by
	// orcheo.ParseRetryPolicy); the worker, not the engine, applies it.
	retry     json.RawMessage
	nodes     []*node // in definition order
	graph     *graph
	canonical json.RawMessage
}

// node is a compiled node.
type node struct {
	id          string
	typ         string
	timeout     time.Duration // 0: none
	timeoutText string
	next        string
	retry       retryPolicy
	// continueOnError lets the run go on after the node failed.
	continueOnError bool
	// targets are the edges the node's type declared through Spec.Target
	// (an if node's then and else).
	targets []rawEdge
	// branching marks a type whose successors are its targets only.
	branching bool
	action    Action
	opts      map[string]json.RawMessage
}

// invalid returns an EINVALID error.
func invalid(format string, args ...any) error {
	return orcheo.Errorf(orcheo.EINVALID, format, args...)
}

// compile parses, validates and compiles a definition with the engine's
// node types and limits.
func (e *Engine) compile(data []byte) (*program, error) {
	return compile(data, e.types, limits{maxDelay: e.maxDelay})
}

// limits are the engine settings node types check at compile time.
type limits struct {
	maxDelay time.Duration
}

// compile parses, validates and compiles a definition with the given node
// types. Every error is EINVALID and names the node or key at fault.
func compile(data []byte, types map[string]NodeType, lim limits) (*program, error) {
	doc, err := documentJSON(data)
	if err != nil {
		return nil, err
	}
	top, ok := object(doc)
	if !ok {
		return nil, invalid("definition must be an object with a list of nodes")
	}
	if err := checkKeys(top, topLevelKeys, func(k string) error {
		return invalid("field %q: unknown key (want %s)", k, quoteList(topLevelKeys))
	}); err != nil {
		return nil, err
	}
	p := &program{}
	if raw, ok := top["version"]; ok {
		var v int
		if json.Unmarshal(raw, &v) != nil || v != FormatVersion {
			return nil, invalid("field \"version\": must be %d, got %s", FormatVersion, raw)
		}
	}
	if raw, ok := top["description"]; ok {
		if json.Unmarshal(raw, &p.description) != nil {
			return nil, invalid("field \"description\": must be a string")
		}
	}
	if raw, ok := top["timeout"]; ok {
		if p.timeout, p.timeoutText, err = parseTimeout(raw); err != nil {
			return nil, invalid("field \"timeout\": %s", err)
		}
	}
	if raw, ok := top["retry"]; ok {
		if _, err := orcheo.ParseRetryPolicy(raw); err != nil {
			return nil, err
		}
		p.retry = raw
	}
	if p.nodes, err = compileNodes(top["nodes"], types, lim); err != nil {
		return nil, err
	}
	edges, err := decodeEdges(top["edges"])
	if err != nil {
		return nil, err
	}
	if p.graph, err = buildGraph(p.nodes, edges); err != nil {
		return nil, err
	}
	if p.canonical, err = canonical(p, edges); err != nil {
		return nil, fmt.Errorf("encode canonical definition: %w", err)
	}
	return p, nil
}

// compileNodes compiles the node list in two passes: ids first, so that
// expressions and `next` can refer to any node, then types and options.
func compileNodes(raw json.RawMessage, types map[string]NodeType, lim limits) ([]*node, error) {
	if raw == nil {
		return nil, invalid("field \"nodes\": required")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("field \"nodes\": must be a list of nodes")
	}
	if len(list) == 0 {
		return nil, invalid("field \"nodes\": at least one node is required")
	}
	nodes := make([]*node, len(list))
	ids := make(map[string]bool, len(list))
	for i, r := range list {
		opts, ok := object(r)
		if !ok {
			return nil, invalid("nodes[%d]: must be an object", i)
		}
		var id string
		if raw, ok := opts["id"]; !ok {
			return nil, invalid("nodes[%d]: field \"id\": required", i)
		} else if json.Unmarshal(raw, &id) != nil {
			return nil, invalid("nodes[%d]: field \"id\": must be a string", i)
		}
		if !idRE.MatchString(id) {
			return nil, invalid("nodes[%d]: field \"id\": %q must start with a letter or _ and contain only letters, digits, _ and -", i, id)
		}
		if ids[id] {
			return nil, invalid("node %q: field \"id\": duplicate id (nodes[%d])", id, i)
		}
		ids[id] = true
		nodes[i] = &node{id: id, opts: opts}
	}
	for _, n := range nodes {
		if err := compileNode(n, types, ids, lim); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

func compileNode(n *node, types map[string]NodeType, ids map[string]bool, lim limits) error {
	raw, ok := n.opts["type"]
	if !ok {
		return invalid("node %q: field \"type\": required", n.id)
	}
	if json.Unmarshal(raw, &n.typ) != nil {
		return invalid("node %q: field \"type\": must be a string", n.id)
	}
	nt, ok := types[n.typ]
	if !ok {
		return invalid("node %q: field \"type\": unknown node type %q (want %s)", n.id, n.typ, quoteList(typeNames(types)))
	}
	if raw, ok := n.opts["timeout"]; ok {
		d, text, err := parseTimeout(raw)
		if err != nil {
			return invalid("node %q: field \"timeout\": %s", n.id, err)
		}
		n.timeout, n.timeoutText = d, text
	}
	if raw, ok := n.opts["next"]; ok {
		if json.Unmarshal(raw, &n.next) != nil {
			return invalid("node %q: field \"next\": must be a node id", n.id)
		}
		if !ids[n.next] {
			return invalid("node %q: field \"next\": unknown node %q", n.id, n.next)
		}
	}
	if raw, ok := n.opts["retry"]; ok {
		r, field, err := parseRetry(raw)
		if err != nil {
			return invalid("node %q: field %q: %s", n.id, field, err)
		}
		n.retry = r
	}
	if raw, ok := n.opts["continue_on_error"]; ok {
		if json.Unmarshal(raw, &n.continueOnError) != nil {
			return invalid("node %q: field \"continue_on_error\": must be true or false", n.id)
		}
	}
	spec := &Spec{ID: n.id, Type: n.typ, opts: map[string]json.RawMessage{}, read: map[string]bool{}, nodeIDs: ids, limits: lim}
	for k, v := range n.opts {
		if !contains(nodeKeys, k) {
			spec.opts[k] = v
		}
	}
	action, err := nt.Compile(spec)
	if err != nil {
		return err
	}
	if unknown := spec.unread(); len(unknown) > 0 {
		return invalid("node %q: field %q: unknown option for type %q", n.id, unknown[0], n.typ)
	}
	n.action = action
	n.targets = spec.targets
	_, n.branching = nt.(Brancher)
	if n.branching && n.next != "" {
		return invalid("node %q: field \"next\": a %s node continues through its branches only", n.id, n.typ)
	}
	if n.branching && n.continueOnError {
		return invalid("node %q: field \"continue_on_error\": not allowed on a %s node (a failed branch choice has no path to continue on)", n.id, n.typ)
	}
	return nil
}

// rawEdge is one entry of the edges list, with where it came from for
// error messages.
type rawEdge struct {
	from, to string
	origin   string // `edges[3]` or `node "a"` (its next)
	field    string // the field an error about the target names
}

func decodeEdges(raw json.RawMessage) ([]rawEdge, error) {
	if raw == nil {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("field \"edges\": must be a list of {from, to}")
	}
	edges := make([]rawEdge, 0, len(list))
	for i, r := range list {
		m, ok := object(r)
		if !ok {
			return nil, invalid("edges[%d]: must be an object {from, to}", i)
		}
		if err := checkKeys(m, edgeKeys, func(k string) error {
			return invalid("edges[%d]: field %q: unknown key (want \"from\", \"to\")", i, k)
		}); err != nil {
			return nil, err
		}
		e := rawEdge{origin: fmt.Sprintf("edges[%d]", i), field: "to"}
		for _, f := range []struct {
			name string
			dst  *string
		}{{"from", &e.from}, {"to", &e.to}} {
			v, ok := m[f.name]
			if !ok {
				return nil, invalid("edges[%d]: field %q: required", i, f.name)
			}
			if json.Unmarshal(v, f.dst) != nil {
				return nil, invalid("edges[%d]: field %q: must be a node id", i, f.name)
			}
		}
		edges = append(edges, e)
	}
	return edges, nil
}

// parseTimeout reads a positive Go duration string such as "30s".
// It returns the duration and its trimmed text.
func parseTimeout(raw json.RawMessage) (time.Duration, string, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, "", fmt.Errorf("must be a duration string such as \"30s\", got %s", raw)
	}
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, "", fmt.Errorf("invalid duration %q (use Go syntax such as \"500ms\", \"30s\", \"2m\")", s)
	}
	if d <= 0 {
		return 0, "", fmt.Errorf("duration %q must be positive", s)
	}
	return d, s, nil
}

// checkKeys returns unknown(k) for the first key of m, in sorted order,
// that is not in known.
func checkKeys(m map[string]json.RawMessage, known []string, unknown func(string) error) error {
	var bad []string
	for k := range m {
		if !contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	first := bad[0]
	for _, k := range bad {
		if k < first {
			first = k
		}
	}
	return unknown(first)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// canonical encodes p: version first, nodes with id and type first and
// options in key order, edges as given. Equal definitions written in JSON
// or YAML, with any key order, encode to the same bytes, and compiling the
// canonical form returns it unchanged.
func canonical(p *program, edges []rawEdge) (json.RawMessage, error) {
	var top orderedObject
	top.add("version", FormatVersion)
	if p.description != "" {
		top.add("description", p.description)
	}
	if p.timeoutText != "" {
		top.add("timeout", p.timeoutText)
	}
	if p.retry != nil {
		top.add("retry", p.retry)
	}
	nodes := make([]json.RawMessage, 0, len(p.nodes))
	for _, n := range p.nodes {
		var o orderedObject
		o.add("id", n.id)
		o.add("type", n.typ)
		keys := make([]string, 0, len(n.opts))
		for k := range n.opts {
			if !contains(nodeKeys, k) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.add(k, n.opts[k])
		}
		if n.timeoutText != "" {
			o.add("timeout", n.timeoutText)
		}
		if n.retry.maxAttempts > 0 {
			o.add("retry", n.retry.canonical())
		}
		if n.continueOnError {
			o.add("continue_on_error", true)
		}
		if n.next != "" {
			o.add("next", n.next)
		}
		b, err := o.bytes()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, b)
	}
	top.add("nodes", nodes)
	if len(edges) > 0 {
		list := make([]map[string]string, len(edges))
		for i, e := range edges {
			list[i] = map[string]string{"from": e.from, "to": e.to}
		}
		top.add("edges", list)
	}
	return top.bytes()
}
