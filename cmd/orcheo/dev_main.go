package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/alicebob/miniredis/v2"
	"github.com/sirupsen/logrus"
)

// devMain is orcheo dev: an in-process Redis, then the apiMain, a
// workerMain and a beatMain on embedded defaults (a SQLite file in the
// data directory unless ORCHEO_DATABASE_URL is set). The worker and the
// beat share the API's store, Redis client, submitter and metrics, so the
// process has one of each. Close stops the beat, the worker (draining its
// runs), the API, then the in-process Redis.
type devMain struct {
	cfg Config
	log *logrus.Logger

	dbPath string // the SQLite file Run chose; "" with ORCHEO_DATABASE_URL
	redis  *miniredis.Miniredis
	api    *apiMain
	worker *workerMain
	beat   *beatMain

	closeOnce sync.Once
	closeErr  error
}

// Run starts the in-process Redis, the API, the worker and the beat.
// Pending runs survive a restart: the in-process Redis starts empty, so
// Run publishes every pending run again, and it installs the examples. On
// error the caller still calls Close.
func (m *devMain) Run(ctx context.Context) error {
	if err := m.embeddedDefaults(); err != nil {
		return err
	}
	m.redis = miniredis.NewMiniRedis()
	if err := m.redis.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start in-process redis: %w", err)
	}
	m.cfg.RedisURL = "redis://" + m.redis.Addr() + "/0"
	// The in-process Redis has nothing worth a result backend's round trips.
	m.cfg.ResultBackend = "none"
	// The worker consumes on the API's client: its pool has room for the
	// consumers' blocking takes, as a worker's own has.
	m.api = &apiMain{cfg: m.cfg, log: m.log, consumers: max(len(m.cfg.Queues), 1)}
	if err := m.api.Run(ctx); err != nil {
		return err
	}
	m.worker = &workerMain{cfg: m.cfg, log: m.log, api: m.api}
	if err := m.worker.Run(ctx); err != nil {
		return err
	}
	if err := requeuePending(ctx, m.api.store.Runs, m.api.submitter, m.log); err != nil {
		return err
	}
	if err := installExamples(ctx, m.api.store.Workflows, m.api.store.Triggers); err != nil {
		return err
	}
	m.beat = &beatMain{cfg: m.cfg, log: m.log, api: m.api}
	return m.beat.Run(ctx)
}

// embeddedDefaults points m.cfg at the data directory: the SQLite file
// unless ORCHEO_DATABASE_URL is set, and the key that seals webhook
// secrets unless one is given, made the first time, so that dev needs no
// setup and a restart opens what the last session sealed. dev serves no
// pprof.
func (m *devMain) embeddedDefaults() error {
	m.cfg.PprofAddr = ""
	if m.cfg.DatabaseURL != "" && (m.cfg.SecretsKey != "" || m.cfg.SecretsKeyFile != "") {
		return nil
	}
	dir, err := m.cfg.dataDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if m.cfg.DatabaseURL == "" {
		m.dbPath = filepath.Join(dir, "orcheo.db")
		m.cfg.DatabaseURL = "sqlite:" + m.dbPath
	}
	if m.cfg.SecretsKey == "" && m.cfg.SecretsKeyFile == "" {
		if m.cfg.SecretsKeyFile, err = devSecretsKey(dir); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the beat, then the worker (it drains its runs through the
// API's submitter), then the API and last the in-process Redis; only once.
func (m *devMain) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *devMain) close() error {
	var errs closeErrors
	if m.beat != nil {
		errs.add(m.beat.Close())
	}
	if m.worker != nil {
		errs.add(m.worker.Close())
	}
	if m.api != nil {
		errs.add(m.api.Close())
	}
	if m.redis != nil {
		m.redis.Close()
	}
	return errs.first
}
