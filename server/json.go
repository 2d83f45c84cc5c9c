package server

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// decodeJSON reads the request body (already bounded by the body-limit
// middleware) into v. Unknown fields, trailing data and malformed JSON are
// EINVALID ("invalid JSON: …"), an oversize body is ETOOLARGE. An empty body
// leaves v untouched when allowEmpty is set and is EINVALID otherwise.
func decodeJSON(r *http.Request, v interface{}, allowEmpty bool) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonErrorFor(err, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: unexpected data after the top-level value")
	}
	return nil
}

// readBody reads the whole request body, mapping the body limit to
// ETOOLARGE. The raw bytes are what webhook verification works on.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case err == nil:
		return body, nil
	case errors.As(err, &tooLarge):
		return nil, orcheo.Errorf(orcheo.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &netErr) && netErr.Timeout():
		// The server's ReadTimeout passed: a client trickling its body.
		return nil, orcheo.Errorf(orcheo.EINVALID, "request body was not received within the server's read timeout")
	}
	// The client went away or sent a broken chunked body.
	return nil, orcheo.Errorf(orcheo.EINVALID, "request body ended early or is malformed")
}

// jsonError turns a decoder error into a message a caller can act on.
func jsonError(err error) error { return jsonErrorFor(err, nil) }

// jsonErrorFor is jsonError for a decode into a value of type target (nil
// if unknown), whose fields let a type error name what the field must be
// ("an array of strings") in JSON's terms, never Go's.
func jsonErrorFor(err error, target reflect.Type) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var timeErr *time.ParseError
	switch {
	case errors.As(err, &syntax):
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		got := jsonValueName(typ.Value)
		if typ.Field == "" {
			return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: request body must be %s, got %s", jsonTypeName(typ.Type, true), got)
		}
		want := typ.Type
		if ft := fieldType(target, typ.Field); ft != nil {
			want = ft
		}
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: field %q must be %s, got %s", typ.Field, jsonTypeName(want, false), got)
	case errors.As(err, &timeErr):
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: %q is not an RFC 3339 time such as 2025-01-31T09:00:00Z", timeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields.
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonValueName names the JSON value an UnmarshalTypeError found: its
// kind, or a short number itself ("1.5", "1e999999").
func jsonValueName(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		if n := strings.TrimPrefix(v, "number "); len(n) <= 32 {
			return n
		}
		return "a number out of range"
	case v == "bool":
		return "a boolean"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	}
	return v
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// jsonTypeName names, in JSON's terms, the values a Go type accepts.
func jsonTypeName(t reflect.Type, body bool) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	if t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + jsonPlural(t.Elem())
	case reflect.Struct, reflect.Map:
		if body {
			return "a JSON object"
		}
		return "an object"
	}
	return "a JSON value"
}

// jsonPlural names the elements of an array type.
func jsonPlural(t reflect.Type) string {
	switch name := jsonTypeName(t, false); name {
	case "a string":
		return "strings"
	case "an integer":
		return "integers"
	case "a non-negative integer":
		return "non-negative integers"
	case "a number":
		return "numbers"
	case "true or false":
		return "booleans"
	case "an object":
		return "objects"
	}
	return "JSON values"
}

// fieldType returns the type of the field at a dotted JSON path ("a.b")
// in struct type t, or nil if it cannot be found.
func fieldType(t reflect.Type, path string) reflect.Type {
	for _, name := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			t = t.Elem()
		}
		if t == nil || t.Kind() != reflect.Struct {
			return nil
		}
		var found reflect.Type
		for i := 0; i < t.NumField() && found == nil; i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
				found = f.Type
			}
		}
		if t = found; t == nil {
			return nil
		}
	}
	return t
}

// encodeJSON writes v as the JSON body of a response with status.
func encodeJSON(w http.ResponseWriter, r *http.Request, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		// The status is already sent; the client most likely went away.
		loggerFrom(r).WithError(err).Debug("encode response")
	}
}
