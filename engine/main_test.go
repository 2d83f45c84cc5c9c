package engine_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails a green run that leaves a node goroutine behind: every
// node a timeout or cancel abandoned must end once the test released it.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := nodeGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked node goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// nodeGoroutines polls until no goroutine runs a node action, and returns
// the stacks of those left after wait.
func nodeGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "engine.(*executor).runAction") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}
