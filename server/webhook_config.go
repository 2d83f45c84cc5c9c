package server

import (
	"net/http"

	"github.com/orcheo/orcheo"
)

// handleWebhookConfigView returns the trigger's config (disabled if never
// set). Secrets, once the config has any, are never returned.
func (s *Server) handleWebhookConfigView(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	cfg, err := s.Triggers.FindWebhookConfig(r.Context(), wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, cfg)
}

// handleWebhookConfigUpdate replaces the trigger's config after validating
// it (unknown fields and unsupported methods are 400) and returns it.
func (s *Server) handleWebhookConfigUpdate(w http.ResponseWriter, r *http.Request) {
	var cfg orcheo.WebhookConfig
	if err := decodeJSON(r, &cfg, false); err != nil {
		Error(w, r, err)
		return
	}
	if err := cfg.Validate(); err != nil {
		Error(w, r, err)
		return
	}
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	if err := s.Triggers.SetWebhookConfig(r.Context(), wf.ID, &cfg); err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, &cfg)
}
