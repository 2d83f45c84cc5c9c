// Package examples ships the example workflows in the binary, so that
// orcheo dev can install them and tests can run every one.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// Files returns each example's file name and contents.
func Files() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err == nil {
			out[e.Name()] = b
		}
	}
	return out
}
