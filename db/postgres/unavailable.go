package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orcheo/orcheo"
)

// ErrUnavailable is the application error a store call returns while
// PostgreSQL cannot be reached; the API answers it with 503.
var ErrUnavailable = orcheo.Errorf(orcheo.EUNAVAILABLE, "database unavailable; try again shortly")

// isUnavailable reports whether err means the database could not be
// reached or dropped the connection (as opposed to rejecting the query):
// a failed connect, a connection-exception SQLSTATE (class 08), a server
// shutting down or not accepting connections (57P01-57P03), too many
// connections (53300), or a broken socket.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// unavailable wraps err with ErrUnavailable when the database could not be
// reached, and with ErrInvalidData when it refused a value (isInvalidData);
// other errors come back unchanged. The original error stays in the chain
// for logs.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidData) {
		return err // already mapped: by the pool, then by FormatError or retryTx
	}
	if isInvalidData(err) {
		return &invalidDataError{err: err}
	}
	if !isUnavailable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// ErrInvalidData is the application error for a value PostgreSQL refused
// (see isInvalidData). The checks in orcheo.CheckJSON and CheckText refuse
// such values before any query, naming the field; this is the backstop,
// so that a value they miss is a 400, never a 500. Its message never
// quotes the driver, whose text may contain the value.
var ErrInvalidData = orcheo.Errorf(orcheo.EINVALID, "a value cannot be stored: the database refused it (a NUL character, invalid UTF-8, an out-of-range number or too deep nesting)")

// isInvalidData reports whether PostgreSQL refused a value rather than
// the query: a data exception (SQLSTATE class 22: 22021 invalid byte
// sequence, 22P05 unsupported Unicode escape, 22003 numeric out of range,
// 22P02 invalid text representation…) or a program limit (class 54: 54000
// limit exceeded, 54001 stack depth exceeded by deep JSON).
func isInvalidData(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "54"))
}

type invalidDataError struct{ err error }

func (e *invalidDataError) Error() string   { return "invalid data: " + e.err.Error() }
func (e *invalidDataError) Unwrap() []error { return []error{ErrInvalidData, e.err} }

type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// mappedPool is the connection pool with every error of the calls the store
// makes passed through unavailable, so that an outage reaches the API as
// EUNAVAILABLE (503) from every store method, not as an internal error.
// Methods it does not override are pgxpool's own.
type mappedPool struct{ *pgxpool.Pool }

func (p *mappedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{p.Pool.QueryRow(ctx, sql, args...)}
}

func (p *mappedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return rows{r}, nil
}

func (p *mappedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.Pool.Exec(ctx, sql, args...)
	return tag, unavailable(err)
}

func (p *mappedPool) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := p.Pool.Begin(ctx)
	return tx, unavailable(err)
}

func (p *mappedPool) Ping(ctx context.Context) error { return unavailable(p.Pool.Ping(ctx)) }

type row struct{ pgx.Row }

func (r row) Scan(dest ...any) error { return unavailable(r.Row.Scan(dest...)) }

type rows struct{ pgx.Rows }

func (r rows) Err() error { return unavailable(r.Rows.Err()) }
