package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

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
		return jsonError(err)
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
	if errors.As(err, &tooLarge) {
		return nil, orcheo.Errorf(orcheo.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
	} else if err != nil {
		// The client went away or sent a broken chunked body.
		return nil, orcheo.Errorf(orcheo.EINVALID, "read request body: %v", err)
	}
	return body, nil
}

// jsonError turns a decoder error into a message a caller can act on.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: expected %s, got %s", typ.Type, typ.Value)
		}
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: field %q must be %s, got %s", field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields.
		return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return orcheo.Errorf(orcheo.EINVALID, "invalid JSON: %v", err)
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
