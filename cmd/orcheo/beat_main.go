package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/orcheo/orcheo"
	"github.com/orcheo/orcheo/beat"
	"github.com/orcheo/orcheo/client"
	"github.com/orcheo/orcheo/tasks"
	"github.com/orcheo/orcheo/tasks/leadership"
	"github.com/orcheo/orcheo/tasks/rdb"
	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// beatMain is the beat process: the Redis client its elector's lease lives
// on, the "beat" elector, the beat, and its health and metrics port. Run
// returns once the beat runs; Close stops the beat before its elector, so
// the dispatch in flight finishes before the lease is resigned and a
// standby never dispatches beside it.
type beatMain struct {
	cfg Config
	log *logrus.Logger
	// api, if set, is the apiMain of orcheo dev: the beat calls its store
	// and dispatcher directly instead of the API over HTTP, runs alone
	// (no elector, no Redis client of its own) and is counted in its
	// metrics rather than serving a health port.
	api *apiMain

	redis   redis.UniversalClient
	elector *leadership.Elector
	beat    *beat.Scheduler
	health  *http.Server

	closeOnce sync.Once
	closeErr  error
}

// Run starts the beat. On error the caller still calls Close.
func (m *beatMain) Run(ctx context.Context) error {
	if m.api != nil {
		m.beat = m.newBeat(devBeatAPI{CronDispatcher: m.api.server.CronDispatcher, cron: m.api.store.Cron}, m.api.server.Changes)
		m.api.metrics.observeBeat(m.beat)
		m.beat.Start(ctx)
		return nil
	}
	var err error
	if m.redis, err = rdb.Open(m.cfg.RedisURL); err != nil {
		return orcheo.Errorf(orcheo.EINVALID, "REDIS_URL: %v", err)
	}
	holder := beatOwner()
	m.elector = leadership.NewElector(leadership.Config{
		Store: rdb.NewLeaders(m.redis, m.cfg.RedisPrefix), Name: "beat", Holder: holder,
		Logger: m.log.WithField("component", "elector"),
	})
	// The API publishes every change of a trigger on the change feed; the
	// beat hears it on the elector's client and reloads at once.
	m.beat = m.newBeat(client.New(m.cfg.URL, m.cfg.Token), tasks.NewChangeFeed(m.redis, m.cfg.RedisPrefix, m.log))
	if m.cfg.Cron.HealthAddr != "" {
		pm := newProcessMetrics()
		pm.observeBeat(m.beat)
		if m.health, err = serveStatus(m.cfg.Cron.HealthAddr, pm, m.beatChecks(holder), m.log.WithField("component", "beat")); err != nil {
			return err
		}
	}
	m.log.WithFields(logrus.Fields{"api": m.cfg.URL, "interval": m.cfg.Cron.Interval.String(), "holder": holder}).Info("beat starting")
	// The elector outlives ctx (a signal) until Close resigns, after the
	// beat has stopped.
	m.elector.Start(context.Background())
	m.beat.Start(ctx)
	return nil
}

// newBeat builds the beat on api; it follows m.elector (nil: always
// active) and reloads its triggers on each change heard on changes.
func (m *beatMain) newBeat(api beat.API, changes orcheo.ChangeFeed) *beat.Scheduler {
	return beat.New(beat.Config{
		API:            api,
		Scheduler:      m.cfg.Cron.scheduler(),
		Interval:       m.cfg.Cron.Interval,
		ReloadInterval: m.cfg.Cron.ReloadInterval,
		Changes:        changes,
		Elector:        m.elector,
		Logger:         m.log.WithField("component", "beat"),
	})
}

// Close stops the beat, then its elector (resigning the lease), the
// health port and the Redis client; only what Run started, only once.
func (m *beatMain) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *beatMain) close() error {
	var errs closeErrors
	if m.beat != nil {
		m.beat.Stop()
	}
	if m.elector != nil {
		m.elector.Stop()
	}
	if m.health != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs.add(m.health.Shutdown(ctx))
		cancel()
	}
	if m.redis != nil { // after the elector, which resigns on it
		errs.add(m.redis.Close())
	}
	return errs.first
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
