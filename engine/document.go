package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/orcheo/orcheo"
	"gopkg.in/yaml.v3"
)

// documentJSON returns the definition as JSON: JSON input as it is, YAML
// input converted. Mapping order is not kept (JSON objects are unordered),
// which is why the canonical form sorts option keys.
func documentJSON(data []byte) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition is empty")
	}
	if json.Valid(data) {
		return data, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition is neither JSON nor YAML: %s", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition must be a single YAML document")
	}
	v, err := jsonValue(doc)
	if err != nil {
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition: %s", err)
	}
	return marshal(v)
}

// jsonValue converts a value decoded by yaml.v3 into one encoding/json
// accepts: mapping keys become strings, timestamps text (a date alone as
// YYYY-MM-DD, otherwise RFC 3339).
func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = c
		}
		return m, nil
	case []any:
		for i, e := range x {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case time.Time:
		// An unquoted date such as 2026-01-01 reads back as written.
		if x.Equal(x.Truncate(24*time.Hour)) && x.Location() == time.UTC {
			return x.Format(time.DateOnly), nil
		}
		return x.Format(time.RFC3339Nano), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("%v is not a JSON number", x)
		}
		return x, nil
	default:
		return x, nil
	}
}

// object decodes raw as a JSON object, dropping null members so that
// `key:` with no value in YAML reads as an absent key.
func object(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	for k, v := range m {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(m, k)
		}
	}
	return m, true
}

// marshal encodes v as compact JSON without escaping <, > and &, which are
// common in expressions.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonicalValue re-encodes a JSON value with sorted object keys and
// numbers kept as written.
func canonicalValue(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return marshal(v)
}

// orderedObject builds a JSON object whose members keep insertion order,
// so that canonical definitions read id and type first.
type orderedObject struct {
	buf bytes.Buffer
	err error
}

func (o *orderedObject) add(key string, v any) {
	if o.err != nil {
		return
	}
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b, o.err = canonicalValue(x)
	default:
		b, o.err = marshal(x)
	}
	if o.err != nil {
		return
	}
	if o.buf.Len() == 0 {
		o.buf.WriteByte('{')
	} else {
		o.buf.WriteByte(',')
	}
	k, _ := marshal(key)
	o.buf.Write(k)
	o.buf.WriteByte(':')
	o.buf.Write(b)
}

func (o *orderedObject) bytes() (json.RawMessage, error) {
	if o.err != nil {
		return nil, o.err
	}
	if o.buf.Len() == 0 {
		return json.RawMessage("{}"), nil
	}
	return append(o.buf.Bytes(), '}'), nil
}
