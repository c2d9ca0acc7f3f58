//! The group writer of creates: a thread of its own with a connection of its own.
//!
//! sqlx runs every SQLite connection on a worker thread and crosses threads for each statement and again for its
//! result, and its pool hands a writer whichever connection is free, whose page cache the other connections'
//! commits have made stale. On this path (every create of the API) those hand-offs and page re-reads cost more than
//! SQLite's own work. The writer therefore owns one connection on one thread: a group of creates crosses threads once
//! on the way in and once per answer, statements are prepared once, and the pages the inserts touch stay cached.
//!
//! Values are written exactly as the sqlx adapter writes them (ids as 16-byte blobs, instants as RFC 3339 text,
//! dates and times as ISO text), so every other statement of the store reads them unchanged; a test compares the
//! rows of both paths column by column.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::MAX_GROUP;
use crate::Result;
use crate::rows;

/// The rows of one create, encoded by the caller (off the writer thread), and where its answer goes.
pub(super) struct Create {
    task: Vec<Value>,
    reminders: Vec<Vec<Value>>,
    events: Vec<Vec<Value>>,
    pub(super) done: oneshot::Sender<Result<()>>,
}

impl std::fmt::Debug for Create {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Create")
            .field("reminders", &self.reminders.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Create {
    /// Encodes a create's rows as the sqlx adapter would bind them.
    pub(super) fn new(
        task: &todo_domain::Task,
        reminders: &[todo_domain::Reminder],
        events: &[todo_events::Event],
        done: oneshot::Sender<Result<()>>,
    ) -> Self {
        Create {
            task: task_values(task),
            reminders: reminders.iter().map(reminder_values).collect(),
            events: events
                .iter()
                .map(|e| event_values(e, task.updated_at))
                .collect(),
            done,
        }
    }
}

/// The inserts of a create: the columns and placeholders the sqlx statements of the store use (`$1`, `$2`, ...
/// bind by position in SQLite as in PostgreSQL).
static TASK_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        super::TASK_INSERT,
        super::placeholders(1, super::TASK_PARAMS, "")
    )
});
static REMINDER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        super::REMINDER_INSERT,
        super::placeholders(1, super::REMINDER_PARAMS, super::REMINDER_TAIL)
    )
});
static EVENT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{}",
        super::EVENT_INSERT,
        super::placeholders(1, super::EVENT_PARAMS, "")
    )
});

fn id(u: uuid::Uuid) -> Value {
    Value::Blob(u.as_bytes().to_vec())
}

fn instant(t: DateTime<Utc>) -> Value {
    Value::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

fn task_values(t: &todo_domain::Task) -> Vec<Value> {
    let c = rows::task_columns(t);
    vec![
        id(c.id),
        id(c.owner),
        text(c.title),
        text(c.title_key),
        or_null(c.description, text),
        Value::Integer(c.priority.into()),
        text(c.tags),
        or_null(c.due_date, |d| text(d.format("%F").to_string())),
        or_null(c.due_time, |t| text(t.format("%T%.f").to_string())),
        text(c.time_zone),
        Value::Integer(c.due_ms),
        or_null(c.recurrence, text),
        or_null(c.series_id, id),
        or_null(c.series_index, |i| Value::Integer(i.into())),
        text(c.reminder_leads),
        text(c.status),
        or_null(c.completed_at, instant),
        instant(c.created_at),
        Value::Integer(c.created_ms),
        instant(c.updated_at),
        Value::Integer(c.version),
    ]
}

fn reminder_values(r: &todo_domain::Reminder) -> Vec<Value> {
    vec![
        id(r.id.as_uuid()),
        id(r.task_id.as_uuid()),
        id(r.owner.as_uuid()),
        or_null(
            r.lead.as_ref().map(todo_domain::LeadTime::seconds),
            Value::Integer,
        ),
        instant(r.remind_at),
        Value::Integer(r.remind_at.timestamp_millis()),
        text(r.status.as_str()),
        or_null(r.fired_at, instant),
        instant(r.created_at),
    ]
}

fn event_values(event: &todo_events::Event, now: DateTime<Utc>) -> Vec<Value> {
    let record = todo_events::binding::encode(event, todo_events::binding::Mode::Structured);
    vec![
        id(event.id()),
        text(event.topic().name()),
        or_null(record.key, Value::Blob),
        text(rows::headers_to_json(&record.headers)),
        Value::Blob(record.value),
        instant(now),
    ]
}

/// Where the writer's connection opens: the database the pool opened (its file, or the name of its shared
/// in-memory database), and how long it waits for another process's write lock.
pub(super) struct Target {
    pub(super) filename: String,
    pub(super) memory: bool,
    pub(super) busy_timeout: std::time::Duration,
}

/// What the writer thread shares with the store.
pub(super) struct Shared {
    pub(super) writer: Arc<Mutex<()>>,
    pub(super) outbox: Arc<Notify>,
    pub(super) reminders: Arc<Notify>,
}

/// Opens the writer's connection and starts its thread, which commits queued creates in groups until every sender
/// of the queue is gone.
pub(super) fn spawn(target: &Target, shared: Shared, queue: mpsc::Receiver<Create>) -> Result<()> {
    // The flags the sqlx driver opens with, so both name the same database.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if target.memory {
        flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = Connection::open_with_flags(&target.filename, flags)
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    conn.busy_timeout(target.busy_timeout).map_err(sqlite_err)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        .map_err(sqlite_err)?;
    std::thread::Builder::new()
        .name("todo-sqlite-writer".into())
        .spawn(move || run(conn, shared, queue))
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    Ok(())
}

fn run(mut conn: Connection, shared: Shared, mut queue: mpsc::Receiver<Create>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        fill(&mut group, &mut queue);
        // The group waits its turn among the store's other writers; creates queued meanwhile join it.
        let gate = shared.writer.blocking_lock();
        fill(&mut group, &mut queue);
        let results = commit_group(&mut conn, &group);
        drop(gate);
        let mut events = false;
        let mut scheduled = false;
        for (create, result) in group.drain(..).zip(results) {
            if result.is_ok() {
                events |= !create.events.is_empty();
                scheduled |= !create.reminders.is_empty();
            }
            // The caller may have given up waiting; the outcome is committed either way.
            let _ = create.done.send(result);
        }
        if events {
            shared.outbox.notify_waiters();
        }
        if scheduled {
            shared.reminders.notify_waiters();
        }
    }
}

fn fill(group: &mut Vec<Create>, queue: &mut mpsc::Receiver<Create>) {
    while group.len() < MAX_GROUP {
        let Ok(create) = queue.try_recv() else { break };
        group.push(create);
    }
}

/// Why a create of a group failed: on its own (rolled back to its savepoint) or with the whole group.
enum GroupError {
    Create(crate::Error),
    Group(crate::Error),
}

/// One transaction for the group; one result per create, in order.
///
/// The creates are inserted one after the other with nothing between them: a savepoint per create would make the
/// full-text index write a segment of its own for every create (FTS5 flushes its pending terms at each savepoint's
/// release), and the pages of the savepoints' journal. A create fails only in exceptional cases (a duplicate id,
/// a full disk); then the whole transaction rolls back and the group runs again with a savepoint per create, so
/// the failing create fails alone.
fn commit_group(conn: &mut Connection, group: &[Create]) -> Vec<Result<()>> {
    match commit_together(conn, group) {
        Ok(results) => results,
        Err(_) => commit_one_by_one(conn, group),
    }
}

/// The group in one transaction without savepoints; an error rolls all of it back.
fn commit_together(conn: &mut Connection, group: &[Create]) -> Result<Vec<Result<()>>> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let mut results = Vec::with_capacity(group.len());
    for create in group {
        if create.done.is_closed() {
            results.push(Err(abandoned()));
        } else {
            insert_rows(&tx, create)?;
            results.push(Ok(()));
        }
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(results)
}

/// The caller gave up before its create began: as with a transaction of its own, nothing is written.
fn abandoned() -> crate::Error {
    crate::Error::Unavailable("the create was abandoned".into())
}

/// The group in one transaction, one savepoint per create.
fn commit_one_by_one(conn: &mut Connection, group: &[Create]) -> Vec<Result<()>> {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&sqlite_err(e), group.len()),
    };
    let mut results = Vec::with_capacity(group.len());
    for create in group {
        if create.done.is_closed() {
            results.push(Err(abandoned()));
            continue;
        }
        match insert_in_savepoint(&tx, create) {
            Ok(()) => results.push(Ok(())),
            Err(GroupError::Create(e)) => results.push(Err(e)),
            // Dropping the transaction rolls it back.
            Err(GroupError::Group(e)) => return fail_all(&e, group.len()),
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(&sqlite_err(e), group.len()),
    }
}

/// A create's rows under a savepoint: a failing create rolls back to it and fails alone.
fn insert_in_savepoint(conn: &Connection, create: &Create) -> std::result::Result<(), GroupError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
    };
    run("SAVEPOINT create_task").map_err(|e| GroupError::Group(sqlite_err(e)))?;
    let inserted = insert_rows(conn, create);
    let Err(e) = inserted else {
        return run("RELEASE create_task").map_err(|e| GroupError::Group(sqlite_err(e)));
    };
    // Fails when the error ended the whole transaction (I/O error, full disk): the group fails then.
    run("ROLLBACK TO create_task")
        .and_then(|()| run("RELEASE create_task"))
        .map_err(|_| GroupError::Group(copy_error(&e)))?;
    Err(GroupError::Create(e))
}

fn insert_rows(conn: &Connection, create: &Create) -> Result<()> {
    let insert = |sql: &str, values: &[Value]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(params_from_iter(values)))
            .map(drop)
            .map_err(sqlite_err)
    };
    insert(&TASK_SQL, &create.task)?;
    for r in &create.reminders {
        insert(&REMINDER_SQL, r)?;
    }
    for e in &create.events {
        insert(&EVENT_SQL, e)?;
    }
    Ok(())
}

/// The store's error for a SQLite failure, as [`Error::from_sqlx`](crate::Error) maps the same codes: a duplicate
/// key is a conflict, a lock still held after the busy timeout an outage.
pub(super) fn sqlite_err(e: rusqlite::Error) -> crate::Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(failure, _) = &e {
        match failure.code {
            ErrorCode::ConstraintViolation
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return crate::Error::Conflict;
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return crate::Error::Unavailable(Box::new(e));
            }
            _ => {}
        }
    }
    crate::Error::Backend {
        backend: "sqlite",
        source: Box::new(e),
    }
}

/// The same failure for every create of a group.
fn fail_all(error: &crate::Error, n: usize) -> Vec<Result<()>> {
    (0..n).map(|_| Err(copy_error(error))).collect()
}

/// An error of the same kind and message (sources are not cloneable).
fn copy_error(error: &crate::Error) -> crate::Error {
    use crate::Error as E;
    fn text(e: &(dyn std::error::Error + 'static)) -> crate::BoxError {
        e.to_string().into()
    }
    match error {
        E::NotFound => E::NotFound,
        E::Conflict => E::Conflict,
        E::InvalidCursor => E::InvalidCursor,
        E::Unavailable(source) => E::Unavailable(text(source.as_ref())),
        E::Corrupt(what) => E::Corrupt(what.clone()),
        E::Backend { backend, source } => E::Backend {
            backend,
            source: text(source.as_ref()),
        },
    }
}
