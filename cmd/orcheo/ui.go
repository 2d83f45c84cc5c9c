package main

import (
	"github.com/orcheo/orcheo/server"
	"github.com/orcheo/orcheo/ui"
)

// uiTokens lends the API's tokens to the web UI, which imports no server:
// the same constant-time check as a bearer header, and session keys
// derived from each token's stored hash.
type uiTokens struct{ s *server.Server }

var _ ui.Tokens = uiTokens{}

func (t uiTokens) Enabled() bool { return t.s.AuthEnabled() }

func (t uiTokens) Authenticate(value string) (ui.Token, bool) {
	p, ok := t.s.TokenPrincipal(value)
	return ui.Token{Name: p.TokenName, Scope: string(p.Scope)}, ok
}

func (t uiTokens) SessionKey(name string) ([]byte, ui.Token, bool) {
	key, p, ok := t.s.TokenSessionKey(name, "orcheo ui session key")
	return key, ui.Token{Name: p.TokenName, Scope: string(p.Scope)}, ok
}

// newUI builds the web UI on the server's services and tokens.
func newUI(s *server.Server) *ui.Handler {
	return ui.New(ui.Config{
		Runs: s.Runs, Workflows: s.Workflows, Submitter: s.Submitter, Cancels: s.Cancels,
		Tokens: uiTokens{s}, Logger: s.Logger,
	})
}
