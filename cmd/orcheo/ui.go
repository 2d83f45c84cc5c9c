package main

import (
	"context"

	"github.com/orcheo/orcheo"
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

// uiSystem is what the UI's system page reads beyond the server's
// services: the queue depths, the store's run stats and counts, and the
// beat's lease, all on the process's one Redis client and store.
type uiSystem struct {
	queues     ui.QueueDepths
	queueNames []string
	stats      orcheo.RunStatsService
	counts     orcheo.RunCounts
	beatLeader func(ctx context.Context) (string, error)
}

// newUI builds the web UI on the server's services and tokens. Workers is
// the server's tasks.Inspector, so the workers' page shows what orcheo
// inspect active shows.
func newUI(s *server.Server, sys uiSystem) *ui.Handler {
	return ui.New(ui.Config{
		Runs: s.Runs, Workflows: s.Workflows, Submitter: s.Submitter, Cancels: s.Cancels,
		Tokens: uiTokens{s}, Logger: s.Logger,
		Triggers: s.Triggers, Cron: s.Cron, CronScheduler: s.CronScheduler, Workers: s.Workers,
		Queues: sys.queues, QueueNames: sys.queueNames, RunStats: sys.stats, RunCounts: sys.counts,
		BeatLeader: sys.beatLeader,
	})
}
