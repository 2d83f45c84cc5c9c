package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/orcheo/orcheo"
)

// Health returns nil if the API process answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
	return err
}

// Ready asks /readyz and returns each dependency's state ("ok" or
// "error: …"). When a dependency is down it returns the checks together with
// an EUNAVAILABLE error naming the failing ones.
func (c *Client) Ready(ctx context.Context) (map[string]string, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+"/readyz", nil)
	if err != nil {
		return nil, fmt.Errorf("build readyz request for %s: %w", c.URL, err)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("orcheo API at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, decodeError(resp)
	}
	var out struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err == nil && out.Checks == nil {
		err = fmt.Errorf("no checks in the answer")
	}
	if err != nil {
		if resp.StatusCode == http.StatusServiceUnavailable {
			return nil, &orcheo.Error{Code: orcheo.EUNAVAILABLE, Message: "orcheo API is not ready"}
		}
		return nil, fmt.Errorf("decode readyz answer from %s: %w", c.URL, err)
	}
	if resp.StatusCode == http.StatusOK {
		return out.Checks, nil
	}
	var failing []string
	for name, state := range out.Checks {
		if state != "ok" {
			failing = append(failing, name+": "+state)
		}
	}
	sort.Strings(failing)
	return out.Checks, orcheo.Errorf(orcheo.EUNAVAILABLE, "not ready: %s", strings.Join(failing, "; "))
}
