package orcheo

import (
	"errors"
	"fmt"
)

// Application error codes. The HTTP layer maps each to one status code and
// the client maps the status back, so callers treat local and remote errors
// alike.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden" // a valid API token whose scope does not cover the request
	EUNAVAILABLE  = "unavailable"
	ETOOLARGE     = "too_large"
	EMETHOD       = "method_not_allowed"
	// ERATELIMITED: a webhook's rate limit refused the request; the answer
	// carries Retry-After.
	ERATELIMITED = "rate_limited"
	// EPRECONDITION: a conditional request's precondition (If-Match) does
	// not hold: what it would change changed since the caller read it, and
	// nothing was written.
	EPRECONDITION = "precondition_failed"
)

// Error is an application error: its Message is safe to show to the user.
// Any other error is internal, and users see only "Internal error".
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("orcheo error: code=%s message=%s", e.Code, e.Message)
}

// Errorf builds an application error with the given code.
func Errorf(code string, format string, args ...interface{}) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the application error wrapped in err,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the application error wrapped in err,
// "Internal error" for any other non-nil error, and "" for nil.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error"
}
