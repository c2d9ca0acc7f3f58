-- Tasks, reminders, audit log, outbox, consumer cursors and processed markers (SQLite).
CREATE TABLE tasks (
    id             BLOB PRIMARY KEY,
    owner          BLOB NOT NULL,
    title          TEXT NOT NULL,
    title_key      TEXT NOT NULL,
    description    TEXT,
    priority       INTEGER NOT NULL,
    tags           TEXT NOT NULL DEFAULT '[]',
    due_date       TEXT,
    due_time       TEXT,
    time_zone      TEXT NOT NULL DEFAULT 'UTC',
    due_ms         INTEGER NOT NULL,
    recurrence     TEXT,
    series_id      BLOB,
    series_index   INTEGER,
    reminder_leads TEXT NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL,
    completed_at   TEXT,
    created_at     TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX tasks_owner_created ON tasks (owner, created_ms, id);
CREATE INDEX tasks_owner_due ON tasks (owner, due_ms, id);
CREATE INDEX tasks_owner_priority ON tasks (owner, priority, id);
CREATE INDEX tasks_owner_title ON tasks (owner, title_key, id);

-- Full-text index keyed by the rowid of the task row (deletes and updates by rowid, never a scan).
CREATE VIRTUAL TABLE tasks_fts USING fts5 (title, description, tokenize = 'unicode61');

CREATE TABLE reminders (
    id            BLOB PRIMARY KEY,
    task_id       BLOB NOT NULL,
    owner         BLOB NOT NULL,
    lead_seconds  INTEGER,
    remind_at     TEXT NOT NULL,
    remind_ms     INTEGER NOT NULL,
    status        TEXT NOT NULL,
    fired_at      TEXT,
    created_at    TEXT NOT NULL,
    claimed_until INTEGER,
    claim_token   BLOB,
    emitted       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reminders_due ON reminders (status, emitted, remind_ms);
CREATE INDEX reminders_task ON reminders (task_id);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    BLOB NOT NULL UNIQUE,
    owner       BLOB NOT NULL,
    event_type  TEXT NOT NULL,
    task_id     BLOB,
    payload     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX audit_owner ON audit_log (owner, seq);

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     BLOB,
    topic        TEXT NOT NULL,
    key          BLOB,
    headers      TEXT NOT NULL DEFAULT '[]',
    payload      BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_topic ON outbox (topic, seq);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE consumer_cursors (
    consumer   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     BLOB NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
