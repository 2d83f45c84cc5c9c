package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
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
	raw, err := rules.EncodeWebhookConfig(cfg)
	if err != nil {
		return err
	}
	if !orcheo.IsID(workflowID) {
		return rules.WorkflowNotFound(workflowID)
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
		return rules.WorkflowNotFound(workflowID)
	}
	return nil
}

// UpdateWebhookConfig runs fn on the workflow's config and stores its
// result in one transaction that holds the config's row lock from the read
// to the commit, so concurrent updates of one workflow queue on it. A
// workflow without a config first gets the zero config inserted (rolled
// back with the rest if fn fails): concurrent first updates then queue on
// that row too, the later ones waiting for the first insert's commit and
// inserting nothing. A connection lost before COMMIT left nothing, and the
// transaction runs again with fn; after a lost COMMIT it does not, as fn's
// change may have committed and would be applied twice.
func (s *TriggerService) UpdateWebhookConfig(ctx context.Context, workflowID string,
	fn func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error) {
	if !orcheo.IsID(workflowID) {
		return nil, rules.WorkflowNotFound(workflowID)
	}
	var out *orcheo.WebhookConfig
	var fnErr error
	err := s.db.retryTx(ctx, retryUnsent, func(tx pgx.Tx) error {
		out, fnErr = nil, nil
		now := s.db.now()
		// Inserts nothing when the config exists or the workflow does not.
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_triggers (workflow_id, config, updated_at)
			SELECT id, '{}', $2 FROM workflows WHERE id = $1
			ON CONFLICT (workflow_id) DO NOTHING`, workflowID, now); err != nil {
			return err
		}
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT config FROM webhook_triggers WHERE workflow_id = $1 FOR UPDATE`, workflowID).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return rules.WorkflowNotFound(workflowID)
		} else if err != nil {
			return err
		}
		stored := &orcheo.WebhookConfig{}
		if err := json.Unmarshal(raw, stored); err != nil {
			return fmt.Errorf("decode webhook config of workflow %s: %w", workflowID, err)
		}
		cfg, err := fn(stored)
		if err != nil {
			fnErr = err
			return err
		}
		if raw, err = rules.EncodeWebhookConfig(cfg); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_triggers SET config = $2, updated_at = $3 WHERE workflow_id = $1`,
			workflowID, raw, now); err != nil {
			return err
		}
		out = cfg
		return nil
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return nil, fnErr
	} else if err != nil {
		return nil, fmt.Errorf("update webhook config of workflow %s: %w", workflowID, FormatError(err))
	}
	return out, nil
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
