package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/internal/testenv"
)

// TestInvalidDataIsEINVALID checks the backstop: whatever value PostgreSQL
// refuses, through any pool call or FormatError, is EINVALID with a message
// that does not quote the driver (whose text may hold the value).
func TestInvalidDataIsEINVALID(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, testenv.PostgresURL(t, "db_postgres_invalid"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name, sql string
		arg       any
	}{
		{"EscapedNUL", `SELECT $1::jsonb`, `{"x":"\u0000"}`},
		{"LoneSurrogate", `SELECT $1::jsonb`, `"\ud800"`},
		{"HugeNumber", `SELECT $1::jsonb`, `1e999999`},
		{"TinyNumber", `SELECT $1::jsonb`, `1e-999999`},
		{"TooDeep", `SELECT $1::jsonb`, strings.Repeat("[", 100000) + strings.Repeat("]", 100000)},
		{"NULText", `SELECT $1::text`, "a\x00b"},
		{"InvalidUTF8Text", `SELECT $1::text`, "a\xffb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			errs := map[string]error{"QueryRow": db.pool.QueryRow(ctx, tc.sql, tc.arg).Scan(&out)}
			_, errs["Exec"] = db.pool.Exec(ctx, tc.sql, tc.arg)
			if rows, err := db.pool.Query(ctx, tc.sql, tc.arg); err != nil {
				errs["Query"] = err
			} else {
				for rows.Next() {
				}
				errs["Query"] = rows.Err()
				rows.Close()
			}
			for call, err := range errs {
				if orcheo.ErrorCode(err) != orcheo.EINVALID {
					t.Fatalf("%s: err = %v, want EINVALID", call, err)
				}
				if msg := orcheo.ErrorMessage(err); strings.Contains(msg, "SQLSTATE") || strings.Contains(msg, "ERROR") {
					t.Fatalf("%s: message %q quotes the driver", call, msg)
				}
			}
			// FormatError of the raw driver error maps it the same way.
			var raw string
			rawErr := db.pool.Pool.QueryRow(ctx, tc.sql, tc.arg).Scan(&raw)
			if orcheo.ErrorCode(rawErr) != orcheo.EINTERNAL || orcheo.ErrorCode(FormatError(rawErr)) != orcheo.EINVALID {
				t.Fatalf("FormatError(%v) = %v, want EINVALID", rawErr, FormatError(rawErr))
			}
		})
	}
}
