package engine

import (
	"errors"
	"fmt"
	"io"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser/lexer"
)

// Limits on expressions. A definition is stored once and then evaluated by
// every run, so each bound below protects the API (at compile time) or a
// worker (at run time) from one hostile or careless definition. Compile
// errors name the node and the field; run-time ones fail the node.
const (
	// MaxExpressionLength bounds one expression's source in bytes. expr's
	// parser recurses once per nesting level (brackets, unary operators),
	// so without a bound 510,000 parentheses overflowed the API's stack.
	MaxExpressionLength = 16 << 10
	// MaxExpressionDepth bounds how deep brackets — (), [] and {} — nest
	// in one expression.
	MaxExpressionDepth = 64
	// MaxExpressionNodes bounds an expression's syntax tree (expr.MaxNodes).
	MaxExpressionNodes = 10_000
	// MaxTemplateLength bounds a whole template's source in bytes, text and
	// expressions together; each expression in it is also bounded by
	// MaxExpressionLength.
	MaxTemplateLength = 64 << 10

	// ExprVMBudget is expr's own memory budget (vm.VM.MemoryBudget), in its
	// units: one per element of a range, array literal, map, filter, sort,
	// reverse, concat or flatten result, and one per byte of repeat.
	// An element takes at most 32 bytes of its own (interface value and
	// slice slot); what it points to is counted by ExprByteBudget.
	ExprVMBudget = 1_000_000
	// ExprByteBudget bounds the bytes one evaluation may allocate through
	// the engine's bounded builtins, string concatenation (+) and map
	// literals, counted as they are made (garbage included), and separately
	// the size of its result (as JSON). It is above the API's default 1 MiB
	// request body, so an expression can still copy a whole webhook body
	// several times.
	ExprByteBudget = 16 << 20
	// ExprStepBudget bounds the loop iterations of one evaluation (the
	// predicates of map, filter, all, any, reduce, sortBy, …, and uniq's
	// comparisons). It stops a CPU-bound expression that has no timeout,
	// at about a second of CPU.
	ExprStepBudget = 10_000_000
	// exprCheckEvery is how many loop iterations pass between two looks at
	// the node's context: often enough that a timed-out or cancelled
	// evaluation stops within microseconds, rarely enough to cost nothing.
	exprCheckEvery = 16

	// ExprMemoryBound is the documented worst case of memory one evaluating
	// expression allocates, garbage included (what the tests and the fuzz
	// target measure, as runtime.MemStats.TotalAlloc):
	//   - ExprVMBudget elements at up to about 64 bytes each: the slot, a
	//     boxed number or string header, and the argument slices expr's VM
	//     makes for function calls (about 64 MiB);
	//   - ExprByteBudget for what the bounded builtins, `+`, map literals
	//     and loop starts make (16 MiB);
	//   - the encoding of a result of up to ExprByteBudget, and its copy
	//     (32 MiB).
	// A worker's expressions therefore use at most concurrency ×
	// ExprMemoryBound beyond the runs' own data (MaxRunDataBytes each).
	ExprMemoryBound = 128 << 20

	// MaxNodeOutputBytes bounds what one try of a node produces through
	// expressions (every result of a set node's values, for instance,
	// together), measured as JSON.
	MaxNodeOutputBytes = ExprByteBudget
	// MaxRunDataBytes bounds the outputs a run keeps for later expressions
	// (steps.<id>.output and the state), measured as JSON. Decoded, they
	// take a few times that in memory.
	MaxRunDataBytes = 64 << 20
	// maxValueDepth is how deep values may nest, encoding/json's own limit
	// on decoding.
	maxValueDepth = 10_000
)

// checkExprSource refuses an expression too long or too deeply nested for
// expr's recursive parser, before it is parsed. The scan uses expr's own
// lexer, which is iterative, so brackets inside string literals and
// comments do not count.
func checkExprSource(src string) error {
	if len(src) > MaxExpressionLength {
		return fmt.Errorf("expression is longer than %d bytes (%d)", MaxExpressionLength, len(src))
	}
	l := lexer.New()
	l.Reset(file.NewSource(src))
	depth := 0
	for {
		t, err := l.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// The parser reports syntax errors with their position.
			return nil
		}
		if t.Kind != lexer.Bracket {
			continue
		}
		switch t.Value {
		case "(", "[", "{":
			if depth++; depth > MaxExpressionDepth {
				line, col := position(src, t.From)
				return fmt.Errorf("expression nests brackets deeper than %d (%d:%d)", MaxExpressionDepth, line, col)
			}
		default:
			depth--
		}
	}
}

// position returns the 1-based line and column of the rune at index
// offset (expr's locations count runes), as expr's errors read.
func position(src string, offset int) (line, col int) {
	line, col = 1, 1
	i := 0
	for _, r := range src {
		if i >= offset {
			break
		}
		i++
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
