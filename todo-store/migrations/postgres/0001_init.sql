-- Tasks, reminders, audit log, outbox, consumer cursors and processed markers (PostgreSQL).
CREATE TABLE tasks (
    id             UUID PRIMARY KEY,
    owner          UUID NOT NULL,
    title          TEXT NOT NULL,
    title_key      TEXT COLLATE "C" NOT NULL,
    description    TEXT,
    priority       INTEGER NOT NULL,
    tags           TEXT NOT NULL DEFAULT '[]',
    due_date       DATE,
    due_time       TIME,
    time_zone      TEXT NOT NULL DEFAULT 'UTC',
    due_ms         BIGINT NOT NULL,
    recurrence     TEXT,
    series_id      UUID,
    series_index   INTEGER,
    reminder_leads TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL,
    completed_at   TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    created_ms     BIGINT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    version        BIGINT NOT NULL,
    search         TSVECTOR GENERATED ALWAYS AS
                   (to_tsvector('simple', title || ' ' || coalesce(description, ''))) STORED
);
CREATE INDEX tasks_owner_created ON tasks (owner, created_ms, id);
CREATE INDEX tasks_owner_due ON tasks (owner, due_ms, id);
CREATE INDEX tasks_owner_priority ON tasks (owner, priority, id);
CREATE INDEX tasks_owner_title ON tasks (owner, title_key, id);
CREATE INDEX tasks_search ON tasks USING GIN (search);

CREATE TABLE reminders (
    id            UUID PRIMARY KEY,
    task_id       UUID NOT NULL,
    owner         UUID NOT NULL,
    lead_seconds  BIGINT,
    remind_at     TIMESTAMPTZ NOT NULL,
    remind_ms     BIGINT NOT NULL,
    status        TEXT NOT NULL,
    fired_at      TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    claimed_until BIGINT,
    claim_token   UUID,
    emitted       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reminders_due ON reminders (status, emitted, remind_ms);
CREATE INDEX reminders_task ON reminders (task_id);

CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    event_id    UUID NOT NULL UNIQUE,
    owner       UUID NOT NULL,
    event_type  TEXT NOT NULL,
    task_id     UUID,
    payload     TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_owner ON audit_log (owner, seq);

CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID,
    topic        TEXT NOT NULL,
    key          BYTEA,
    headers      TEXT NOT NULL DEFAULT '[]',
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_topic ON outbox (topic, seq);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE consumer_cursors (
    consumer   TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
