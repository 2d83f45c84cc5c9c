package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
)

// TriggerService implements orcheo.TriggerService on PostgreSQL.
type TriggerService struct{ db *DB }

var _ orcheo.TriggerService = (*TriggerService)(nil)

// NewTriggerService returns the trigger service of db.
func NewTriggerService(db *DB) *TriggerService { return &TriggerService{db: db} }

// FindWebhookConfig returns the stored config, or a disabled zero config.
func (s *TriggerService) FindWebhookConfig(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error) {
	cfg := &orcheo.WebhookConfig{}
	if !orcheo.IsID(workflowID) {
		return cfg, nil
	}
	var raw []byte
	err := s.db.retryRow(ctx, retryIdempotent, `SELECT config FROM webhook_triggers WHERE workflow_id = $1`, workflowID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return cfg, nil
	} else if err != nil {
		return nil, fmt.Errorf("find webhook config of workflow %s: %w", workflowID, err)
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("decode webhook config of workflow %s: %w", workflowID, err)
	}
	return cfg, nil
}

// SetWebhookConfig validates cfg and replaces the workflow's config in one
// upsert that inserts nothing when the workflow does not exist. A config
// holding a plaintext secret is EINVALID: only sealed ones are stored.
func (s *TriggerService) SetWebhookConfig(ctx context.Context, workflowID string, cfg *orcheo.WebhookConfig) error {
	if cfg == nil {
		return orcheo.Errorf(orcheo.EINVALID, "webhook config is missing")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if v := cfg.Verify; v != nil && (v.Secret != "" || v.PreviousSecret != "") {
		// The server seals them (SecretBox); plaintext is never stored.
		return orcheo.Errorf(orcheo.EINVALID, "webhook config: verify secrets must be sealed before they are stored")
	}
	if !orcheo.IsID(workflowID) {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", workflowID)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode webhook config: %w", err)
	}
	// An upsert of the same values: running it again is harmless.
	tag, err := s.db.retryExec(ctx, retryIdempotent, `INSERT INTO webhook_triggers (workflow_id, config, updated_at)
		SELECT id, $2, $3 FROM workflows WHERE id = $1
		ON CONFLICT (workflow_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
		workflowID, raw, s.db.now())
	if err != nil {
		return fmt.Errorf("set webhook config of workflow %s: %w", workflowID, FormatError(err))
	}
	if tag.RowsAffected() == 0 {
		return orcheo.Errorf(orcheo.ENOTFOUND, "workflow %q not found", workflowID)
	}
	return nil
}

// FindWebhookTriggers returns every stored webhook config with its
// workflow's id and handle.
func (s *TriggerService) FindWebhookTriggers(ctx context.Context) ([]*orcheo.WebhookTrigger, error) {
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT t.workflow_id, w.handle, w.archived_at IS NOT NULL, t.config
		FROM webhook_triggers t JOIN workflows w ON w.id = t.workflow_id ORDER BY t.workflow_id`)
	if err != nil {
		return nil, fmt.Errorf("find webhook triggers: %w", err)
	}
	defer rows.Close()
	var out []*orcheo.WebhookTrigger
	for rows.Next() {
		var raw []byte
		t := &orcheo.WebhookTrigger{Config: &orcheo.WebhookConfig{}}
		if err := rows.Scan(&t.WorkflowID, &t.Handle, &t.Archived, &raw); err != nil {
			return nil, fmt.Errorf("find webhook triggers: %w", err)
		}
		if err := json.Unmarshal(raw, t.Config); err != nil {
			return nil, fmt.Errorf("decode webhook config of workflow %s: %w", t.WorkflowID, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find webhook triggers: %w", err)
	}
	return out, nil
}
