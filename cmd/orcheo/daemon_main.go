package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

// daemon is one of orcheo's long-running processes (apiMain, workerMain,
// beatMain, devMain), shaped as wtfd's Main: Run opens and starts
// everything and returns once it serves; Close stops it all in reverse,
// once, and is safe after a Run that failed half way.
type daemon interface {
	Run(ctx context.Context) error
	Close() error
}

// waitAndClose is how each daemon command ends once its Main runs: wait
// for ctx (the first SIGTERM or SIGINT), log msg and close m. A second
// signal while Close drains exits at once: the runs in flight keep their
// leases until they expire, and the rescuer and the reaper give them to
// other workers.
func waitAndClose(ctx context.Context, m daemon, log logrus.FieldLogger, msg string) error {
	return closeWhenDone(ctx, ctx, m, log, msg)
}

// closeWhenDone is waitAndClose for a daemon that may also be stopped
// without a signal (a worker's control shutdown): stop ends the wait,
// signals is the first SIGTERM or SIGINT. A drain that no signal started
// is not ended by the first signal during it, only by a second, so an
// operator's `systemctl stop` after `orcheo control shutdown` still lets
// the runs finish.
func closeWhenDone(stop, signals context.Context, m daemon, log logrus.FieldLogger, msg string) error {
	<-stop.Done()
	log.Info(msg)
	again := make(chan os.Signal, 2)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	allowed := 0 // signals that may come during Close before one exits
	if signals.Err() == nil {
		allowed = 1
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	for {
		select {
		case err := <-closed:
			return err
		case sig := <-again:
			if allowed > 0 {
				allowed--
				log.WithField("signal", sig.String()).Info("signal during a drain: still finishing runs in flight; another signal exits at once")
				continue
			}
			log.WithField("signal", sig.String()).Warn("second signal: exiting now; unfinished runs are recovered when their leases expire")
			os.Exit(1)
			return nil
		}
	}
}

// closeErrors keeps the first error of a Close that goes on past it, so
// one failed step does not leave the rest open.
type closeErrors struct{ first error }

func (e *closeErrors) add(err error) {
	if err != nil && e.first == nil {
		e.first = err
	}
}
