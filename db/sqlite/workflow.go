package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// WorkflowService implements orcheo.WorkflowService on SQLite.
type WorkflowService struct{ db *DB }

var _ orcheo.WorkflowService = (*WorkflowService)(nil)

// NewWorkflowService returns the workflow service of db.
func NewWorkflowService(db *DB) *WorkflowService { return &WorkflowService{db: db} }

// workflowCols selects a workflow "w" with its latest version.
const workflowCols = `w.id, w.handle, w.name, w.queue, w.created_at, w.archived_at,
	coalesce((SELECT max(version) FROM workflow_versions WHERE workflow_id = w.id), 0),
	coalesce((SELECT id FROM workflow_versions WHERE workflow_id = w.id ORDER BY version DESC LIMIT 1), '')`

func scanWorkflow(row rowScanner, extra ...any) (*orcheo.Workflow, error) {
	var w orcheo.Workflow
	dest := append([]any{&w.ID, &w.Handle, &w.Name, &w.Queue, timeCol{&w.CreatedAt}, nullTimeCol{&w.ArchivedAt},
		&w.LatestVersion, &w.LatestVersionID}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	return &w, nil
}

func findWorkflow(ctx context.Context, q querier, col, ref string) (*orcheo.Workflow, error) {
	w, err := scanWorkflow(q.QueryRowContext(ctx, `SELECT `+workflowCols+` FROM workflows w WHERE `+col+` = ?`, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, rules.WorkflowNotFound(ref)
	} else if err != nil {
		return nil, fmt.Errorf("find workflow %q: %w", ref, err)
	}
	return w, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// FindWorkflowByRef returns the workflow whose id or handle is ref.
func (s *WorkflowService) FindWorkflowByRef(ctx context.Context, ref string) (*orcheo.Workflow, error) {
	col := "w.handle"
	if orcheo.IsID(ref) {
		col = "w.id"
	} else if !orcheo.IsHandle(ref) {
		// NUL, invalid UTF-8 or any other text no handle can be: PostgreSQL
		// would refuse the query, and nothing could match.
		return nil, rules.WorkflowNotFound(ref)
	}
	return findWorkflow(ctx, s.db.read, col, ref)
}

// FindWorkflows returns matching workflows, newest first, and their count.
func (s *WorkflowService) FindWorkflows(ctx context.Context, f orcheo.WorkflowFilter) ([]*orcheo.Workflow, int, error) {
	if f.Handle != nil && !orcheo.IsHandle(*f.Handle) {
		return nil, 0, nil
	}
	const where = ` WHERE (?1 IS NULL OR w.handle = ?1) AND (?2 OR w.archived_at IS NULL)`
	var handle any
	if f.Handle != nil {
		handle = *f.Handle
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+workflowCols+`, count(*) OVER () FROM workflows w`+where+`
		ORDER BY w.created_at DESC, w.id DESC LIMIT ?3 OFFSET ?4`,
		handle, f.IncludeArchived, rules.Limit(f.Limit), rules.Offset(f.Offset))
	if err != nil {
		return nil, 0, fmt.Errorf("find workflows: %w", err)
	}
	defer rows.Close()
	var (
		out   []*orcheo.Workflow
		total int
	)
	for rows.Next() {
		w, err := scanWorkflow(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("find workflows: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find workflows: %w", err)
	}
	if len(out) == 0 && rules.Offset(f.Offset) > 0 {
		if err := s.db.read.QueryRowContext(ctx, `SELECT count(*) FROM workflows w`+where,
			handle, f.IncludeArchived).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("count workflows: %w", err)
		}
	}
	return out, total, nil
}

// CreateWorkflow stores wf and definition as its version 1.
func (s *WorkflowService) CreateWorkflow(ctx context.Context, wf *orcheo.Workflow, definition json.RawMessage) (*orcheo.WorkflowVersion, error) {
	if err := wf.Validate(); err != nil {
		return nil, err
	}
	if err := rules.Definition(definition); err != nil {
		return nil, err
	}
	now := s.db.now()
	id, vid := orcheo.NewID(), orcheo.NewID()
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO workflows (id, handle, name, queue, created_at) VALUES (?, ?, ?, ?, ?)`,
			id, wf.Handle, wf.Name, wf.Queue, ts(now)); err != nil {
			if orcheo.ErrorCode(FormatError(err)) == orcheo.ECONFLICT {
				return orcheo.Errorf(orcheo.ECONFLICT, "workflow handle %q is already taken", wf.Handle)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workflow_versions (id, workflow_id, version, definition, created_at)
			VALUES (?, ?, 1, ?, ?)`, vid, id, string(definition), ts(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create workflow %q: %w", wf.Handle, FormatError(err))
	}
	wf.ID, wf.CreatedAt, wf.ArchivedAt = id, now, nil
	wf.LatestVersion, wf.LatestVersionID = 1, vid
	return &orcheo.WorkflowVersion{ID: vid, WorkflowID: id, Version: 1, Definition: definition, CreatedAt: now}, nil
}

// CreateWorkflowVersion stores definition as the workflow's next version.
func (s *WorkflowService) CreateWorkflowVersion(ctx context.Context, workflowID string, definition json.RawMessage) (*orcheo.WorkflowVersion, error) {
	if err := rules.Definition(definition); err != nil {
		return nil, err
	}
	v := &orcheo.WorkflowVersion{ID: orcheo.NewID(), WorkflowID: workflowID, Definition: definition, CreatedAt: s.db.now()}
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		var archivedAt *string
		err := tx.QueryRowContext(ctx, `SELECT archived_at FROM workflows WHERE id = ?`, workflowID).Scan(&archivedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return rules.WorkflowNotFound(workflowID)
		} else if err != nil {
			return err
		}
		if archivedAt != nil {
			return orcheo.Errorf(orcheo.ECONFLICT, "workflow %s is archived", workflowID)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO workflow_versions (id, workflow_id, version, definition, created_at)
			SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4 FROM workflow_versions WHERE workflow_id = ?2
			RETURNING version`, v.ID, workflowID, string(definition), ts(v.CreatedAt)).Scan(&v.Version)
	})
	if err != nil {
		return nil, fmt.Errorf("create workflow version: %w", FormatError(err))
	}
	return v, nil
}

const versionCols = `id, workflow_id, version, definition, created_at`

func scanVersion(row rowScanner) (*orcheo.WorkflowVersion, error) {
	var v orcheo.WorkflowVersion
	var def []byte
	if err := row.Scan(&v.ID, &v.WorkflowID, &v.Version, &def, timeCol{&v.CreatedAt}); err != nil {
		return nil, err
	}
	v.Definition = def
	return &v, nil
}

// FindWorkflowVersions returns the workflow's versions, oldest first.
func (s *WorkflowService) FindWorkflowVersions(ctx context.Context, workflowID string) ([]*orcheo.WorkflowVersion, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+versionCols+` FROM workflow_versions
		WHERE workflow_id = ? ORDER BY version`, workflowID)
	if err != nil {
		return nil, fmt.Errorf("find workflow versions: %w", err)
	}
	defer rows.Close()
	var out []*orcheo.WorkflowVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("find workflow versions: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find workflow versions: %w", err)
	}
	return out, nil
}

// FindWorkflowVersionByID returns one version.
func (s *WorkflowService) FindWorkflowVersionByID(ctx context.Context, id string) (*orcheo.WorkflowVersion, error) {
	v, err := scanVersion(s.db.read.QueryRowContext(ctx, `SELECT `+versionCols+` FROM workflow_versions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find workflow version: %w", err)
	}
	return v, nil
}

// ArchiveWorkflow marks the workflow archived; the first archive time stays.
func (s *WorkflowService) ArchiveWorkflow(ctx context.Context, id string) (*orcheo.Workflow, error) {
	var w *orcheo.Workflow
	err := s.db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE workflows SET archived_at = coalesce(archived_at, ?) WHERE id = ?`,
			ts(s.db.now()), id); err != nil {
			return err
		}
		var err error
		w, err = findWorkflow(ctx, tx, "w.id", id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("archive workflow: %w", err)
	}
	return w, nil
}
