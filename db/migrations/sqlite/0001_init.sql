-- orcheo schema, version 1 (SQLite). Ids are UUIDv7 text; times are UTC text
-- of fixed width (2006-01-02T15:04:05.000000Z), so they sort as they compare;
-- JSON is text checked by json_valid.

CREATE TABLE workflows (
    id          TEXT PRIMARY KEY,
    handle      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL DEFAULT '',
    queue       TEXT NOT NULL DEFAULT 'default',
    created_at  TEXT NOT NULL,
    archived_at TEXT
);
CREATE INDEX workflows_created_at_idx ON workflows (created_at DESC, id DESC);

CREATE TABLE workflow_versions (
    id          TEXT    PRIMARY KEY,
    workflow_id TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version > 0),
    definition  TEXT    NOT NULL CHECK (json_valid(definition)),
    created_at  TEXT    NOT NULL,
    UNIQUE (workflow_id, version)
);

CREATE TABLE webhook_triggers (
    workflow_id TEXT PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    config      TEXT NOT NULL CHECK (json_valid(config)),
    updated_at  TEXT NOT NULL
);

-- cron_triggers is written by the cron issue; it is created here so that
-- issue adds no rewrite.
CREATE TABLE cron_triggers (
    workflow_id        TEXT    PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    enabled            INTEGER NOT NULL DEFAULT 1,
    expression         TEXT    NOT NULL,
    timezone           TEXT    NOT NULL DEFAULT 'UTC',
    allow_overlapping  INTEGER NOT NULL DEFAULT 0,
    start_at           TEXT,
    end_at             TEXT,
    catchup            TEXT    NOT NULL DEFAULT 'none',
    last_dispatched_at TEXT,
    updated_at         TEXT    NOT NULL
);

CREATE TABLE runs (
    id               TEXT    PRIMARY KEY,
    workflow_id      TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version_id       TEXT    NOT NULL REFERENCES workflow_versions (id) ON DELETE CASCADE,
    queue            TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    triggered_by     TEXT    NOT NULL,
    input            TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(input)),
    output           TEXT    CHECK (output IS NULL OR json_valid(output)),
    error            TEXT    NOT NULL DEFAULT '',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts > 0),
    idempotency_key  TEXT,
    scheduled_for    TEXT,
    not_before       TEXT,
    lease_until      TEXT,
    worker_id        TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    enqueued_at      TEXT,
    started_at       TEXT,
    completed_at     TEXT
);
-- At most one run per idempotency key and per cron slot of a workflow.
CREATE UNIQUE INDEX runs_workflow_idempotency_key_key ON runs (workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX runs_workflow_scheduled_for_key ON runs (workflow_id, scheduled_for)
    WHERE scheduled_for IS NOT NULL;
-- Listing: per workflow and across workflows by status, newest first.
CREATE INDEX runs_workflow_created_at_idx ON runs (workflow_id, created_at DESC, id DESC);
CREATE INDEX runs_status_created_at_idx ON runs (status, created_at);
CREATE INDEX runs_created_at_idx ON runs (created_at DESC, id DESC);
-- Pending runs whose enqueue failed (ClaimUnenqueuedRuns).
CREATE INDEX runs_unenqueued_idx ON runs (created_at) WHERE status = 'pending' AND enqueued_at IS NULL;
-- Running runs by lease, for the rescuer.
CREATE INDEX runs_lease_until_idx ON runs (lease_until) WHERE status = 'running';

CREATE TABLE run_steps (
    run_id       TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    node         TEXT    NOT NULL,
    node_type    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    output       TEXT    CHECK (output IS NULL OR json_valid(output)),
    error        TEXT    NOT NULL DEFAULT '',
    started_at   TEXT    NOT NULL,
    completed_at TEXT,
    PRIMARY KEY (run_id, attempt, seq)
);

-- run_events is the audit trail: one row per transition.
CREATE TABLE run_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at      TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    message TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX run_events_run_id_idx ON run_events (run_id, id);
