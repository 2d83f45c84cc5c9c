package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/orcheo/orcheo"
)

// Spec is one node's definition as a NodeType sees it at compile time: its
// id and type, and accessors that decode its options and report errors
// naming the node and the option. A Spec remembers which options were read,
// so that the compiler can reject the rest as unknown.
type Spec struct {
	// ID and Type identify the node.
	ID   string
	Type string

	opts    map[string]json.RawMessage
	read    map[string]bool
	nodeIDs map[string]bool
	limits  limits
	targets []rawEdge
}

// Brancher marks a NodeType whose nodes choose their successors: their
// outgoing edges are exactly the targets they declare through Spec.Target,
// and Result.Next names the ones to follow. Such nodes take no `next` and
// no continue_on_error.
type Brancher interface {
	NodeType
	Branches()
}

// Errorf returns an EINVALID error reading `node "<id>": field "<field>": …`.
func (s *Spec) Errorf(field, format string, args ...any) error {
	return orcheo.Errorf(orcheo.EINVALID, "node %q: field %q: %s", s.ID, field, fmt.Sprintf(format, args...))
}

// Has reports whether the node sets option name.
func (s *Spec) Has(name string) bool {
	_, ok := s.opts[name]
	return ok
}

// Decode unmarshals option name into v and reports whether it was set. A
// value of the wrong JSON type is an EINVALID error naming the option.
func (s *Spec) Decode(name string, v any) (bool, error) {
	s.read[name] = true
	raw, ok := s.opts[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, s.Errorf(name, "must be %s", jsonKind(v))
	}
	return true, nil
}

// String returns option name as a string. A missing required option is an
// EINVALID error; a missing optional one returns "".
func (s *Spec) String(name string, required bool) (string, error) {
	var v string
	ok, err := s.Decode(name, &v)
	if err != nil {
		return "", err
	}
	if !ok && required {
		return "", s.Errorf(name, "required")
	}
	return v, nil
}

// Enum returns option name, which must be one of allowed, or def when the
// option is not set.
func (s *Spec) Enum(name, def string, allowed ...string) (string, error) {
	v, err := s.String(name, false)
	if err != nil || !s.Has(name) {
		return def, err
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", s.Errorf(name, "%q is not one of %s", v, quoteList(allowed))
}

// Expr compiles option name as an expression. A missing required option is
// an EINVALID error; a missing optional one returns nil.
func (s *Spec) Expr(name string, required bool) (*Expr, error) {
	src, err := s.String(name, required)
	if err != nil {
		if s.Has(name) {
			return nil, s.Errorf(name, "must be an expression string")
		}
		return nil, err
	}
	if !s.Has(name) {
		return nil, nil
	}
	return s.compile(name, src)
}

// ExprMap compiles option name, an object of key → expression, and returns
// it with its keys sorted. A required map must have at least one key.
func (s *Spec) ExprMap(name string, required bool) ([]KeyedExpr, error) {
	var out []KeyedExpr
	err := s.eachKeyed(name, required, "must be an object of key: expression",
		"must be an expression string (quote string literals twice, as in '\"text\"')",
		func(key, field, src string) error {
			e, err := s.compile(field, src)
			if err == nil {
				out = append(out, KeyedExpr{Key: key, Expr: e})
			}
			return err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachKeyed decodes option name, an object of key → string, and calls fn
// with each entry in key order, stopping at the first error; notObject and
// notString are the messages for a value of the wrong type. A required
// object must be present with at least one key.
func (s *Spec) eachKeyed(name string, required bool, notObject, notString string, fn func(key, field, src string) error) error {
	var m map[string]json.RawMessage
	ok, err := s.Decode(name, &m)
	if err != nil {
		return s.Errorf(name, "%s", notObject)
	}
	if !ok || m == nil {
		if required {
			return s.Errorf(name, "required")
		}
		return nil
	}
	if len(m) == 0 && required {
		return s.Errorf(name, "must set at least one key")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := name + "." + k
		if k == "" {
			return s.Errorf(name, "keys must not be empty")
		}
		var src string
		if err := json.Unmarshal(m[k], &src); err != nil {
			return s.Errorf(field, "%s", notString)
		}
		if err := fn(k, field, src); err != nil {
			return err
		}
	}
	return nil
}

// KeyedExpr is one entry of an ExprMap option.
type KeyedExpr struct {
	Key  string
	Expr *Expr
}

func (s *Spec) compile(field, src string) (*Expr, error) {
	if len(bytes.TrimSpace([]byte(src))) == 0 {
		return nil, s.Errorf(field, "empty expression")
	}
	e, err := compileExpr(field, src, s.nodeIDs)
	if err != nil {
		return nil, s.Errorf(field, "%s", err)
	}
	return e, nil
}

// unread returns the options no accessor read, sorted.
func (s *Spec) unread() []string {
	var names []string
	for name := range s.opts {
		if !s.read[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func jsonKind(v any) string {
	switch v.(type) {
	case *string:
		return "a string"
	case *int, *int64, *float64:
		return "a number"
	case *bool:
		return "true or false"
	case *[]string:
		return "a list of strings"
	default:
		return "a value of the documented shape"
	}
}

func quoteList(items []string) string {
	var b bytes.Buffer
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", it)
	}
	return b.String()
}

// Target reads option name as the id of a node this node leads to, and
// declares the edge. A missing required option is an EINVALID error; a
// missing optional one returns "".
func (s *Spec) Target(name string, required bool) (string, error) {
	id, err := s.String(name, required)
	if err != nil || !s.Has(name) {
		if err != nil && s.Has(name) {
			return "", s.Errorf(name, "must be a node id")
		}
		return "", err
	}
	return id, s.target(name, id)
}

func (s *Spec) target(field, id string) error {
	if !s.nodeIDs[id] {
		return s.Errorf(field, "unknown node %q", id)
	}
	if id == s.ID {
		return s.Errorf(field, "a node cannot lead to itself")
	}
	s.targets = append(s.targets, rawEdge{from: s.ID, to: id, origin: fmt.Sprintf("node %q", s.ID), field: field})
	return nil
}

// Bool returns option name, or def when it is not set.
func (s *Spec) Bool(name string, def bool) (bool, error) {
	v := def
	if _, err := s.Decode(name, &v); err != nil {
		return def, err
	}
	return v, nil
}

// Duration returns option name, a positive Go duration string, or 0 when it
// is not set.
func (s *Spec) Duration(name string) (time.Duration, error) {
	raw, ok := s.opts[name]
	s.read[name] = true
	if !ok {
		return 0, nil
	}
	d, _, err := parseTimeout(raw)
	if err != nil {
		return 0, s.Errorf(name, "%s", err)
	}
	return d, nil
}

// Template compiles option name as a string template: text with
// expressions in {{ }}. A missing required option is an EINVALID error; a
// missing optional one returns nil.
func (s *Spec) Template(name string, required bool) (*Template, error) {
	src, err := s.String(name, required)
	if err != nil {
		if s.Has(name) {
			return nil, s.Errorf(name, "must be a string")
		}
		return nil, err
	}
	if !s.Has(name) {
		return nil, nil
	}
	return s.template(name, src)
}

// TemplateMap compiles option name, an object of key → template, and
// returns it with its keys sorted.
func (s *Spec) TemplateMap(name string) ([]KeyedTemplate, error) {
	var out []KeyedTemplate
	err := s.eachKeyed(name, false, "must be an object of key: text", "must be a string",
		func(key, field, src string) error {
			t, err := s.template(field, src)
			if err == nil {
				out = append(out, KeyedTemplate{Key: key, Template: t})
			}
			return err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// KeyedTemplate is one entry of a TemplateMap option.
type KeyedTemplate struct {
	Key      string
	Template *Template
}

func (s *Spec) template(field, src string) (*Template, error) {
	t, err := parseTemplate(field, src, s.nodeIDs)
	if err != nil {
		return nil, s.Errorf(field, "%s", err)
	}
	return t, nil
}

// MaxDelay is the longest wait the engine allows a node.
func (s *Spec) MaxDelay() time.Duration { return s.limits.maxDelay }
