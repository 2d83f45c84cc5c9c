package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
)

// pages holds one template set per page, each the layout plus the page.
type pages struct {
	byName map[string]*template.Template
	// fragments renders the parts a live stream sends (rows, run panels).
	fragments *template.Template
}

// pageNames are the page templates; each defines "content".
var pageNames = []string{"login", "runs", "run", "error", "workflows", "workflow", "system", "bulk"}

var funcs = template.FuncMap{
	// statusClass takes a run's or a step's status.
	"statusClass": func(s any) string { return "status-" + fmt.Sprint(s) },
	"time":        formatTime,
	"timep": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return formatTime(*t)
	},
	"iso":        func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"shortID":    shortID,
	"prettyJSON": prettyJSON,
}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}}
	common := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html"))
	for _, name := range pageNames {
		t := template.Must(template.Must(common.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		p.byName[name] = t
	}
	p.fragments = common
	return p
}

// layoutView is what the layout shows around a page.
type layoutView struct {
	Title    string
	SignedIn bool
	User     string
	Scope    string
	CanAct   bool
	CSRF     string
	Page     any
}

// render writes page name with status, inside the layout. It renders into
// a buffer first, so a template error is an error page, never half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, title string, data any) {
	v := layoutView{Title: title, Page: data}
	if s != nil {
		v.SignedIn, v.User, v.Scope, v.CanAct, v.CSRF = true, s.name, s.scope, s.canAct(), s.csrfToken()
		if s.name == anonymousName {
			v.User = "no authentication"
		}
	}
	var buf bytes.Buffer
	if err := h.pages.byName[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.cfg.Logger.WithError(err).WithField("page", name).Error("render page")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintln(w, "Internal error: the page could not be shown.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// fragment renders one fragment template to a string.
func (h *Handler) fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := h.pages.fragments.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type errorView struct {
	Status  int
	Heading string
	Message string
}

// renderError shows err as a page with the status its code maps to: an
// application error's message, or "Internal error" (logged here) for any
// other.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := orcheo.ErrorCode(err)
	status := statusOf(code)
	msg := orcheo.ErrorMessage(err)
	if code == orcheo.EINTERNAL {
		h.cfg.Logger.WithError(err).WithFields(map[string]any{"method": r.Method, "path": r.URL.Path}).Error("internal error")
		msg = "Something went wrong on the server; it has been logged. Try again in a moment."
	}
	h.render(w, r, status, "error", s, http.StatusText(status), &errorView{Status: status, Heading: http.StatusText(status), Message: msg})
}

// statusOf maps an application error code to the page's status.
func statusOf(code string) int {
	switch code {
	case orcheo.EINVALID:
		return http.StatusBadRequest
	case orcheo.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case orcheo.EFORBIDDEN:
		return http.StatusForbidden
	case orcheo.ENOTFOUND:
		return http.StatusNotFound
	case orcheo.EMETHOD:
		return http.StatusMethodNotAllowed
	case orcheo.ECONFLICT:
		return http.StatusConflict
	case orcheo.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case orcheo.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case orcheo.ERATELIMITED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// handleNotFound is the 404 page, signed in or not.
func (h *Handler) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s, _ := h.readSession(r)
	h.renderError(w, r, s, orcheo.Errorf(orcheo.ENOTFOUND, "There is no page at %s.", r.URL.Path))
}

func (h *Handler) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s, _ := h.readSession(r)
	h.renderError(w, r, s, orcheo.Errorf(orcheo.EMETHOD, "%s is not allowed here.", r.Method))
}

// shortID is the end of an id: ids are UUIDv7, whose first characters are
// the creation time's and so the same for runs made together, while the
// last are random.
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// maxShownJSON bounds the JSON a page shows of one input or output.
const maxShownJSON = 64 << 10

// prettyJSON indents raw JSON for a <pre>, cut at maxShownJSON.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	if buf.Len() > maxShownJSON {
		return strings.ToValidUTF8(buf.String()[:maxShownJSON], "") + "\n… (cut at 64 KiB)"
	}
	return buf.String()
}

// duration is how long a run or step took, or has been running.
func duration(start, end *time.Time, now time.Time) string {
	if start == nil {
		return "—"
	}
	stop := now
	if end != nil {
		stop = *end
	}
	d := stop.Sub(*start)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}
