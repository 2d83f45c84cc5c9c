package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// runFilterParams is a run filter as the API takes it: the query of GET
// /api/runs, the body of the bulk routes. Empty fields do not filter.
type runFilterParams struct {
	Workflow       string `json:"workflow"` // id or handle
	Status         string `json:"status"`
	Trigger        string `json:"trigger"`
	Queue          string `json:"queue"`
	Since          string `json:"since"` // RFC 3339: created at or after
	Until          string `json:"until"` // RFC 3339: created before
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
}

// runFilterQuery reads runFilterParams from a query string.
func runFilterQuery(q url.Values) runFilterParams {
	return runFilterParams{Workflow: q.Get("workflow"), Status: q.Get("status"), Trigger: q.Get("trigger"),
		Queue: q.Get("queue"), Since: q.Get("since"), Until: q.Get("until"), ID: q.Get("id"),
		IdempotencyKey: q.Get("idempotency_key")}
}

// runFilter turns p into a store filter: EINVALID for a value no run can
// have (unknown status or trigger, a time that is not RFC 3339, an id that
// is not one), ENOTFOUND for an unknown workflow.
func (s *Server) runFilter(ctx context.Context, p runFilterParams) (orcheo.RunFilter, error) {
	var f orcheo.RunFilter
	if p.Status != "" {
		st := orcheo.RunStatus(p.Status)
		if !st.Valid() {
			return f, orcheo.Errorf(orcheo.EINVALID, "status %q is not one of pending, running, succeeded, failed, cancelled, skipped", p.Status)
		}
		f.Status = &st
	}
	if p.Trigger != "" {
		f.TriggeredBy = &p.Trigger
	}
	if p.Queue != "" {
		f.Queue = &p.Queue
	}
	var err error
	if f.CreatedSince, err = parseFilterTime("since", p.Since); err != nil {
		return f, err
	}
	if f.CreatedUntil, err = parseFilterTime("until", p.Until); err != nil {
		return f, err
	}
	if p.ID != "" {
		if !orcheo.IsID(p.ID) {
			return f, orcheo.Errorf(orcheo.EINVALID, "id %q is not a run id", truncate(p.ID, 64))
		}
		f.ID = &p.ID
	}
	if p.IdempotencyKey != "" {
		f.IdempotencyKey = &p.IdempotencyKey
	}
	// Everything the store checks (queue names, key length, since before
	// until) is a 400 before the workflow is looked up.
	if err := f.Validate(); err != nil {
		return f, err
	}
	if p.Workflow != "" {
		wf, err := s.Workflows.FindWorkflowByRef(ctx, p.Workflow)
		if err != nil {
			return f, err
		}
		f.WorkflowID = &wf.ID
	}
	return f, nil
}

// parseFilterTime parses an RFC 3339 time of a filter; "" is nil.
func parseFilterTime(name, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return nil, orcheo.Errorf(orcheo.EINVALID, "%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, truncate(v, 64))
	}
	return &t, nil
}

// truncate cuts v to n bytes for an error message.
func truncate(v string, n int) string {
	if len(v) > n {
		return v[:n] + "…"
	}
	return v
}

// cursorMaxLen bounds a cursor before it is decoded; encodeCursor's are
// about 70 characters.
const cursorMaxLen = 128

// encodeCursor makes the opaque next_cursor of a page ending at run r:
// base64url of "v1.<created_at in Unix microseconds>.<id>". Clients pass it
// back unchanged; its layout is not part of the API.
func encodeCursor(r *orcheo.Run) string {
	raw := "v1." + strconv.FormatInt(r.CreatedAt.UnixMicro(), 10) + "." + r.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// errBadCursor is the answer to every cursor encodeCursor did not make.
var errBadCursor = orcheo.Errorf(orcheo.EINVALID, "cursor is not one this server made: pass the next_cursor of the previous page unchanged")

// decodeCursor reads a cursor made by encodeCursor; "" is nil.
func decodeCursor(v string) (*orcheo.RunCursor, error) {
	if v == "" {
		return nil, nil
	}
	if len(v) > cursorMaxLen {
		return nil, errBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, errBadCursor
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "v1" || !orcheo.IsID(parts[2]) {
		return nil, errBadCursor
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || us < 0 || us > maxCursorMicros {
		return nil, errBadCursor
	}
	return &orcheo.RunCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: parts[2]}, nil
}

// maxCursorMicros is the end of year 9999, the last time a store keeps.
var maxCursorMicros = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMicro()

type runListResponse struct {
	Runs []*orcheo.Run `json:"runs"`
	// HasMore says another page follows, fetched with cursor=NextCursor.
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// handleRunList lists one page of runs newest first, filtered by
// runFilterParams (unknown workflow → 404, any other bad value → 400).
// Pages are keyset pages: cursor is the previous page's next_cursor; there
// is no total, which would count every matching row. offset is refused
// (but 0) with a pointer to cursor. limit defaults to runsListLimitDefault.
func (s *Server) handleRunList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, err := parsePage(q.Get("limit"), q.Get("offset"), runsListLimitDefault)
	if err != nil {
		Error(w, r, err)
		return
	}
	if offset > 0 {
		Error(w, r, orcheo.Errorf(orcheo.EINVALID, "offset is not supported on /api/runs: pass cursor, the next_cursor of the previous page"))
		return
	}
	before, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		Error(w, r, err)
		return
	}
	filter, err := s.runFilter(r.Context(), runFilterQuery(q))
	if err != nil {
		Error(w, r, err)
		return
	}
	filter.Limit, filter.Before = limit, before
	runs, more, err := s.Runs.ListRuns(r.Context(), filter)
	if err != nil {
		Error(w, r, err)
		return
	}
	resp := &runListResponse{Runs: runs, HasMore: more}
	if resp.Runs == nil {
		resp.Runs = []*orcheo.Run{}
	}
	if more {
		resp.NextCursor = encodeCursor(runs[len(runs)-1])
	}
	encodeJSON(w, r, http.StatusOK, resp)
}
