package tasks

import "context"

// batchLoop is the one goroutine of a group-commit service (claimer,
// completer): each time wake fires it calls flush until flush reports
// nothing more is waiting, so what queued during a write goes out in the
// next one with no timer; once ctx is done it calls stop and returns.
func batchLoop(ctx context.Context, wake <-chan struct{}, flush func() bool, stop func()) {
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case <-wake:
		}
		for flush() {
		}
	}
}
