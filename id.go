package orcheo

import "github.com/google/uuid"

// NewID returns a new identifier for a workflow, version or run: a UUIDv7,
// so that ids sort by creation time and index inserts stay local.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// IsID reports whether s has the shape of an id. Handles never do, which is
// how a workflow reference is told apart.
func IsID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
