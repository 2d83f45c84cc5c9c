package engine

import (
	"errors"
	"strings"
)

// Template is a string with expressions in {{ }}, such as
// "https://api.example.com/users/{{ input.body.id }}". Each expression's
// result is inserted as text: strings as they are, nil as nothing, any
// other value as its JSON. It is immutable and safe for concurrent use.
type Template struct {
	source string
	parts  []templatePart
}

type templatePart struct {
	text string
	expr *Expr // nil for a text part
}

// String returns the template's source.
func (t *Template) String() string { return t.source }

// parseTemplate splits src into text and compiled expressions.
func parseTemplate(field, src string, nodeIDs map[string]bool) (*Template, error) {
	t := &Template{source: src}
	rest := src
	for rest != "" {
		open := strings.Index(rest, "{{")
		if open < 0 {
			if strings.Contains(rest, "}}") {
				return nil, errors.New(`"}}" without "{{"`)
			}
			t.parts = append(t.parts, templatePart{text: rest})
			break
		}
		if open > 0 {
			if strings.Contains(rest[:open], "}}") {
				return nil, errors.New(`"}}" without "{{"`)
			}
			t.parts = append(t.parts, templatePart{text: rest[:open]})
		}
		rest = rest[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return nil, errors.New(`"{{" without "}}"`)
		}
		src := strings.TrimSpace(rest[:end])
		if src == "" {
			return nil, errors.New("empty {{ }}")
		}
		e, err := compileExpr(field, src, nodeIDs)
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, templatePart{expr: e})
		rest = rest[end+2:]
	}
	return t, nil
}

// render evaluates the template's expressions and joins the parts.
func (t *Template) render(env *exprEnv) (string, error) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].text, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := p.expr.eval(env)
		if err != nil {
			return "", err
		}
		if v != nil {
			b.WriteString(textOf(v))
		}
	}
	return b.String(), nil
}
