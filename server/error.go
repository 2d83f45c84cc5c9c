package server

import (
	"net/http"

	"github.com/orcheo/orcheo"
)

// codes maps each application error code to its HTTP status. It is the only
// place the mapping lives; client/ holds the inverse.
var codes = map[string]int{
	orcheo.EINVALID:      http.StatusBadRequest,
	orcheo.EUNAUTHORIZED: http.StatusUnauthorized,
	orcheo.EFORBIDDEN:    http.StatusForbidden,
	orcheo.ENOTFOUND:     http.StatusNotFound,
	orcheo.EMETHOD:       http.StatusMethodNotAllowed,
	orcheo.ECONFLICT:     http.StatusConflict,
	orcheo.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	orcheo.EUNAVAILABLE:  http.StatusServiceUnavailable,
	orcheo.ERATELIMITED:  http.StatusTooManyRequests,
	orcheo.EPRECONDITION: http.StatusPreconditionFailed,
	orcheo.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatusCode returns the HTTP status for an application error code;
// unknown codes are 500.
func ErrorStatusCode(code string) int {
	if status, ok := codes[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// errorResponse is the body of every error answer.
type errorResponse struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error writes err as a JSON error answer. Application errors keep their
// code and message; any other error is logged here (the one place it is
// handled) and answered as 500 "Internal error", so internal details never
// reach the caller. 401 answers carry a WWW-Authenticate challenge.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	code, message := orcheo.ErrorCode(err), orcheo.ErrorMessage(err)
	if code == orcheo.EINTERNAL {
		message = "Internal error"
		loggerFrom(r).WithError(err).WithFields(map[string]interface{}{
			"method": r.Method,
			"path":   r.URL.Path,
		}).Error("internal error")
	}
	status := ErrorStatusCode(code)
	// A webhook's 401 is about its signature, not a bearer token.
	if status == http.StatusUnauthorized && !isWebhookPath(r.URL.EscapedPath()) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orcheo"`)
	}
	encodeJSON(w, r, status, &errorResponse{Error: errorBody{Code: code, Message: message}})
}
