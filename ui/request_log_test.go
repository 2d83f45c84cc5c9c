package ui_test

import (
	"net/http"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// TestRequestLog_NamesTheSessionToken: a signed-in UI request's log line
// names its token, as an API call's does, so an operator can tell who did
// what from the request log; a request without a session names none.
func TestRequestLog_NamesTheSessionToken(t *testing.T) {
	e := newEnv(t)
	hook := test.NewLocal(e.srv.Logger.(*logrus.Logger))
	tokenOf := func(path string) (string, bool) {
		t.Helper()
		for _, entry := range hook.AllEntries() {
			if entry.Message == "request" && entry.Data["path"] == path {
				name, ok := entry.Data["token"].(string)
				return name, ok
			}
		}
		t.Fatalf("no request line for %s", path)
		return "", false
	}

	anon := e.browser(t)
	if a := anon.get("/ui/login"); a.status != http.StatusOK {
		t.Fatalf("login page: %d", a.status)
	}
	if name, ok := tokenOf("/ui/login"); ok {
		t.Fatalf("a request without a session names token %q", name)
	}

	b := e.browser(t)
	b.login(readToken)
	if a := b.get("/ui/system"); a.status != http.StatusOK {
		t.Fatalf("system page: %d", a.status)
	}
	name, ok := tokenOf("/ui/system")
	if !ok || name != testTokens[1].Name {
		t.Fatalf("signed-in request names token %q (%v), want %q", name, ok, testTokens[1].Name)
	}
}
