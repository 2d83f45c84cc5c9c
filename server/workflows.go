package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/orcheo/orcheo"
)

func (s *Server) registerWorkflowRoutes(r *mux.Router) {
	r.HandleFunc("/api/workflows", s.handleWorkflowCreate).Methods(http.MethodPost)
	r.HandleFunc("/api/workflows", s.handleWorkflowList).Methods(http.MethodGet)
	r.HandleFunc("/api/workflows/{ref}", s.handleWorkflowView).Methods(http.MethodGet)
	r.HandleFunc("/api/workflows/{ref}/versions", s.handleWorkflowVersionList).Methods(http.MethodGet)
	r.HandleFunc("/api/workflows/{ref}/versions", s.handleWorkflowVersionCreate).Methods(http.MethodPost)
	r.HandleFunc("/api/workflows/{ref}/archive", s.handleWorkflowArchive).Methods(http.MethodPost)
}

// definitionField accepts a workflow definition either as a JSON object or
// as a string holding a JSON or YAML document (what the CLI sends: the file
// as it is).
type definitionField json.RawMessage

// source returns the document to compile, or EINVALID if it is missing or
// of another JSON type.
func (d definitionField) source() ([]byte, error) {
	raw := json.RawMessage(d)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, orcheo.Errorf(orcheo.EINVALID, "definition is required")
	case raw[0] == '{':
		return raw, nil
	case raw[0] == '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, jsonError(err)
		}
		if text == "" {
			return nil, orcheo.Errorf(orcheo.EINVALID, "definition is required")
		}
		return []byte(text), nil
	}
	return nil, orcheo.Errorf(orcheo.EINVALID, "definition must be a JSON object or a string holding JSON or YAML")
}

func (d *definitionField) UnmarshalJSON(b []byte) error {
	*d = append((*d)[:0], b...)
	return nil
}

// compile turns a definition field into the canonical form the store keeps.
func (s *Server) compile(d definitionField) (json.RawMessage, error) {
	src, err := d.source()
	if err != nil {
		return nil, err
	}
	return s.Engine.Compile(src)
}

type workflowCreateRequest struct {
	Handle     string          `json:"handle"`
	Name       string          `json:"name"`
	Queue      string          `json:"queue"`
	Definition definitionField `json:"definition"`
}

// handleWorkflowCreate validates and compiles before storing, so an invalid
// workflow or definition stores nothing. 201 with the workflow.
func (s *Server) handleWorkflowCreate(w http.ResponseWriter, r *http.Request) {
	var req workflowCreateRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	wf := &orcheo.Workflow{Handle: req.Handle, Name: req.Name, Queue: req.Queue}
	if err := wf.Validate(); err != nil {
		Error(w, r, err)
		return
	}
	def, err := s.compile(req.Definition)
	if err != nil {
		Error(w, r, err)
		return
	}
	_, err = s.Workflows.CreateWorkflow(r.Context(), wf, def)
	// Caches may hold "not found" for its handle. Told on an error too:
	// a write whose answer was lost may have committed.
	s.changed(r, wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusCreated, wf)
}

type workflowListResponse struct {
	Workflows []*orcheo.Workflow `json:"workflows"`
	Total     int                `json:"total"`
}

// handleWorkflowList lists workflows newest first; without limit it returns
// all of them (workflows are few), with limit at most listLimitMax.
func (s *Server) handleWorkflowList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := orcheo.WorkflowFilter{}
	var err error
	if filter.Limit, filter.Offset, err = parsePage(q.Get("limit"), q.Get("offset"), 0); err != nil {
		Error(w, r, err)
		return
	}
	if v := q.Get("include_archived"); v != "" {
		if filter.IncludeArchived, err = strconv.ParseBool(v); err != nil {
			Error(w, r, orcheo.Errorf(orcheo.EINVALID, "include_archived must be true or false"))
			return
		}
	}
	wfs, total, err := s.Workflows.FindWorkflows(r.Context(), filter)
	if err != nil {
		Error(w, r, err)
		return
	}
	if wfs == nil {
		wfs = []*orcheo.Workflow{}
	}
	encodeJSON(w, r, http.StatusOK, &workflowListResponse{Workflows: wfs, Total: total})
}

// parsePage parses limit and offset query values. An empty limit is def;
// limits above listLimitMax and negative values are EINVALID.
func parsePage(limitStr, offsetStr string, def int) (limit, offset int, err error) {
	limit = def
	if limitStr != "" {
		if limit, err = strconv.Atoi(limitStr); err != nil || limit < 0 || limit > listLimitMax {
			return 0, 0, orcheo.Errorf(orcheo.EINVALID, "limit must be an integer from 0 to %d", listLimitMax)
		}
		if limit == 0 {
			limit = def
		}
	}
	if offsetStr != "" {
		if offset, err = strconv.Atoi(offsetStr); err != nil || offset < 0 {
			return 0, 0, orcheo.Errorf(orcheo.EINVALID, "offset must be a non-negative integer")
		}
	}
	return limit, offset, nil
}

// handleWorkflowView returns one workflow by id or handle, archived or not.
func (s *Server) handleWorkflowView(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusOK, wf)
}

type versionListResponse struct {
	Versions []*orcheo.WorkflowVersion `json:"versions"`
}

// handleWorkflowVersionList returns every version, oldest first.
func (s *Server) handleWorkflowVersionList(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	versions, err := s.Workflows.FindWorkflowVersions(r.Context(), wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	if versions == nil {
		versions = []*orcheo.WorkflowVersion{}
	}
	encodeJSON(w, r, http.StatusOK, &versionListResponse{Versions: versions})
}

type versionCreateRequest struct {
	Definition definitionField `json:"definition"`
}

// handleWorkflowVersionCreate compiles and stores the next version: 201.
// Archived workflows take no new versions (409).
func (s *Server) handleWorkflowVersionCreate(w http.ResponseWriter, r *http.Request) {
	var req versionCreateRequest
	if err := decodeJSON(r, &req, false); err != nil {
		Error(w, r, err)
		return
	}
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	if wf.Archived() {
		Error(w, r, orcheo.Errorf(orcheo.ECONFLICT, "workflow %q is archived", wf.Handle))
		return
	}
	def, err := s.compile(req.Definition)
	if err != nil {
		Error(w, r, err)
		return
	}
	v, err := s.Workflows.CreateWorkflowVersion(r.Context(), wf.ID, def)
	// Webhook runs start the latest version, read from the cache.
	s.changed(r, wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	encodeJSON(w, r, http.StatusCreated, v)
}

// handleWorkflowArchive archives a workflow (idempotent) and returns it.
func (s *Server) handleWorkflowArchive(w http.ResponseWriter, r *http.Request) {
	wf, err := s.Workflows.FindWorkflowByRef(r.Context(), pathVar(r, "ref"))
	if err != nil {
		Error(w, r, err)
		return
	}
	archived, err := s.Workflows.ArchiveWorkflow(r.Context(), wf.ID)
	s.changed(r, wf.ID)
	if err != nil {
		Error(w, r, err)
		return
	}
	wf = archived
	encodeJSON(w, r, http.StatusOK, wf)
}
