package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/db/internal/rules"
)

// WorkflowService implements orcheo.WorkflowService on PostgreSQL.
type WorkflowService struct{ db *DB }

var _ orcheo.WorkflowService = (*WorkflowService)(nil)

// NewWorkflowService returns the workflow service of db.
func NewWorkflowService(db *DB) *WorkflowService { return &WorkflowService{db: db} }

// workflowCols selects a workflow with its latest version from "w" joined
// laterally to "lv".
const workflowCols = `w.id, w.handle, w.name, w.queue, w.created_at, w.archived_at,
	coalesce(lv.version, 0), coalesce(lv.id::text, '')`

const latestVersionJoin = ` LEFT JOIN LATERAL (
	SELECT id, version FROM workflow_versions
	WHERE workflow_id = w.id ORDER BY version DESC LIMIT 1) lv ON true`

const workflowFrom = `workflows w` + latestVersionJoin

func scanWorkflow(row pgx.Row) (*orcheo.Workflow, error) {
	var w orcheo.Workflow
	if err := row.Scan(&w.ID, &w.Handle, &w.Name, &w.Queue, &w.CreatedAt, &w.ArchivedAt,
		&w.LatestVersion, &w.LatestVersionID); err != nil {
		return nil, err
	}
	w.CreatedAt = w.CreatedAt.UTC()
	w.ArchivedAt = rules.TimePtr(w.ArchivedAt)
	return &w, nil
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
	w, err := scanWorkflow(s.db.retryRow(ctx, retryIdempotent,
		`SELECT `+workflowCols+` FROM `+workflowFrom+` WHERE `+col+` = $1`, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rules.WorkflowNotFound(ref)
	} else if err != nil {
		return nil, fmt.Errorf("find workflow %q: %w", ref, err)
	}
	return w, nil
}

// FindWorkflows returns matching workflows, newest first, and their count.
func (s *WorkflowService) FindWorkflows(ctx context.Context, f orcheo.WorkflowFilter) ([]*orcheo.Workflow, int, error) {
	if f.Handle != nil && !orcheo.IsHandle(*f.Handle) {
		return nil, 0, nil
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT `+workflowCols+`, count(*) OVER ()
		FROM `+workflowFrom+`
		WHERE ($1::text IS NULL OR w.handle = $1) AND ($2 OR w.archived_at IS NULL)
		ORDER BY w.created_at DESC, w.id DESC
		LIMIT $3 OFFSET $4`,
		f.Handle, f.IncludeArchived, rules.Limit(f.Limit), rules.Offset(f.Offset))
	if err != nil {
		return nil, 0, fmt.Errorf("find workflows: %w", err)
	}
	defer rows.Close()
	var (
		out   []*orcheo.Workflow
		total int
	)
	for rows.Next() {
		var w orcheo.Workflow
		if err := rows.Scan(&w.ID, &w.Handle, &w.Name, &w.Queue, &w.CreatedAt, &w.ArchivedAt,
			&w.LatestVersion, &w.LatestVersionID, &total); err != nil {
			return nil, 0, fmt.Errorf("find workflows: %w", err)
		}
		w.CreatedAt = w.CreatedAt.UTC()
		w.ArchivedAt = rules.TimePtr(w.ArchivedAt)
		out = append(out, &w)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find workflows: %w", err)
	}
	if len(out) == 0 && rules.Offset(f.Offset) > 0 {
		// Past the last page the window count is not there; count apart.
		if err := s.db.retryRow(ctx, retryIdempotent, `SELECT count(*) FROM workflows w
			WHERE ($1::text IS NULL OR w.handle = $1) AND ($2 OR w.archived_at IS NULL)`,
			f.Handle, f.IncludeArchived).Scan(&total); err != nil {
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
	// One statement: the workflow and its first version, or neither. Run
	// again after a commit it would find its own handle taken: unsent only.
	_, err := s.db.retryExec(ctx, retryUnsent, `WITH w AS (
			INSERT INTO workflows (id, handle, name, queue, created_at) VALUES ($1, $2, $3, $4, $5)
			RETURNING id)
		INSERT INTO workflow_versions (id, workflow_id, version, definition, created_at)
		SELECT $6, w.id, 1, $7, $5 FROM w`,
		id, wf.Handle, wf.Name, wf.Queue, now, vid, []byte(definition))
	if err = FormatError(err); orcheo.ErrorCode(err) == orcheo.ECONFLICT {
		return nil, orcheo.Errorf(orcheo.ECONFLICT, "workflow handle %q is already taken", wf.Handle)
	} else if err != nil {
		return nil, fmt.Errorf("create workflow %q: %w", wf.Handle, err)
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
	if !orcheo.IsID(workflowID) {
		return nil, rules.WorkflowNotFound(workflowID)
	}
	// A connection lost before COMMIT left nothing, and the transaction runs
	// again; after a lost COMMIT it does not: it would add a second version.
	var v *orcheo.WorkflowVersion
	err := s.db.retryTx(ctx, retryUnsent, func(tx pgx.Tx) error {
		// The row lock serialises version numbering per workflow.
		var archivedAt *time.Time
		err := tx.QueryRow(ctx, `SELECT archived_at FROM workflows WHERE id = $1 FOR UPDATE`, workflowID).Scan(&archivedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return rules.WorkflowNotFound(workflowID)
		} else if err != nil {
			return err
		}
		if archivedAt != nil {
			return orcheo.Errorf(orcheo.ECONFLICT, "workflow %s is archived", workflowID)
		}
		v = &orcheo.WorkflowVersion{ID: orcheo.NewID(), WorkflowID: workflowID, Definition: definition, CreatedAt: s.db.now()}
		return tx.QueryRow(ctx, `INSERT INTO workflow_versions (id, workflow_id, version, definition, created_at)
		SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4 FROM workflow_versions WHERE workflow_id = $2
		RETURNING version`,
			v.ID, workflowID, []byte(definition), v.CreatedAt).Scan(&v.Version)
	})
	if err != nil {
		return nil, fmt.Errorf("create workflow version: %w", FormatError(err))
	}
	return v, nil
}

// FindWorkflowVersions returns the workflow's versions, oldest first.
func (s *WorkflowService) FindWorkflowVersions(ctx context.Context, workflowID string) ([]*orcheo.WorkflowVersion, error) {
	if !orcheo.IsID(workflowID) {
		return nil, nil
	}
	rows, err := s.db.retryQuery(ctx, retryIdempotent, `SELECT id, workflow_id, version, definition, created_at
		FROM workflow_versions WHERE workflow_id = $1 ORDER BY version`, workflowID)
	if err != nil {
		return nil, fmt.Errorf("find workflow versions: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanVersion)
	if err != nil {
		return nil, fmt.Errorf("find workflow versions: %w", err)
	}
	return out, nil
}

// FindWorkflowVersionByID returns one version.
func (s *WorkflowService) FindWorkflowVersionByID(ctx context.Context, id string) (*orcheo.WorkflowVersion, error) {
	notFound := orcheo.Errorf(orcheo.ENOTFOUND, "workflow version %q not found", id)
	if !orcheo.IsID(id) {
		return nil, notFound
	}
	rows, _ := s.db.retryQuery(ctx, retryIdempotent, `SELECT id, workflow_id, version, definition, created_at
		FROM workflow_versions WHERE id = $1`, id)
	v, err := pgx.CollectExactlyOneRow(rows, scanVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, fmt.Errorf("find workflow version: %w", err)
	}
	return v, nil
}

func scanVersion(row pgx.CollectableRow) (*orcheo.WorkflowVersion, error) {
	var v orcheo.WorkflowVersion
	var def []byte
	if err := row.Scan(&v.ID, &v.WorkflowID, &v.Version, &def, &v.CreatedAt); err != nil {
		return nil, err
	}
	v.Definition = def
	v.CreatedAt = v.CreatedAt.UTC()
	return &v, nil
}

// ArchiveWorkflow marks the workflow archived; the first archive time stays.
func (s *WorkflowService) ArchiveWorkflow(ctx context.Context, id string) (*orcheo.Workflow, error) {
	if !orcheo.IsID(id) {
		return nil, rules.WorkflowNotFound(id)
	}
	// The first archive time stays, so running it again is harmless.
	w, err := scanWorkflow(s.db.retryRow(ctx, retryIdempotent, `WITH w AS (
			UPDATE workflows SET archived_at = coalesce(archived_at, $2) WHERE id = $1 RETURNING *)
		SELECT `+workflowCols+` FROM w`+latestVersionJoin, id, s.db.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rules.WorkflowNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("archive workflow: %w", err)
	}
	return w, nil
}
