package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/orcheo/orcheo"
)

func init() { builtinTypes["http"] = httpType{} }

// httpMethods are the methods an http node may use.
var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// maxNodeRedirects bounds a node's max_redirects option.
const maxNodeRedirects = 10

// httpType calls an HTTP endpoint. See docs/workflows.md for its options.
type httpType struct{}

func (httpType) Compile(spec *Spec) (Action, error) {
	a := &httpAction{maxRedirects: -1}
	var err error
	if a.method, err = spec.Enum("method", "GET", httpMethods...); err != nil {
		return nil, err
	}
	if a.url, err = spec.Template("url", true); err != nil {
		return nil, err
	}
	if a.headers, err = spec.TemplateMap("headers"); err != nil {
		return nil, err
	}
	for _, h := range a.headers {
		if !validHeaderName(h.Key) {
			return nil, spec.Errorf("headers."+h.Key, "not a valid header name")
		}
	}
	if a.query, err = spec.TemplateMap("query"); err != nil {
		return nil, err
	}
	if a.json, err = spec.Expr("json", false); err != nil {
		return nil, err
	}
	if a.body, err = spec.Template("body", false); err != nil {
		return nil, err
	}
	if a.json != nil && a.body != nil {
		return nil, spec.Errorf("body", "set either json or body, not both")
	}
	if a.contentType, err = spec.String("content_type", false); err != nil {
		return nil, err
	}
	if a.contentType != "" {
		if _, _, err := mime.ParseMediaType(a.contentType); err != nil {
			return nil, spec.Errorf("content_type", "%q is not a media type", a.contentType)
		}
		if a.body == nil && a.json == nil {
			return nil, spec.Errorf("content_type", "only applies with body or json")
		}
	}
	if (a.json != nil || a.body != nil) && (a.method == "GET" || a.method == "HEAD") {
		return nil, spec.Errorf("method", "%s requests carry no body; use POST, PUT, PATCH or DELETE", a.method)
	}
	if a.expect, err = decodeExpect(spec); err != nil {
		return nil, err
	}
	var n int
	if ok, err := spec.Decode("max_redirects", &n); err != nil {
		return nil, err
	} else if ok {
		if n < 0 || n > maxNodeRedirects {
			return nil, spec.Errorf("max_redirects", "must be from 0 to %d", maxNodeRedirects)
		}
		a.maxRedirects = n
	}
	return a, nil
}

// decodeExpect reads expect_status: a list of status codes (200) and
// classes ("2xx"). Default: every 2xx.
func decodeExpect(spec *Spec) ([]statusRange, error) {
	var list []json.RawMessage
	ok, err := spec.Decode("expect_status", &list)
	if err != nil || (ok && len(list) == 0) {
		return nil, spec.Errorf("expect_status", `must be a list of status codes (200) or classes ("2xx")`)
	}
	if !ok {
		return []statusRange{{200, 299}}, nil
	}
	out := make([]statusRange, 0, len(list))
	for i, raw := range list {
		var code int
		var class string
		switch {
		case json.Unmarshal(raw, &code) == nil && code >= 100 && code <= 599:
			out = append(out, statusRange{code, code})
		case json.Unmarshal(raw, &class) == nil && len(class) == 3 && strings.HasSuffix(strings.ToLower(class), "xx") &&
			class[0] >= '1' && class[0] <= '5':
			base := int(class[0]-'0') * 100
			out = append(out, statusRange{base, base + 99})
		default:
			return nil, spec.Errorf(fmt.Sprintf("expect_status[%d]", i), `%s is not a status code (100-599) or class ("2xx")`, raw)
		}
	}
	return out, nil
}

type statusRange struct{ lo, hi int }

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

type httpAction struct {
	method       string
	url          *Template
	headers      []KeyedTemplate
	query        []KeyedTemplate
	json         *Expr
	body         *Template
	contentType  string
	expect       []statusRange
	maxRedirects int // -1: the engine's default
}

func (a *httpAction) Run(ctx context.Context, scope *Scope) (Result, error) {
	req, err := a.request(ctx, scope)
	if err != nil {
		return Result{}, err
	}
	hc := scope.engine.http
	redirects := a.maxRedirects
	if redirects < 0 {
		redirects = hc.opts.MaxRedirects
	}
	callCtx, cancel := hc.withDefaultTimeout(ctx, scope.nodeTimeout)
	defer cancel()
	req = req.WithContext(callCtx)
	client := hc.client(redirects)
	if redirects == 0 {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, a.callError(ctx, callCtx, err)
	}
	defer resp.Body.Close()
	limit := hc.opts.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Result{}, a.callError(ctx, callCtx, fmt.Errorf("read response: %w", err))
	}
	if int64(len(body)) > limit {
		return Result{}, fmt.Errorf("response body is larger than %d bytes", limit)
	}
	parsed, err := responseBody(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return Result{}, err
	}
	out := map[string]any{
		"status":  resp.StatusCode,
		"headers": responseHeaders(resp.Header),
		"body":    parsed,
	}
	if !a.expected(resp.StatusCode) {
		err := fmt.Errorf("status %d %s (expected %s)", resp.StatusCode, http.StatusText(resp.StatusCode), a.expectText())
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			err = Transient(err)
		}
		return Result{}, err
	}
	return Result{Output: out}, nil
}

// request builds the request from the templates and records its summary.
func (a *httpAction) request(ctx context.Context, scope *Scope) (*http.Request, error) {
	raw, err := scope.Render(a.url)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("field \"url\": %q is not an http or https URL", raw)
	}
	if len(a.query) > 0 {
		q := u.Query()
		for _, kv := range a.query {
			v, err := scope.Render(kv.Template)
			if err != nil {
				return nil, err
			}
			q.Set(kv.Key, v)
		}
		u.RawQuery = q.Encode()
	}
	// The summary leaves out the query and any user info, which often
	// carry credentials.
	summary := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	scope.SetInput(map[string]any{"method": a.method, "url": summary.String()})

	var body io.Reader
	contentType := a.contentType
	switch {
	case a.json != nil:
		v, err := scope.Eval(a.json)
		if err != nil {
			return nil, err
		}
		b, err := marshal(v)
		if err != nil {
			return nil, fmt.Errorf("field \"json\": %w", err)
		}
		body = bytes.NewReader(b)
		if contentType == "" {
			contentType = "application/json"
		}
	case a.body != nil:
		s, err := scope.Render(a.body)
		if err != nil {
			return nil, err
		}
		body = strings.NewReader(s)
		if contentType == "" {
			contentType = "text/plain; charset=utf-8"
		}
	}
	req, err := http.NewRequestWithContext(ctx, a.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("field \"url\": %w", err)
	}
	req.Header.Set("User-Agent", "orcheo-workflow")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, kv := range a.headers {
		v, err := scope.Render(kv.Template)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("field %q: header value contains a line break", "headers."+kv.Key)
		}
		req.Header.Set(kv.Key, v)
	}
	return req, nil
}

// callError classifies a failed call: the run's cancel or timeout passes
// through (runAction reports it), the node's default timeout reads like a
// node timeout, a refused address is final, other network errors are
// transient.
func (a *httpAction) callError(nodeCtx, callCtx context.Context, err error) error {
	if nodeCtx.Err() != nil {
		return nodeCtx.Err()
	}
	if callCtx.Err() != nil {
		return context.Cause(callCtx)
	}
	var refused *refusedError
	if errors.As(err, &refused) {
		return refused
	}
	var redirect *redirectError
	if errors.As(err, &redirect) {
		return redirect
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return Transient(fmt.Errorf("request: %w", err))
}

func (a *httpAction) expected(code int) bool {
	for _, r := range a.expect {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

func (a *httpAction) expectText() string {
	parts := make([]string, len(a.expect))
	for i, r := range a.expect {
		if r.lo == r.hi {
			parts[i] = strconv.Itoa(r.lo)
		} else {
			parts[i] = strconv.Itoa(r.lo/100) + "xx"
		}
	}
	return strings.Join(parts, ", ")
}

// responseHeaders returns the headers with lower-case names, repeated
// values joined by ", ".
func responseHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, vs := range h {
		out[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return out
}

// responseBody is the parsed JSON of a JSON response (application/json or
// any +json type), otherwise the text; nil when empty. A JSON body whose
// decoded values would take more than ExprByteBudget (a megabyte of tiny
// objects takes a hundred times that) is refused, permanently: the bound
// on what one node allocates holds for responses as for expressions.
func responseBody(contentType string, body []byte) (any, error) {
	if len(body) == 0 {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if cost := decodedJSONCost(string(body)); cost > ExprByteBudget {
			return nil, orcheo.Permanent(fmt.Errorf("response body of %d bytes would take about %d bytes decoded, more than the limit of %d", len(body), cost, ExprByteBudget))
		}
		var v any
		if json.Unmarshal(body, &v) == nil {
			return v, nil
		}
	}
	return strings.ToValidUTF8(string(body), "\uFFFD"), nil
}
