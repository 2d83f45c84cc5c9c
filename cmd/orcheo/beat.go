package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/schedule"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
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

// dispatcher is the API side of cron: it fires due slots on the store.
func (a *apiMain) dispatcher() *schedule.Dispatcher {
	return &schedule.Dispatcher{
		Cron: a.store.Cron, Workflows: a.store.Workflows, Submitter: a.submitter,
		Seconds: a.cfg.Cron.Seconds, Grace: a.cfg.Cron.Grace,
		Logger: a.log.WithField("component", "cron"),
	}
}

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
	rc, err := rdb.Open(c.cfg.RedisURL)
	if err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "REDIS_URL: %v", err)
	}
	defer rc.Close()
	holder := beatOwner()
	elector := leadership.NewElector(leadership.Config{
		Store: rdb.NewLeaders(rc, c.cfg.RedisPrefix), Name: "beat", Holder: holder,
		Logger: log.WithField("component", "elector"),
	})
	b := beat.New(beat.Config{
		API:            client.New(c.cfg.URL, c.cfg.Token),
		Scheduler:      c.cfg.Cron.scheduler(),
		Interval:       c.cfg.Cron.Interval,
		ReloadInterval: c.cfg.Cron.ReloadInterval,
		Elector:        elector,
		Logger:         log.WithField("component", "beat"),
	})
	var health *http.Server
	if c.cfg.Cron.HealthAddr != "" {
		m := newProcessMetrics()
		m.observeBeat(b)
		status := func() any { return b.Status() }
		if health, err = serveStatus(c.cfg.Cron.HealthAddr, m, status, log.WithField("component", "beat")); err != nil {
			return err
		}
	}
	log.WithFields(logrus.Fields{"api": c.cfg.URL, "interval": c.cfg.Cron.Interval.String(), "holder": holder}).Info("beat starting")
	elector.Start(context.Background())
	b.Start(ctx)
	<-ctx.Done()
	log.Info("beat shutting down")
	// The dispatch in flight finishes before the lease is resigned, so a
	// standby never dispatches beside it.
	b.Stop()
	elector.Stop()
	if health != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = health.Shutdown(sctx)
	}
	return nil
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

// devBeatAPI is the beat's view of orcheo inside orcheo dev: the store and
// the dispatcher directly, without HTTP.
type devBeatAPI struct {
	orcheo.CronDispatcher
	cron orcheo.CronService
}

func (a devBeatAPI) FindCronTriggers(ctx context.Context) ([]*orcheo.CronTrigger, error) {
	return a.cron.FindCronTriggers(ctx)
}

// startDevBeat runs the beat inside orcheo dev: one beat, no lease.
func startDevBeat(ctx context.Context, a *apiMain, log *logrus.Logger) *beat.Scheduler {
	b := beat.New(beat.Config{
		API:            devBeatAPI{CronDispatcher: a.server.CronDispatcher, cron: a.store.Cron},
		Scheduler:      a.cfg.Cron.scheduler(),
		Interval:       a.cfg.Cron.Interval,
		ReloadInterval: a.cfg.Cron.ReloadInterval,
		Logger:         log.WithField("component", "beat"),
	})
	b.Start(ctx)
	return b
}
