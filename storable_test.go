package orcheo_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orcheo/orcheo"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		name, doc string
		want      string // "" for storable, else a substring of the message
	}{
		{"Object", `{"a":[1,2.5,-0,1e10,true,false,null,"x"],"b":{}}`, ""},
		{"Whitespace", " \t\n{ \"a\" : [ ] }\r\n", ""},
		{"Escapes", `"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"`, ""},
		{"UTF8", `"héllo 😀"`, ""},
		{"EscapedNUL", `{"body":{"x":"a\u0000b"}}`, `run input: contains a NUL character (\u0000), which cannot be stored (at $.body.x)`},
		{"RawNULInString", "{\"x\":\"a\x00b\"}", "NUL character"},
		{"RawNUL", "{\"x\":1}\x00", "invalid JSON"},
		{"InvalidUTF8", "{\"a\":[\"ok\",\"\xff\"]}", "contains invalid UTF-8 (byte 0xFF), which cannot be stored (at $.a[1])"},
		{"InvalidUTF8Key", "{\"\xff\":1}", "invalid UTF-8"},
		{"NULKey", `{"a":{"\u0000":1}}`, "NUL character (\\u0000), which cannot be stored (at $.a)"},
		{"LoneHighSurrogate", `"\ud800"`, `unpaired UTF-16 surrogate (\ud800)`},
		{"HighSurrogateThenText", `"\ud800x"`, `unpaired`},
		{"HighSurrogateThenHigh", `"\ud800\ud800"`, `unpaired`},
		{"LoneLowSurrogate", `{"x":"\udc00"}`, `unpaired UTF-16 surrogate (\udc00), which cannot be stored (at $.x)`},
		{"HugeExponent", `{"n":1e999999}`, "number 1e999999 is out of range"},
		{"HugeNegativeExponent", `[1e-999999]`, "out of range"},
		{"ExponentLeadingZeros", `1e0000000000000000001`, ""},
		{"ExponentAtBound", `1e1000`, ""},
		{"ExponentOverBound", `1E+1001`, "out of range"},
		{"LongInteger", strings.Repeat("9", 200000), "out of range: at most 1000 characters"},
		{"IntegerAtBound", strings.Repeat("9", 1000), ""},
		{"DepthAtBound", deep(orcheo.MaxJSONDepth), ""},
		{"TooDeep", deep(orcheo.MaxJSONDepth + 1), "nested deeper than 512 levels"},
		{"VeryDeep", deep(100000), "nested deeper"},
		{"Empty", ``, "invalid JSON"},
		{"Trailing", `{} {}`, "invalid JSON"},
		{"BadLiteral", `tru`, "invalid JSON"},
		{"BadNumber", `01`, "invalid JSON"},
		{"BadEscape", `"\x"`, "invalid JSON"},
		{"BadHex", `"\u00g0"`, "invalid JSON"},
		{"ControlChar", "\"a\nb\"", "invalid JSON"},
		{"MissingColon", `{"a" 1}`, "invalid JSON"},
		{"TrailingComma", `[1,]`, "invalid JSON"},
		{"Unterminated", `{"a":"b`, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := orcheo.CheckJSON("run input", []byte(tc.doc))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckJSON = %v, want nil", err)
				}
				if !json.Valid([]byte(tc.doc)) {
					t.Fatal("storable but not json.Valid")
				}
				return
			}
			if orcheo.ErrorCode(err) != orcheo.EINVALID {
				t.Fatalf("CheckJSON = %v, want EINVALID", err)
			}
			msg := orcheo.ErrorMessage(err)
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "run input: ") {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
			if !utf8.ValidString(msg) || strings.IndexByte(msg, 0) >= 0 || len(msg) > 300 {
				t.Fatalf("message %q is not short, clean text", msg)
			}
		})
	}
}

// FuzzCheckJSON checks that CheckJSON never calls invalid
// JSON storable, and only refuses valid JSON for a stated reason.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null]}`, `"\u0000"`, `1e5`, `[[[]]]`, "\"\xff\"", `"\ud800\udc00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := orcheo.CheckJSON("doc", doc)
		if err == nil && !json.Valid(doc) {
			t.Fatalf("CheckJSON accepts invalid JSON %q", doc)
		}
		if err != nil && json.Valid(doc) && strings.Contains(orcheo.ErrorMessage(err), "invalid JSON") {
			t.Fatalf("CheckJSON calls valid JSON %q invalid: %v", doc, err)
		}
	})
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct{ name, s, want string }{
		{"OK", "héllo", ""},
		{"Empty", "", ""},
		{"NUL", "a\x00b", "name: contains a NUL character"},
		{"InvalidUTF8", "a\xffb", "name: is not valid UTF-8"},
		{"Surrogate", "\xed\xa0\x80", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := orcheo.CheckText("name", tc.s)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if orcheo.ErrorCode(err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(err), tc.want) {
				t.Fatalf("CheckText = %v, want EINVALID %q", err, tc.want)
			}
		})
	}
}

func TestSanitizeText(t *testing.T) {
	for in, want := range map[string]string{
		"ok é":       "ok é",
		"a\x00b":     "a\uFFFDb",
		"a\xffb\xfe": "a\uFFFDb\uFFFD",
		"\xe2\x82":   "\uFFFD\uFFFD",
	} {
		if got := orcheo.SanitizeText(in); got != want {
			t.Errorf("SanitizeText(%q) = %q, want %q", in, got, want)
		}
		if orcheo.CheckText("x", orcheo.SanitizeText(in)) != nil {
			t.Errorf("SanitizeText(%q) is not storable", in)
		}
	}
}

func TestTruncateText(t *testing.T) {
	if got := orcheo.TruncateText("abc", 5); got != "abc" {
		t.Fatalf("got %q", got)
	}
	if got := orcheo.TruncateText("aé", 2); got != "a" {
		t.Fatalf("got %q, want the é dropped whole", got)
	}
	if got := orcheo.TruncateText("a😀", 4); got != "a" {
		t.Fatalf("got %q", got)
	}
}

// TestValidate_Unstorable checks that the domain validators refuse what
// the stores cannot keep, naming the field, so the API answers 400.
func TestValidate_Unstorable(t *testing.T) {
	run := func(input, key string) error {
		r := &orcheo.Run{WorkflowID: "w", VersionID: "v", TriggeredBy: orcheo.TriggerWebhook,
			Input: json.RawMessage(input), IdempotencyKey: key}
		return r.Validate()
	}
	wf := func(name string) error { return (&orcheo.Workflow{Handle: "h", Name: name}).Validate() }
	trigger, status := "\x00", orcheo.RunStatus("\xff")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"InputNUL", run(`{"body":{"x":"a\u0000b"}}`, ""), "run input: contains a NUL character (\\u0000), which cannot be stored (at $.body.x)"},
		{"InputInvalidUTF8", run("{\"body\":\"\xff\"}", ""), "run input: contains invalid UTF-8"},
		{"InputHugeNumber", run(`{"body":1e999999}`, ""), "run input: number 1e999999 is out of range"},
		{"InputTinyNumber", run(`{"body":1e-999999}`, ""), "out of range"},
		{"InputLongInteger", run(`{"body":`+strings.Repeat("1", 200000)+`}`, ""), "out of range"},
		{"InputSurrogate", run(`{"body":"\ud800"}`, ""), "unpaired UTF-16 surrogate"},
		{"KeyNUL", run(`{}`, "a\x00"), "idempotency key: contains a NUL character"},
		{"KeyInvalidUTF8", run(`{}`, "\xff"), "idempotency key: is not valid UTF-8"},
		{"NameNUL", wf("a\x00b"), "name: contains a NUL character"},
		{"NameInvalidUTF8", wf("\xfe"), "name: is not valid UTF-8"},
		{"FilterTrigger", (&orcheo.RunFilter{TriggeredBy: &trigger}).Validate(), `trigger "\x00" is not one of`},
		{"FilterStatus", (&orcheo.RunFilter{Status: &status}).Validate(), `unknown run status "\xff"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if orcheo.ErrorCode(tc.err) != orcheo.EINVALID || !strings.Contains(orcheo.ErrorMessage(tc.err), tc.want) {
				t.Fatalf("err = %v, want EINVALID containing %q", tc.err, tc.want)
			}
		})
	}
	if err := run(`{"body":{"x":"é😀","n":1.5e300}}`, "key-1"); err != nil {
		t.Fatalf("a clean run: %v", err)
	}
	if orcheo.IsHandle("\x00") || orcheo.IsHandle("\xff") || !orcheo.IsHandle("my-flow") {
		t.Fatal("IsHandle")
	}
}
