package rules

import (
	"encoding/json"

	"github.com/orcheo/orcheo"
)

// EventSuspended is the run_events kind of an attempt parked at a long
// delay (SuspendRun).
const EventSuspended = "suspended"

// Checkpoint checks a suspended run's checkpoint before it is stored.
func Checkpoint(cp json.RawMessage) error {
	if len(cp) == 0 || !json.Valid(cp) {
		return orcheo.Errorf(orcheo.EINVALID, "run checkpoint must be JSON")
	}
	return orcheo.CheckJSON("run checkpoint", cp)
}
