package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"
)

// evalGuard is the state of one evaluation that expr's VM does not keep:
// the node's context, and what the evaluation has spent of ExprStepBudget
// and ExprByteBudget. The engine's bounded builtins, its `+` and the
// checks the patcher puts in every loop reach it through $env (see
// exprPatcher), because expr passes a function its arguments only.
type evalGuard struct {
	ctx   context.Context
	steps int
	// sinceCheck counts the steps since ctx was last looked at.
	sinceCheck int
	bytes      int
}

var errNoGuard = errors.New("called outside an engine evaluation")

// guardOf returns the guard of the environment a bounded builtin was
// called with. A call the patcher did not rewrite (through $env.name, say)
// has no guard and fails, so no builtin ever runs unbounded.
func guardOf(name string, args []any) (*evalGuard, []any, error) {
	if len(args) > 0 {
		if env, ok := args[0].(*exprEnv); ok && env.guard != nil {
			return env.guard, args[1:], nil
		}
	}
	return nil, nil, fmt.Errorf("%s: %w", name, errNoGuard)
}

// step counts n loop iterations and stops the evaluation when its node's
// context is done or the step budget is spent.
func (g *evalGuard) step(n int) error {
	g.steps += n
	if g.steps > ExprStepBudget {
		return fmt.Errorf("expression exceeded %d loop steps", ExprStepBudget)
	}
	if g.sinceCheck += n; g.sinceCheck >= exprCheckEvery {
		g.sinceCheck = 0
		return g.alive()
	}
	return nil
}

// alive returns why the node's context is done, or nil.
func (g *evalGuard) alive() error {
	if g.ctx.Err() != nil {
		return stopReason(g.ctx)
	}
	return nil
}

// charge counts n bytes the builtin name is about to allocate. It refuses
// a single result above ExprByteBudget and an evaluation whose allocations
// pass it, before the allocation happens.
func (g *evalGuard) charge(name string, n int) error {
	if n < 0 || n > ExprByteBudget {
		return fmt.Errorf("%s: result would be %s, more than the limit of %d bytes", name, sizeText(n), ExprByteBudget)
	}
	if n > ExprByteBudget-g.bytes {
		return fmt.Errorf("%s: expression allocated more than %d bytes", name, ExprByteBudget)
	}
	g.bytes += n
	return g.alive()
}

// sizeText renders a byte count that may have overflowed.
func sizeText(n int) string {
	if n < 0 {
		return "too many bytes"
	}
	return fmt.Sprintf("%d bytes", n)
}

// mulSize returns a×b, or -1 when it overflows or is negative.
func mulSize(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	if a != 0 && b > (1<<62)/a {
		return -1
	}
	return a * b
}

// valueSize returns an upper bound of the bytes v takes encoded as JSON
// (indented as toJSON does) or printed with fmt's %v, whichever is longer.
// It stops counting once the bound passes limit, so it costs at most
// about limit steps however large v or however often it repeats one big
// string. A value nested deeper than maxValueDepth returns an error.
func valueSize(v any, limit int) (int, error) {
	s := sizer{limit: limit}
	s.add(v, 0)
	return s.n, s.err
}

type sizer struct {
	n, limit int
	err      error
	// last is the last string measured: a value that repeats one large
	// string (map(1..10000, s)) is measured without rescanning it.
	last     *byte
	lastLen  int
	lastSize int
}

func (s *sizer) str(x string) int {
	if p := unsafe.StringData(x); p == s.last && len(x) == s.lastLen {
		return s.lastSize
	}
	n := stringSize(x)
	s.last, s.lastLen, s.lastSize = unsafe.StringData(x), len(x), n
	return n
}

// Per-item overheads: quotes, separators, a newline and the indentation
// of its depth.
const (
	scalarSize    = 32
	containerSize = 8
)

func (s *sizer) over() bool { return s.n > s.limit || s.err != nil }

func (s *sizer) item(depth int) { s.n += 3 + 2*depth }

func (s *sizer) add(v any, depth int) {
	if s.over() {
		return
	}
	if depth > maxValueDepth {
		s.err = fmt.Errorf("value nests deeper than %d levels", maxValueDepth)
		return
	}
	switch x := v.(type) {
	case nil, bool, int, int64, float64, time.Duration, time.Time:
		s.n += scalarSize
	case string:
		s.n += s.str(x)
	case []any:
		s.n += containerSize
		for _, e := range x {
			if s.item(depth + 1); s.over() {
				return
			}
			s.add(e, depth+1)
		}
	case map[string]any:
		s.n += containerSize
		for k, e := range x {
			s.item(depth + 1)
			if s.n += s.str(k); s.over() {
				return
			}
			s.add(e, depth+1)
		}
	case []string:
		s.n += containerSize
		for _, e := range x {
			s.item(depth + 1)
			if s.n += s.str(e); s.over() {
				return
			}
		}
	default:
		s.addReflect(reflect.ValueOf(v), depth)
	}
}

func (s *sizer) addReflect(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Invalid:
		s.n += scalarSize
	case reflect.String:
		s.n += s.str(v.String())
	case reflect.Slice, reflect.Array:
		s.n += containerSize
		for i := 0; i < v.Len() && !s.over(); i++ {
			s.item(depth + 1)
			s.add(v.Index(i).Interface(), depth+1)
		}
	case reflect.Map:
		s.n += containerSize
		it := v.MapRange()
		for it.Next() && !s.over() {
			s.item(depth + 1)
			s.add(it.Key().Interface(), depth+1)
			s.add(it.Value().Interface(), depth+1)
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			s.n += scalarSize
			return
		}
		s.addReflect(v.Elem(), depth+1)
	case reflect.Struct:
		s.n += containerSize
		t := v.Type()
		for i := 0; i < v.NumField() && !s.over(); i++ {
			f := v.Field(i)
			s.item(depth + 1)
			s.n += len(t.Field(i).Name)
			if !t.Field(i).IsExported() {
				// fmt prints an unexported field's pointers as addresses
				// and encoding/json skips it.
				s.n += scalarSize
				continue
			}
			s.add(f.Interface(), depth+1)
		}
	default:
		s.n += scalarSize
	}
}

// stringSize bounds s encoded as a JSON string: quotes, six bytes for each
// ASCII byte JSON escapes (control characters, ", \, and <, >, & which
// toJSON escapes), and three for each other byte (an invalid one becomes
// \ufffd; U+2028 becomes \u2028).
func stringSize(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			n += 5
		case c >= 0x80:
			n += 2
		}
	}
	return n
}
