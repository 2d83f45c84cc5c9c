-- orcheo schema, version 1 (PostgreSQL). Ids are UUIDv7 made by the
-- application; times are timestamptz written from the application's clock.

CREATE TABLE workflows (
    id          uuid        PRIMARY KEY,
    handle      text        NOT NULL UNIQUE,
    name        text        NOT NULL DEFAULT '',
    queue       text        NOT NULL DEFAULT 'default',
    created_at  timestamptz NOT NULL,
    archived_at timestamptz
);
CREATE INDEX workflows_created_at_idx ON workflows (created_at DESC, id DESC);

CREATE TABLE workflow_versions (
    id          uuid        PRIMARY KEY,
    workflow_id uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer     NOT NULL CHECK (version > 0),
    definition  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (workflow_id, version)
);

CREATE TABLE webhook_triggers (
    workflow_id uuid        PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    config      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- cron_triggers is written by the cron issue; it is created here so that
-- issue adds no rewrite.
CREATE TABLE cron_triggers (
    workflow_id        uuid        PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    enabled            boolean     NOT NULL DEFAULT true,
    expression         text        NOT NULL,
    timezone           text        NOT NULL DEFAULT 'UTC',
    allow_overlapping  boolean     NOT NULL DEFAULT false,
    start_at           timestamptz,
    end_at             timestamptz,
    catchup            text        NOT NULL DEFAULT 'none',
    last_dispatched_at timestamptz,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE runs (
    id               uuid        PRIMARY KEY,
    workflow_id      uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version_id       uuid        NOT NULL REFERENCES workflow_versions (id) ON DELETE CASCADE,
    queue            text        NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    triggered_by     text        NOT NULL,
    input            jsonb       NOT NULL DEFAULT '{}',
    output           jsonb,
    error            text        NOT NULL DEFAULT '',
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 1 CHECK (max_attempts > 0),
    idempotency_key  text,
    scheduled_for    timestamptz,
    not_before       timestamptz,
    lease_until      timestamptz,
    worker_id        text,
    cancel_requested boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    enqueued_at      timestamptz,
    started_at       timestamptz,
    completed_at     timestamptz
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
    run_id       uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    seq          integer     NOT NULL,
    node         text        NOT NULL,
    node_type    text        NOT NULL,
    status       text        NOT NULL,
    output       jsonb,
    error        text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (run_id, attempt, seq)
);

-- run_events is the audit trail: one row per transition.
CREATE TABLE run_events (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    kind    text        NOT NULL,
    message text        NOT NULL DEFAULT ''
);
CREATE INDEX run_events_run_id_idx ON run_events (run_id, id);
