package maintenance

import (
	"context"
	"time"
)

// every calls pass every interval until ctx is done, the shape every
// service here runs in; passNow makes the first pass at once instead of
// after the first interval (the Reaper makes its first pass before Start
// returns, so it waits).
func every(ctx context.Context, interval time.Duration, passNow bool, pass func(context.Context)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	if passNow {
		pass(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pass(ctx)
	}
}

// orDefault sets *field to def when it is the zero value: the defaults of
// every service's config (interval, batch size, logger, clock) are filled
// the same way.
func orDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
