package orcheo

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of what the stores keep. Both backends must store a value exactly
// as given or refuse it, and refuse the same values: PostgreSQL's jsonb and
// text refuse NUL, invalid UTF-8, unpaired surrogates and numbers its
// numeric type cannot hold, and jsonb runs out of stack on deep nesting;
// SQLite's json_valid refuses nesting deeper than 1000. These bounds are
// well inside both, so a document one backend keeps the other keeps too.
const (
	// MaxJSONDepth is the deepest nesting of arrays and objects a stored
	// JSON document may have (SQLite's JSON functions stop at 1000).
	MaxJSONDepth = 512
	// MaxJSONNumberLength bounds the characters of one JSON number.
	MaxJSONNumberLength = 1000
	// MaxJSONNumberExponent bounds the absolute value of a JSON number's
	// exponent (the part after e or E). With MaxJSONNumberLength it keeps
	// every number well inside PostgreSQL numeric's 131072 digits before
	// the decimal point and 16383 after it.
	MaxJSONNumberExponent = 1000
)

// CheckJSON returns EINVALID unless doc is a JSON document both store
// backends keep as it is: valid JSON of valid UTF-8, with no NUL character
// (raw or escaped as \u0000) and no unpaired UTF-16 surrogate escape in any
// string or key, no number longer than MaxJSONNumberLength or with an
// exponent beyond MaxJSONNumberExponent, and no nesting deeper than
// MaxJSONDepth. The message starts with field ("run input") and says where
// the problem is ("at $.body.x"), never quoting more than a few characters
// of the document.
func CheckJSON(field string, doc []byte) error {
	c := &jsonChecker{doc: doc}
	c.space()
	if c.err == nil {
		c.value(0)
	}
	if c.err == nil {
		if c.space(); c.i < len(c.doc) {
			c.syntax("unexpected data after the top-level value")
		}
	}
	if c.err == nil && !json.Valid(doc) {
		// The checker above follows encoding/json's grammar; this only
		// makes "valid" mean exactly what the rest of orcheo means by it.
		c.syntax("not valid JSON")
	}
	if c.err != nil {
		return Errorf(EINVALID, "%s: %s", field, c.err)
	}
	return nil
}

// CheckText returns EINVALID, naming field, unless s is text both store
// backends keep: valid UTF-8 with no NUL character.
func CheckText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return Errorf(EINVALID, "%s: contains a NUL character (\\u0000), which cannot be stored", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s: is not valid UTF-8", field)
	}
	return nil
}

// SanitizeText returns s with every NUL character and every byte of invalid
// UTF-8 replaced by U+FFFD, so that it passes CheckText. It is for text
// that reports something (an error message) and must be stored whatever it
// quotes; data is checked with CheckText or CheckJSON instead.
func SanitizeText(s string) string {
	if CheckText("", s) == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0 || (r == utf8.RuneError && n == 1) {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// TruncateText returns s cut to at most n bytes without splitting a UTF-8
// sequence, so valid text stays valid.
func TruncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// jsonChecker walks a document once. path holds the keys and indexes down
// to the current value, so an error can say where it is.
type jsonChecker struct {
	doc  []byte
	i    int
	path []string
	err  error
}

func (c *jsonChecker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format+" (at %s)", append(args, c.where())...)
	}
}

func (c *jsonChecker) syntax(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("invalid JSON: %s (at byte %d)", what, c.i)
	}
}

// where renders the path as $.a.b[3]["odd key"], eliding the middle of a
// deep one so that a message stays short.
func (c *jsonChecker) where() string {
	if p := c.path; len(p) > 8 {
		return "$" + strings.Join(p[:4], "") + "…" + strings.Join(p[len(p)-4:], "")
	}
	return "$" + strings.Join(c.path, "")
}

func (c *jsonChecker) space() {
	for c.i < len(c.doc) {
		switch c.doc[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *jsonChecker) value(depth int) {
	if c.i >= len(c.doc) {
		c.syntax("unexpected end of input")
		return
	}
	switch b := c.doc[c.i]; {
	case b == '{' || b == '[':
		if depth >= MaxJSONDepth {
			c.fail("nested deeper than %d levels, which cannot be stored", MaxJSONDepth)
			return
		}
		if b == '{' {
			c.object(depth + 1)
		} else {
			c.array(depth + 1)
		}
	case b == '"':
		c.str()
	case b == '-' || (b >= '0' && b <= '9'):
		c.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(c.doc[c.i:min(c.i+5, len(c.doc))]), lit) {
				c.i += len(lit)
				return
			}
		}
		c.syntax("unexpected character")
	}
}

func (c *jsonChecker) object(depth int) {
	c.i++ // {
	c.space()
	if c.i < len(c.doc) && c.doc[c.i] == '}' {
		c.i++
		return
	}
	for c.err == nil {
		c.space()
		if c.i >= len(c.doc) || c.doc[c.i] != '"' {
			c.syntax("expected a string key")
			return
		}
		start := c.i
		c.str()
		if c.err != nil {
			return
		}
		c.path = append(c.path, pathKey(c.doc[start:c.i]))
		c.space()
		if c.i >= len(c.doc) || c.doc[c.i] != ':' {
			c.syntax("expected ':' after an object key")
			return
		}
		c.i++
		c.space()
		c.value(depth)
		if c.err != nil {
			return
		}
		c.path = c.path[:len(c.path)-1]
		c.space()
		if c.i < len(c.doc) && c.doc[c.i] == ',' {
			c.i++
			continue
		}
		if c.i < len(c.doc) && c.doc[c.i] == '}' {
			c.i++
			return
		}
		c.syntax("expected ',' or '}' in an object")
	}
}

func (c *jsonChecker) array(depth int) {
	c.i++ // [
	c.space()
	if c.i < len(c.doc) && c.doc[c.i] == ']' {
		c.i++
		return
	}
	for n := 0; c.err == nil; n++ {
		c.path = append(c.path, "["+strconv.Itoa(n)+"]")
		c.space()
		c.value(depth)
		if c.err != nil {
			return
		}
		c.path = c.path[:len(c.path)-1]
		c.space()
		if c.i < len(c.doc) && c.doc[c.i] == ',' {
			c.i++
			continue
		}
		if c.i < len(c.doc) && c.doc[c.i] == ']' {
			c.i++
			return
		}
		c.syntax("expected ',' or ']' in an array")
	}
}

// str checks one string, from its opening quote to past its closing one.
func (c *jsonChecker) str() {
	c.i++ // "
	for c.i < len(c.doc) {
		b := c.doc[c.i]
		switch {
		case b == '"':
			c.i++
			return
		case b == 0:
			c.fail("contains a NUL character (\\u0000), which cannot be stored")
			return
		case b < 0x20:
			c.syntax("control character in a string")
			return
		case b == '\\':
			if !c.escape() {
				return
			}
		case b < utf8.RuneSelf:
			c.i++
		default:
			r, n := utf8.DecodeRune(c.doc[c.i:])
			if r == utf8.RuneError && n == 1 {
				c.fail("contains invalid UTF-8 (byte 0x%02X), which cannot be stored", b)
				return
			}
			c.i += n
		}
	}
	c.syntax("unexpected end of input in a string")
}

// escape checks the escape at c.i and moves past it; false on error.
func (c *jsonChecker) escape() bool {
	if c.i+1 >= len(c.doc) {
		c.syntax("unexpected end of input in a string")
		return false
	}
	switch c.doc[c.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		c.i += 2
		return true
	case 'u':
	default:
		c.syntax("invalid escape in a string")
		return false
	}
	r, ok := c.hex4(c.i + 2)
	if !ok {
		return false
	}
	switch {
	case r == 0:
		c.fail("contains a NUL character (\\u0000), which cannot be stored")
		return false
	case r >= 0xDC00 && r <= 0xDFFF:
		c.fail("contains an unpaired UTF-16 surrogate (\\u%04x), which cannot be stored", r)
		return false
	case r >= 0xD800 && r <= 0xDBFF:
		// A high surrogate must be followed at once by a low one.
		if c.i+7 < len(c.doc) && c.doc[c.i+6] == '\\' && c.doc[c.i+7] == 'u' {
			if lo, ok := c.hex4(c.i + 8); !ok {
				return false
			} else if lo >= 0xDC00 && lo <= 0xDFFF {
				c.i += 12
				return true
			}
		}
		c.fail("contains an unpaired UTF-16 surrogate (\\u%04x), which cannot be stored", r)
		return false
	}
	c.i += 6
	return true
}

func (c *jsonChecker) hex4(at int) (rune, bool) {
	if at+4 > len(c.doc) {
		c.syntax("unexpected end of input in a \\u escape")
		return 0, false
	}
	var r rune
	for _, b := range c.doc[at : at+4] {
		switch {
		case b >= '0' && b <= '9':
			r = r<<4 | rune(b-'0')
		case b >= 'a' && b <= 'f':
			r = r<<4 | rune(b-'a'+10)
		case b >= 'A' && b <= 'F':
			r = r<<4 | rune(b-'A'+10)
		default:
			c.syntax("invalid \\u escape")
			return 0, false
		}
	}
	return r, true
}

// number checks one number against JSON's grammar and the bounds.
func (c *jsonChecker) number() {
	start := c.i
	digits := func() int {
		n := 0
		for c.i < len(c.doc) && c.doc[c.i] >= '0' && c.doc[c.i] <= '9' {
			c.i++
			n++
		}
		return n
	}
	if c.doc[c.i] == '-' {
		c.i++
	}
	if c.i < len(c.doc) && c.doc[c.i] == '0' {
		c.i++
	} else if digits() == 0 {
		c.syntax("invalid number")
		return
	}
	if c.i < len(c.doc) && c.doc[c.i] == '.' {
		c.i++
		if digits() == 0 {
			c.syntax("invalid number")
			return
		}
	}
	exp := 0
	if c.i < len(c.doc) && (c.doc[c.i] == 'e' || c.doc[c.i] == 'E') {
		c.i++
		if c.i < len(c.doc) && (c.doc[c.i] == '+' || c.doc[c.i] == '-') {
			c.i++
		}
		from := c.i
		if digits() == 0 {
			c.syntax("invalid number")
			return
		}
		e := strings.TrimLeft(string(c.doc[from:c.i]), "0")
		if len(e) > 6 {
			exp = MaxJSONNumberExponent + 1
		} else if e != "" {
			exp, _ = strconv.Atoi(e)
		}
	}
	lit := c.doc[start:c.i]
	if len(lit) > MaxJSONNumberLength || exp > MaxJSONNumberExponent {
		shown := string(lit)
		if len(shown) > 20 {
			shown = shown[:20] + "…"
		}
		c.fail("number %s is out of range: at most %d characters and an exponent of at most %d can be stored",
			shown, MaxJSONNumberLength, MaxJSONNumberExponent)
	}
}

// pathKey renders a raw JSON key (quotes included) as a path segment: .key
// for plain names, ["…"] for the rest, cut short if long.
func pathKey(raw []byte) string {
	var k string
	if json.Unmarshal(raw, &k) != nil {
		return "[?]"
	}
	plain := k != ""
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if len(k) > 64 {
		k, plain = TruncateText(k, 64)+"…", false
	}
	if plain {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}
