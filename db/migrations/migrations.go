// Package migrations embeds the SQL schema of each backend. Files are applied
// in lexical order, one transaction per file, and recorded by name in a
// schema_migrations table, so a file must never change once released: add a
// new one instead.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// File is one migration: its name (the file name, which is also its key in
// schema_migrations) and its SQL.
type File struct {
	Name string
	SQL  string
}

// Postgres returns the PostgreSQL migrations in the order they apply.
func Postgres() ([]File, error) { return list("postgres") }

// SQLite returns the SQLite migrations in the order they apply.
func SQLite() ([]File, error) { return list("sqlite") }

func list(dir string) ([]File, error) {
	names, err := fs.Glob(files, dir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list %s migrations: %w", dir, err)
	}
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, File{Name: strings.TrimPrefix(name, dir+"/"), SQL: string(b)})
	}
	return out, nil
}
