package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionCommand prints what the binary was built from: orcheo version,
// orcheo --version.
type versionCommand struct {
	*env
}

// buildInfo is what versionCommand prints (--json for scripts).
type buildInfo struct {
	Version   string `json:"version"`            // the module's version, "(devel)" from a checkout
	Revision  string `json:"revision,omitempty"` // the VCS commit
	Time      string `json:"time,omitempty"`     // the commit's time
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
}

// readBuildInfo reads the binary's build information
// (runtime/debug.ReadBuildInfo); a binary built without module support
// reports "unknown".
func readBuildInfo() buildInfo {
	out := buildInfo{Version: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	if bi.Main.Version != "" {
		out.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		out.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Revision = s.Value
		case "vcs.time":
			out.Time = s.Value
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("version")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("version", pos); err != nil {
		return err
	}
	bi := readBuildInfo()
	if *asJSON {
		return writeJSON(c.stdout, bi)
	}
	line := "orcheo " + bi.Version
	if bi.Revision != "" {
		line += " " + bi.Revision
		if bi.Modified {
			line += "+dirty"
		}
	}
	if bi.Time != "" {
		line += " " + bi.Time
	}
	fmt.Fprintf(c.stdout, "%s %s\n", line, bi.GoVersion)
	return nil
}
