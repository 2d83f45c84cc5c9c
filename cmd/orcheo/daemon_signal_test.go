package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// fakeDaemon is a daemon whose Close reports on closing and then returns
// err, or blocks forever when block is set.
type fakeDaemon struct {
	closing chan struct{}
	block   bool
	err     error
}

func (d *fakeDaemon) Run(context.Context) error { return nil }

func (d *fakeDaemon) Close() error {
	close(d.closing)
	if d.block {
		select {}
	}
	return d.err
}

// TestWaitAndClose: once ctx is done, the daemon is closed and its error
// returned.
func TestWaitAndClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	d := &fakeDaemon{closing: make(chan struct{}), err: errors.New("close failed")}
	done := make(chan error, 1)
	go func() { done <- waitAndClose(ctx, d, quietLogger(t), "stopping") }()
	select {
	case <-d.closing:
		t.Fatal("closed before ctx was done")
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, d.err) {
		t.Fatalf("waitAndClose = %v, want Close's error", err)
	}
}

// TestWaitAndCloseSecondSignal runs the daemon commands' signal handling in
// a child process (this test binary again): the first SIGTERM starts a
// Close that never ends, and the second makes the process exit 1 at once.
func TestWaitAndCloseSecondSignal(t *testing.T) {
	t.Parallel()
	cmd, stderr, lines := startCloseChild(t, "1")
	next := func(want string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		t.Fatalf("the child ended before printing %q; stderr:\n%s", want, stderr.String())
	}
	next("ready")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("closing") // the first signal drains; the Close never ends
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	exitsWith1(t, exited, stderr)
	if !strings.Contains(stderr.String(), "second signal: exiting now") {
		t.Fatalf("the child did not say why it exited; stderr:\n%s", stderr.String())
	}
}

// startCloseChild starts TestWaitAndCloseChild in a child process in mode
// ("1": stopped by its first signal; "control": stopped without one) and
// returns it, its stderr and its stdout's lines.
func startCloseChild(t *testing.T, mode string) (*exec.Cmd, *lockedBuffer, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWaitAndCloseChild$")
	cmd.Env = append(os.Environ(), "ORCHEO_TEST_WAIT_AND_CLOSE_CHILD="+mode)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stderr, bufio.NewScanner(stdout)
}

// exitsWith1 waits for the child's end (exited) after its second signal:
// within 10 s, with exit status 1.
func exitsWith1(t *testing.T, exited <-chan error, stderr *lockedBuffer) {
	t.Helper()
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the child still runs 10s after the second signal; stderr:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child ended with %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
}

// TestWaitAndCloseChild is the child of TestWaitAndCloseSecondSignal; it
// does nothing in a normal test run.
func TestWaitAndCloseChild(t *testing.T) {
	if c := os.Getenv("ORCHEO_TEST_WAIT_AND_CLOSE_CHILD"); c != "1" && c != "control" {
		t.Skip("the child of TestWaitAndCloseSecondSignal")
	}
	// As main does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &fakeDaemon{closing: make(chan struct{}), block: true}
	go func() {
		<-d.closing
		fmt.Println("closing")
	}()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	fmt.Println("ready")
	if os.Getenv("ORCHEO_TEST_WAIT_AND_CLOSE_CHILD") == "control" {
		// As a worker's control shutdown: the drain starts with no signal.
		stopped, stopNow := context.WithCancel(ctx)
		stopNow()
		_ = closeWhenDone(stopped, ctx, d, log, "stopping")
	} else {
		_ = waitAndClose(ctx, d, log, "stopping")
	}
	t.Fatal("waitAndClose returned though Close never ends")
}

// TestCloseWhenDoneControlThenSignals: a drain started without a signal (a
// worker's control shutdown) goes on through the first SIGTERM, as
// `systemctl stop` after `orcheo control shutdown` sends, and the second
// exits 1. Before, that first SIGTERM counted as the second signal and
// killed the drain.
func TestCloseWhenDoneControlThenSignals(t *testing.T) {
	t.Parallel()
	cmd, stderr, lines := startCloseChild(t, "control")
	for _, want := range []string{"ready", "closing"} {
		for lines.Scan() && lines.Text() != want {
		}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("the first signal during a control drain ended it: %v; stderr:\n%s", err, stderr.String())
	case <-time.After(time.Second):
	}
	if !strings.Contains(stderr.String(), "still finishing runs in flight") {
		t.Fatalf("the child did not say it goes on; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitsWith1(t, exited, stderr)
}
