package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/orcheo/orcheo"
)

// Template is a string with expressions in {{ }}, such as
// "https://api.example.com/users/{{ input.body.id }}". Each expression's
// result is inserted as text: strings as they are, nil as nothing, any
// other value as its JSON. It is immutable and safe for concurrent use.
type Template struct {
	source string
	field  string
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
	if len(src) > MaxTemplateLength {
		return nil, fmt.Errorf("template is longer than %d bytes (%d)", MaxTemplateLength, len(src))
	}
	t := &Template{source: src, field: field}
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

// render evaluates the template's expressions under ctx and joins the
// parts. Each expression is bounded on its own, so the text is bounded as
// a whole too.
func (t *Template) render(ctx context.Context, env *exprEnv) (string, error) {
	if len(t.parts) == 1 && t.parts[0].expr == nil {
		return t.parts[0].text, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		v, _, err := p.expr.eval(ctx, env)
		if err != nil {
			return "", err
		}
		if v != nil {
			text := textOf(v)
			if b.Len()+len(text) > ExprByteBudget {
				return "", orcheo.Permanent(fmt.Errorf("field %q: template text is longer than %d bytes", t.field, ExprByteBudget))
			}
			b.WriteString(text)
		}
	}
	return b.String(), nil
}
