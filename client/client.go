// Package client is the Go client of orcheo's HTTP API. The CLI and the
// end-to-end tests talk to orcheo only through it. Error answers come back
// as *orcheo.Error with the server's code, so callers treat local and remote
// errors alike.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// RequestTimeout bounds each request of a client made by New.
const RequestTimeout = 30 * time.Second

// Client calls one orcheo API. It is safe for concurrent use.
type Client struct {
	// URL is the API's base URL, e.g. "http://127.0.0.1:8080".
	URL string
	// Token is sent as "Authorization: Bearer <Token>" when not empty.
	Token      string
	HTTPClient *http.Client
}

// New returns a client of the API at url, authenticating with token.
func New(url, token string) *Client {
	return &Client{
		URL:        strings.TrimRight(url, "/"),
		Token:      token,
		HTTPClient: &http.Client{Timeout: RequestTimeout},
	}
}

// request is one API call.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	header http.Header
	body   interface{} // marshalled as JSON unless nil
	// answerHeader, if set, receives the header of a 2xx answer (the
	// webhook config's ETag).
	answerHeader *http.Header
}

// do sends req and decodes a 2xx answer into out (if not nil). It returns
// the status of a 2xx answer; any other answer becomes an *orcheo.Error.
func (c *Client) do(ctx context.Context, req request, out interface{}) (int, error) {
	u := strings.TrimRight(c.URL, "/") + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s request: %w", req.method, req.path, err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return 0, fmt.Errorf("build request %s %s: %w", req.method, u, err)
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	if c.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return 0, fmt.Errorf("orcheo API at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, decodeError(resp)
	}
	if req.answerHeader != nil {
		*req.answerHeader = resp.Header
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s answer: %w", req.method, u, err)
		}
	}
	return resp.StatusCode, nil
}

// errorResponse is the body of every API error answer.
type errorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeError turns an error answer into an *orcheo.Error: the code and
// message from the body, or, for a body that is not orcheo's (a proxy's
// error page), the code for the status and the status text.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e errorResponse
	if err := json.Unmarshal(b, &e); err == nil && e.Error.Code != "" {
		return &orcheo.Error{Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := http.StatusText(resp.StatusCode)
	if msg == "" {
		msg = resp.Status
	}
	return &orcheo.Error{Code: FromErrorStatusCode(resp.StatusCode), Message: msg}
}

// statusCodes is the inverse of the server's code→status table.
var statusCodes = map[int]string{
	http.StatusBadRequest:            orcheo.EINVALID,
	http.StatusUnauthorized:          orcheo.EUNAUTHORIZED,
	http.StatusForbidden:             orcheo.EFORBIDDEN,
	http.StatusNotFound:              orcheo.ENOTFOUND,
	http.StatusMethodNotAllowed:      orcheo.EMETHOD,
	http.StatusConflict:              orcheo.ECONFLICT,
	http.StatusPreconditionFailed:    orcheo.EPRECONDITION,
	http.StatusRequestEntityTooLarge: orcheo.ETOOLARGE,
	http.StatusServiceUnavailable:    orcheo.EUNAVAILABLE,
	http.StatusTooManyRequests:       orcheo.ERATELIMITED,
	http.StatusBadGateway:            orcheo.EUNAVAILABLE,
	http.StatusGatewayTimeout:        orcheo.EUNAVAILABLE,
	http.StatusInternalServerError:   orcheo.EINTERNAL,
}

// FromErrorStatusCode returns the application error code for an HTTP
// status; statuses without one are EINTERNAL.
func FromErrorStatusCode(status int) string {
	if code, ok := statusCodes[status]; ok {
		return code
	}
	return orcheo.EINTERNAL
}

// esc escapes one path segment (an id or a handle). "." and ".." are
// escaped too, so that no path cleaning turns them into another route.
func esc(s string) string {
	if s == "" || s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return url.PathEscape(s)
}
