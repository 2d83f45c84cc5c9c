package engine

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// expr's VM counts only some allocations against its memory budget (see
// ExprVMBudget): repeat's bytes and the elements of ranges, literals and a
// few builtins. Every other builtin that allocates in proportion to its
// input is replaced by a bounded one of the same name and semantics: it
// computes the size of its result before making it, charges it to the
// evaluation's ExprByteBudget (evalGuard.charge), and otherwise leaves the
// work to expr's own implementation. The patcher passes them $env as a
// hidden first argument, which is how they find the evaluation's guard.
//
// Builtins that allocate nothing (len, abs, trim, indexOf, first, take, …;
// trim and take return parts of their input) or only what the VM counts
// (reverse, concat, flatten, sort) are left alone.

// boundedBuiltins maps a builtin's name to the bytes it is about to
// allocate for its arguments (without the hidden $env).
var boundedBuiltins = map[string]func(args []any) int{
	"repeat": func(args []any) int {
		s, _ := args[0].(string)
		n := runtime.ToInt(args[1])
		if n < 0 {
			return 0 // expr's repeat refuses it
		}
		return mulSize(len(s), n)
	},
	"replace": func(args []any) int {
		s, _ := args[0].(string)
		old, _ := args[1].(string)
		repl, _ := args[2].(string)
		n := strings.Count(s, old)
		if old == "" {
			n = utf8.RuneCountInString(s) + 1
		}
		if len(args) == 4 {
			if limit := runtime.ToInt(args[3]); limit >= 0 && limit < n {
				n = limit
			}
		}
		if grow := len(repl) - len(old); grow > 0 {
			return len(s) + mulSize(n, grow)
		}
		return len(s)
	},
	"join": func(args []any) int {
		glue := ""
		if len(args) == 2 {
			glue, _ = args[1].(string)
		}
		n := 0
		add := func(s string) {
			if n >= 0 {
				if n += len(s) + len(glue); n < 0 || n > ExprByteBudget {
					n = -1
				}
			}
		}
		switch list := args[0].(type) {
		case []string:
			for _, s := range list {
				add(s)
			}
		case []any:
			// expr's join also copies the strings into a []string first.
			n = mulSize(len(list), 16)
			for _, e := range list {
				s, _ := e.(string)
				add(s)
			}
		}
		return n
	},
	// A case change can grow a string: an invalid byte becomes U+FFFD,
	// three bytes.
	"upper":      func(args []any) int { return caseSize(args[0]) },
	"lower":      func(args []any) int { return caseSize(args[0]) },
	"split":      splitSize,
	"splitAfter": splitSize,
	"toJSON": func(args []any) int {
		// MarshalIndent encodes once compactly, then indents a copy.
		n, err := valueSize(args[0], ExprByteBudget)
		if err != nil {
			return -1
		}
		return mulSize(n, 2)
	},
	"string": func(args []any) int {
		n, err := valueSize(args[0], ExprByteBudget)
		if err != nil {
			return -1
		}
		return n
	},
	"fromJSON": func(args []any) int {
		s, _ := args[0].(string)
		return decodedJSONCost(s)
	},
	"toBase64": func(args []any) int {
		s, _ := args[0].(string)
		return (len(s)+2)/3*4*2 + 8 // the []byte copy and the text
	},
	"fromBase64": func(args []any) int {
		s, _ := args[0].(string)
		return len(s)/4*3*2 + 8
	},
	"keys":      func(args []any) int { return mulSize(mapLen(args[0]), 16) + 24 },
	"values":    func(args []any) int { return mulSize(mapLen(args[0]), 16) + 24 },
	"toPairs":   func(args []any) int { return mulSize(mapLen(args[0]), 48) + 24 },
	"fromPairs": func(args []any) int { return mulSize(listLen(args[0]), 96) + 256 },
}

func caseSize(arg any) int {
	s, _ := arg.(string)
	return mulSize(len(s), 3)
}

func splitSize(args []any) int {
	s, _ := args[0].(string)
	sep, _ := args[1].(string)
	n := strings.Count(s, sep) + 1
	if sep == "" {
		n = utf8.RuneCountInString(s)
	}
	if len(args) == 3 {
		if limit := runtime.ToInt(args[2]); limit >= 0 && limit < n {
			n = limit
		}
	}
	// A string header per part; the parts share the input's bytes.
	return mulSize(n, 16) + 24
}

func mapLen(v any) int {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Map {
		return rv.Len()
	}
	return 0
}

func listLen(v any) int {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		return rv.Len()
	}
	return 0
}

// guardedNames are the functions the patcher passes $env to: the bounded
// builtins, uniq, the engine's `+` and its loop check.
var guardedNames = map[string]bool{uniqName: true, addName: true, tickName: true, matchesName: true}

func init() {
	for name := range boundedBuiltins {
		guardedNames[name] = true
	}
	// The per-iteration check is registered as an expr builtin, not an
	// expr.Function: the VM calls a one-argument builtin directly
	// (OpCallBuiltin1), where it passes a function its arguments in a
	// slice it allocates anew for every call in a loop. The names cannot
	// clash with expr's.
	for _, f := range []*builtin.Function{stepBuiltin(stepName, 0), stepBuiltin(stepGroupName, groupItemCost)} {
		builtin.Index[f.Name] = len(builtin.Builtins)
		builtin.Builtins = append(builtin.Builtins, f)
	}
}

// stepBuiltin returns the builtin the patcher calls at the start of every
// loop iteration: it counts a step and charges cost bytes. It stops the
// evaluation by panicking, which the VM turns into its error.
func stepBuiltin(name string, cost int) *builtin.Function {
	return &builtin.Function{
		Name: name,
		Fast: func(arg any) any {
			env, ok := arg.(*exprEnv)
			if !ok || env.guard == nil {
				panic(fmt.Errorf("%s: %w", name, errNoGuard))
			}
			err := env.guard.step(1)
			if err == nil && cost > 0 {
				err = env.guard.charge("groupBy", cost)
			}
			if err != nil {
				panic(err)
			}
			return true
		},
		Types: []reflect.Type{reflect.TypeOf(func(any) bool { return true })},
		// $env stays a pointer: dereferenced, it would be copied.
		Deref: func(int, reflect.Type) bool { return false },
	}
}

const (
	// groupItemCost is what groupBy's map and groups grow by per item.
	groupItemCost = 256
	// loopCost is what each loop's start costs expr's VM: a Scope it keeps
	// until the whole evaluation ends, so nested loops would otherwise
	// grow it without bound.
	loopCost = 256
)

// Names of the functions the patcher calls. They are not meant to be
// written by users, and fail without the patcher's hidden $env.
const (
	uniqName      = "uniq"
	stepName      = "orcheo_step"
	stepGroupName = "orcheo_step_group"
	addName       = "orcheo_add"
	tickName      = "orcheo_tick"
	matchesName   = "orcheo_matches"
)

// exprOptions are the options every expression is compiled with.
var exprOptions = buildExprOptions()

func buildExprOptions() []expr.Option {
	opts := []expr.Option{expr.Env(exprEnv{}), expr.MaxNodes(MaxExpressionNodes)}
	for name, size := range boundedBuiltins {
		orig := builtin.Builtins[builtin.Index[name]]
		size := size
		call := orig.Func
		switch {
		case orig.Fast != nil:
			fast := orig.Fast
			call = func(args ...any) (any, error) { return fast(args[0]), nil }
		case orig.Safe != nil:
			safe := orig.Safe
			call = func(args ...any) (any, error) {
				v, _, err := safe(args...)
				return v, err
			}
		}
		opts = append(opts, guardedFunction(orig, func(g *evalGuard, args []any) (any, error) {
			if err := g.charge(name, size(args)); err != nil {
				return nil, err
			}
			return call(args...)
		}))
	}
	opts = append(opts,
		guardedFunction(builtin.Builtins[builtin.Index[uniqName]], uniq),
		expr.Function(addName, guarded(addName, add), new(func(any, string, string) string), new(func(any, any, any) any)),
		expr.Function(tickName, guarded(tickName, tick), new(func(any, string, int) bool)),
		expr.Function(matchesName, guarded(matchesName, matches), new(func(any, string, string) bool), new(func(any, any, any) bool)),
	)
	return opts
}

// guarded adapts fn to expr's function signature: it takes the guard from
// the hidden first argument.
func guarded(name string, fn func(g *evalGuard, args []any) (any, error)) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		g, rest, err := guardOf(name, args)
		if err != nil {
			return nil, err
		}
		return fn(g, rest)
	}
}

// guardedFunction registers fn under the name of the builtin orig, with
// orig's argument checks shifted by the hidden first argument, so that
// compile errors read as before.
func guardedFunction(orig *builtin.Function, fn func(g *evalGuard, args []any) (any, error)) expr.Option {
	anyType := reflect.TypeOf((*any)(nil)).Elem()
	f := &builtin.Function{Name: orig.Name, Func: guarded(orig.Name, fn)}
	for _, t := range orig.Types {
		in := []reflect.Type{anyType}
		for i := 0; i < t.NumIn(); i++ {
			in = append(in, t.In(i))
		}
		out := make([]reflect.Type, t.NumOut())
		for i := range out {
			out[i] = t.Out(i)
		}
		f.Types = append(f.Types, reflect.FuncOf(in, out, t.IsVariadic()))
	}
	if validate := orig.Validate; validate != nil {
		f.Validate = func(args []reflect.Type) (reflect.Type, error) {
			if len(args) == 0 {
				return anyType, fmt.Errorf("%s: %w", orig.Name, errNoGuard)
			}
			return validate(args[1:])
		}
	}
	return func(c *conf.Config) {
		c.Disabled[orig.Name] = true
		c.Functions[orig.Name] = f
	}
}

// add is `+` where either side may be a string: it charges a string
// result before making it, and leaves numbers, times and durations to
// expr's own addition.
func add(g *evalGuard, args []any) (any, error) {
	if a, ok := args[0].(string); ok {
		if b, ok := args[1].(string); ok {
			if err := g.charge("+", len(a)+len(b)); err != nil {
				return nil, err
			}
			return a + b, nil
		}
	}
	return runtime.Add(args[0], args[1]), nil
}

// tick is the charge the patcher puts before a map literal or a loop:
// args are what it names and the bytes it is known to allocate.
func tick(g *evalGuard, args []any) (any, error) {
	what, _ := args[0].(string)
	n, _ := args[1].(int)
	if err := g.charge(what, n); err != nil {
		return nil, err
	}
	return true, nil
}

// maxPatternLength bounds a regular expression built at run time
// (`s matches pattern`); compiling one costs memory in proportion.
const maxPatternLength = 4 << 10

// matches is `matches` with a pattern computed at run time: expr compiles
// it on every evaluation, so its length is bounded. A constant pattern is
// compiled once, with the definition, and is left to expr.
func matches(g *evalGuard, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	pattern, ok := args[1].(string)
	if !ok {
		return nil, fmt.Errorf("matches: pattern must be a string, got %T", args[1])
	}
	if len(pattern) > maxPatternLength {
		return nil, fmt.Errorf("matches: pattern is longer than %d bytes", maxPatternLength)
	}
	if err := g.charge("matches", 64*len(pattern)); err != nil {
		return nil, err
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("matches: left side must be a string, got %T", args[0])
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return re.MatchString(s), nil
}

// uniq is expr's uniq (first occurrences, in order, compared with expr's
// ==) without its quadratic cost on scalars: strings, booleans and numbers
// are looked up in a map; other values are compared one by one, each
// comparison a loop step.
func uniq(g *evalGuard, args []any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("invalid number of arguments (expected 1, got %d)", len(args))
	}
	v := reflect.ValueOf(args[0])
	if v.Kind() != reflect.Array && v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cannot uniq %s", v.Kind())
	}
	if err := g.charge("uniq", mulSize(v.Len(), 64)); err != nil {
		return nil, err
	}
	seen := make(map[any]bool)
	var others []any
	ret := []any{}
	for i := 0; i < v.Len(); i++ {
		item := v.Index(i).Interface()
		if key, ok := uniqKey(item); ok {
			if !seen[key] {
				seen[key] = true
				ret = append(ret, item)
			}
			continue
		}
		if err := g.step(len(others) + 1); err != nil {
			return nil, err
		}
		dup := false
		for _, o := range others {
			if runtime.Equal(item, o) {
				dup = true
				break
			}
		}
		if !dup {
			others = append(others, item)
			ret = append(ret, item)
		}
	}
	return ret, nil
}

// uniqKey maps a scalar to a key equal for values expr's == finds equal:
// every number as its float64 (1 == 1.0), when that is exact.
func uniqKey(v any) (any, bool) {
	switch x := v.(type) {
	case time.Duration:
		// == compares a duration with durations only.
		return nil, false
	case nil, string, bool:
		return x, true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if f := float64(rv.Int()); int64(f) == rv.Int() && f < 1<<53 && f > -(1<<53) {
			return f, true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f := float64(rv.Uint()); f < 1<<53 {
			return f, true
		}
	}
	return nil, false
}

// decodedJSONCost estimates the bytes decoding JSON text into Go values
// makes: about an empty map per '{', a slice per '[', a value slot per ','
// and ':', and the strings' bytes. A megabyte of "{}," decodes to some
// hundred megabytes, so every decode of untrusted JSON is charged first.
func decodedJSONCost(s string) int {
	return len(s) + 320*strings.Count(s, "{") + 64*strings.Count(s, "[") + 32*(strings.Count(s, ",")+strings.Count(s, ":"))
}
