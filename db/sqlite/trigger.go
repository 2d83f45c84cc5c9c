package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// TriggerService implements orcheo.TriggerService on SQLite.
type TriggerService struct{ db *DB }

var _ orcheo.TriggerService = (*TriggerService)(nil)

// NewTriggerService returns the trigger service of db.
func NewTriggerService(db *DB) *TriggerService { return &TriggerService{db: db} }

// FindWebhookConfig returns the stored config, or a disabled zero config.
func (s *TriggerService) FindWebhookConfig(ctx context.Context, workflowID string) (*orcheo.WebhookConfig, error) {
	cfg := &orcheo.WebhookConfig{}
	var raw []byte
	err := s.db.read.QueryRowContext(ctx, `SELECT config FROM webhook_triggers WHERE workflow_id = ?`, workflowID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
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
	n, err := upsertWebhookConfig(ctx, s.db.write, workflowID, raw, s.db.now())
	if err != nil {
		return fmt.Errorf("set webhook config of workflow %s: %w", workflowID, err)
	} else if n == 0 {
		return rules.WorkflowNotFound(workflowID)
	}
	return nil
}

// UpdateWebhookConfig runs fn on the workflow's config and stores its
// result in one IMMEDIATE transaction on the write connection: it holds
// the file's write lock from the read to the commit, so concurrent updates
// (of this process, which has one write connection, and of others on the
// same file) run one after the other, the first config of a workflow too.
func (s *TriggerService) UpdateWebhookConfig(ctx context.Context, workflowID string,
	fn func(stored *orcheo.WebhookConfig) (*orcheo.WebhookConfig, error)) (*orcheo.WebhookConfig, error) {
	var out *orcheo.WebhookConfig
	var fnErr error
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		stored := &orcheo.WebhookConfig{}
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT config FROM webhook_triggers WHERE workflow_id = ?`, workflowID).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM workflows WHERE id = ?`, workflowID).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return rules.WorkflowNotFound(workflowID)
			} else if err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(raw, stored); err != nil {
				return fmt.Errorf("decode webhook config of workflow %s: %w", workflowID, err)
			}
		}
		cfg, err := fn(stored)
		if err != nil {
			fnErr = err
			return err
		}
		if raw, err = rules.EncodeWebhookConfig(cfg); err != nil {
			return err
		}
		if _, err := upsertWebhookConfig(ctx, tx, workflowID, raw, s.db.now()); err != nil {
			return err
		}
		out = cfg
		return nil
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return nil, fnErr
	} else if err != nil {
		return nil, fmt.Errorf("update webhook config of workflow %s: %w", workflowID, err)
	}
	return out, nil
}

// upsertWebhookConfig stores raw as the workflow's config and returns the
// number of rows written: 0 when the workflow does not exist.
func upsertWebhookConfig(ctx context.Context, db querier, workflowID string, raw []byte, now time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO webhook_triggers (workflow_id, config, updated_at)
		SELECT id, ?2, ?3 FROM workflows WHERE id = ?1
		ON CONFLICT (workflow_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
		workflowID, string(raw), ts(now))
	if err != nil {
		return 0, FormatError(err)
	}
	return res.RowsAffected()
}

// FindWebhookTriggers returns every stored webhook config with its
// workflow's id and handle.
func (s *TriggerService) FindWebhookTriggers(ctx context.Context) ([]*orcheo.WebhookTrigger, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT t.workflow_id, w.handle, w.archived_at IS NOT NULL, t.config
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
