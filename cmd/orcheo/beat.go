package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/schedule"
)

// CronConfig is the part of Config about cron triggers and the beat.
type CronConfig struct {
	Interval       time.Duration // CRON_DISPATCH_INTERVAL
	ReloadInterval time.Duration // ORCHEO_CRON_RELOAD_INTERVAL
	Grace          time.Duration // ORCHEO_CRON_GRACE
	Seconds        bool          // ORCHEO_CRON_SECONDS (tests and development)
	HealthAddr     string        // ORCHEO_BEAT_HEALTH_ADDR
}

func defaultCronConfig() CronConfig {
	return CronConfig{
		Interval:       beat.IntervalDefault,
		ReloadInterval: beat.ReloadIntervalDefault,
		Grace:          schedule.GraceDefault,
	}
}

// fromEnv reads the cron variables; ConfigFromEnv calls it with its
// duration parser so errors are reported together.
func (c *CronConfig) fromEnv(getenv func(string) string, duration func(string, *time.Duration), errs *[]string) {
	duration("CRON_DISPATCH_INTERVAL", &c.Interval)
	duration("ORCHEO_CRON_RELOAD_INTERVAL", &c.ReloadInterval)
	duration("ORCHEO_CRON_GRACE", &c.Grace)
	if v := strings.TrimSpace(getenv("ORCHEO_CRON_SECONDS")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			*errs = append(*errs, fmt.Sprintf("ORCHEO_CRON_SECONDS=%q: want true or false", v))
		}
		c.Seconds = b
	}
	if v := strings.TrimSpace(getenv("ORCHEO_BEAT_HEALTH_ADDR")); v != "" {
		c.HealthAddr = v
	}
}

// scheduler is the cron maths every process must share.
func (c CronConfig) scheduler() schedule.Scheduler { return schedule.Scheduler{Seconds: c.Seconds} }

// beatCommand runs the cron beat: it asks the API at ORCHEO_URL to
// dispatch due cron slots, at each slot and every CRON_DISPATCH_INTERVAL.
// Several may run; the "beat" leadership (tasks/leadership, a lease in
// Redis at <prefix>:leader:beat) makes one active.
type beatCommand struct {
	*env
	cfg Config
}

func (c *beatCommand) Run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("beat")
	fs.StringVar(&c.cfg.Cron.HealthAddr, "health-addr", c.cfg.Cron.HealthAddr, "serve /healthz and /metrics on this address (ORCHEO_BEAT_HEALTH_ADDR)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if c.cfg.Token == "" {
		return orcheo.Errorf(orcheo.EINVALID, "ORCHEO_API_TOKEN (or ORCHEO_TOKEN) is not set: the beat needs it to call %s", c.cfg.URL)
	}
	log, err := newLogger(c.cfg, c.stderr)
	if err != nil {
		return err
	}
	m := &beatMain{cfg: c.cfg, log: log}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	return waitAndClose(ctx, m, log, "beat shutting down")
}

// beatOwner identifies this beat in the leadership's lease: host, pid and
// a random part, so a restarted beat never mistakes an old lease for its
// own.
func beatOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}
