//! The group writer of creates, updates, new reminders, audit batches and consumer cursors: a thread of its own
//! with a connection of its own.
//!
//! sqlx runs every SQLite connection on a worker thread and crosses threads for each statement and again for its
//! result, and its pool hands a writer whichever connection is free, whose page cache the other connections'
//! commits have made stale. On the two hottest write paths (every create of the API, and the audit consumer's
//! batch of every event) those hand-offs and page re-reads cost more than SQLite's own work, and the writer queue is
//! held meanwhile. The writer therefore owns one connection on one thread: a group of jobs crosses threads once on
//! the way in and once per answer, statements are prepared once, the pages the inserts touch stay cached, and the
//! jobs queued together share one commit. Updates (edits and completions) and reminders set on existing tasks come
//! here as well: beside the creates of a mixed load each was a transaction of its own through the pool, a turn of
//! the writer queue and a commit of another connection. The consumers' cursors come here too, although they are
//! small: SQLite drops a connection's whole page cache when another connection committed since its last
//! transaction, so every cursor stored through the pool cost this connection a re-read of the pages it writes
//! (measured at 64 clients creating tasks: 7 of about 240 groups a second began with an empty cache, from the
//! embedded consumers' cursors).
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

/// The writer connection's page cache, in KiB (SQLite's default is 2,000). Its cache outlives its transactions for
/// as long as no other connection commits (under a create load none does, now that the consumers' cursors come here
/// too; deletes, updates that move reminders, the scheduler's claims and fires, the consumers' other writes and
/// the pruner still write through the pool and empty it), and under load it holds the pages
/// every group writes again: the last page of each user's range in each per-owner index, and the interior pages
/// above them.
/// Measured at 64 clients creating tasks (20 s runs): the writer read 4.4 pages from the file system per create with
/// the default, 2.5 with 4 MiB, 0.75 to 0.9 with 8 MiB, 0.1 with 16 MiB, for a peak memory 12 MB higher than with
/// 8 MiB.
const CACHE_KIB: u32 = 8 * 1024;

/// A write for the writer thread.
#[derive(Debug)]
pub(super) enum Job {
    Create(Create),
    Update(Update),
    Reminder(NewReminder),
    Audit(Audit),
    Cursor(Cursor),
}

impl Job {
    /// The caller stopped waiting for the answer (before the job began, nothing is written).
    fn abandoned(&self) -> bool {
        match self {
            Job::Create(Create { done, .. })
            | Job::Update(Update { done, .. })
            | Job::Reminder(NewReminder { done, .. })
            | Job::Cursor(Cursor { done, .. }) => done.is_closed(),
            Job::Audit(Audit { done, .. }) => done.is_closed(),
        }
    }

    /// Writes the job's rows. The outer error is a failed statement, after which the transaction may no longer be
    /// whole; the inner one is the job's own outcome, having written nothing (an update whose task changed or is
    /// gone). `Ok(Ok(n))`: how many audit rows were new (0 for the other jobs).
    fn write(&self, conn: &Connection) -> Result<Result<u64>> {
        match self {
            Job::Create(c) => {
                TASKS.run(conn, &[&c.task])?;
                REMINDERS.run(conn, &c.reminders.iter().collect::<Vec<_>>())?;
                EVENTS.run(conn, &c.events.iter().collect::<Vec<_>>())?;
                Ok(Ok(0))
            }
            Job::Update(u) => Ok(u.apply(conn)?.map(|()| 0)),
            Job::Reminder(r) => {
                REMINDERS.run(conn, &[&r.row])?;
                Ok(Ok(0))
            }
            Job::Audit(a) => AUDITS.run(conn, &a.rows.iter().collect::<Vec<_>>()).map(Ok),
            Job::Cursor(c) => {
                conn.prepare_cached(super::CURSOR_UPSERT)
                    .and_then(|mut s| s.execute(params_from_iter(&c.values)))
                    .map_err(sqlite_err)?;
                Ok(Ok(0))
            }
        }
    }

    /// Answers the caller; the outcome is committed (or not) whether or not the caller still waits.
    fn answer(self, result: Result<u64>) {
        match self {
            Job::Create(Create { done, .. })
            | Job::Update(Update { done, .. })
            | Job::Reminder(NewReminder { done, .. })
            | Job::Cursor(Cursor { done, .. }) => {
                let _ = done.send(result.map(drop));
            }
            Job::Audit(Audit { done, .. }) => {
                let _ = done.send(result);
            }
        }
    }
}

/// The audit rows of a batch of events, encoded by the caller, and where the count of new rows goes.
pub(super) struct Audit {
    rows: Vec<Vec<Value>>,
    done: oneshot::Sender<Result<u64>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl Audit {
    /// Encodes the audit rows of `events` as the sqlx adapter would bind them.
    pub(super) fn new(
        events: &[&todo_events::Event],
        recorded_at: DateTime<Utc>,
        done: oneshot::Sender<Result<u64>>,
    ) -> Self {
        Audit {
            rows: events
                .iter()
                .map(|e| audit_values(e, recorded_at))
                .collect(),
            done,
        }
    }
}

/// A consumer's cursor, encoded by the caller, and where its answer goes.
#[derive(Debug)]
pub(super) struct Cursor {
    values: [Value; 3],
    done: oneshot::Sender<Result<()>>,
}

impl Cursor {
    /// Encodes the cursor's row as the sqlx adapter would bind it.
    pub(super) fn new(
        consumer: &str,
        seq: i64,
        updated_at: DateTime<Utc>,
        done: oneshot::Sender<Result<()>>,
    ) -> Self {
        Cursor {
            values: [text(consumer), Value::Integer(seq), instant(updated_at)],
            done,
        }
    }
}

/// The rows of one create, encoded by the caller (off the writer thread), and where its answer goes.
pub(super) struct Create {
    task: Vec<Value>,
    reminders: Vec<Vec<Value>>,
    events: Vec<Vec<Value>>,
    done: oneshot::Sender<Result<()>>,
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

/// A reminder set on an existing task, encoded by the caller, and where its answer goes.
#[derive(Debug)]
pub(super) struct NewReminder {
    row: Vec<Value>,
    done: oneshot::Sender<Result<()>>,
}

impl NewReminder {
    /// Encodes the reminder's row as the sqlx adapter would bind it.
    pub(super) fn new(reminder: &todo_domain::Reminder, done: oneshot::Sender<Result<()>>) -> Self {
        NewReminder {
            row: reminder_values(reminder),
            done,
        }
    }
}

/// The replace of one task row with its events, encoded by the caller, and where its answer goes.
pub(super) struct Update {
    /// The replace statement's parameters: the changeable columns, then the id, the owner and the expected version.
    replace: Vec<Value>,
    events: Vec<Vec<Value>>,
    done: oneshot::Sender<Result<()>>,
}

impl std::fmt::Debug for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Update")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Update {
    /// Encodes an update's rows as the sqlx adapter would bind them.
    pub(super) fn new(
        task: &todo_domain::Task,
        expected_version: i64,
        events: &[todo_events::Event],
        done: oneshot::Sender<Result<()>>,
    ) -> Self {
        // The insert's columns, in its order: id, owner, then title to completed_at (the replace's first 15), then
        // created_at and created_ms (never changed), then updated_at and version.
        let mut columns = task_values(task).into_iter();
        let (id, owner) = (columns.next(), columns.next());
        let mut replace: Vec<Value> = columns.by_ref().take(15).collect();
        replace.extend(columns.skip(2));
        replace.extend(id.into_iter().chain(owner));
        replace.push(Value::Integer(expected_version));
        Update {
            replace,
            events: events
                .iter()
                .map(|e| event_values(e, task.updated_at))
                .collect(),
            done,
        }
    }

    /// Replaces the task row and inserts the events. The inner error, when no row has the id, the owner and the
    /// expected version, is the update's alone (a conflict if the task exists, not found if not): it wrote nothing,
    /// and the rest of the group goes on. The outer one is a failed statement.
    fn apply(&self, conn: &Connection) -> Result<Result<()>> {
        let replaced = conn
            .prepare_cached(super::TASK_REPLACE)
            .and_then(|mut s| s.execute(params_from_iter(&self.replace)))
            .map_err(sqlite_err)?;
        if replaced != 1 {
            let exists = conn
                .prepare_cached(super::TASK_EXISTS)
                .and_then(|mut s| s.exists(params_from_iter(&self.replace[17..19])))
                .map_err(sqlite_err)?;
            return Ok(Err(if exists {
                crate::Error::Conflict
            } else {
                crate::Error::NotFound
            }));
        }
        EVENTS.run(conn, &self.events.iter().collect::<Vec<_>>())?;
        Ok(Ok(()))
    }
}

/// One of the store's inserts, as statements of [`INSERT_CHUNKS`](super::INSERT_CHUNKS) rows each: the columns
/// and placeholders of the sqlx statements (`$1`, `$2`, ... bind by position in SQLite as in PostgreSQL).
///
/// Several rows per statement is not only fewer statements: SQLite opens a statement journal for every statement
/// that fires a trigger or may abort halfway, copies into it each page the statement changes, and tells the
/// full-text index, which then writes its pending terms to disk as a segment of their own. One statement for the
/// tasks of a whole group makes that one segment and one copy per group instead of one per create.
struct Insert([String; 4]);

impl Insert {
    fn new(insert: &str, params: usize, row_tail: &str, tail: &str) -> Self {
        Insert(super::INSERT_CHUNKS.map(|n| {
            let rows: Vec<String> = (0..n)
                .map(|i| super::placeholders(1 + i * params, params, row_tail))
                .collect();
            format!("{insert}{}{tail}", rows.join(", "))
        }))
    }

    /// Inserts `rows`, as many per statement as fit; how many rows were inserted (not ignored).
    fn run(&self, conn: &Connection, rows: &[&Vec<Value>]) -> Result<u64> {
        let mut inserted = 0;
        let mut rest = rows;
        while !rest.is_empty() {
            // The last size is 1, so one always fits.
            let size = super::INSERT_CHUNKS
                .iter()
                .position(|&n| n <= rest.len())
                .unwrap_or(super::INSERT_CHUNKS.len() - 1);
            let (chunk, tail) = rest.split_at(super::INSERT_CHUNKS[size]);
            rest = tail;
            let changed = conn
                .prepare_cached(&self.0[size])
                .and_then(|mut s| s.execute(params_from_iter(chunk.iter().copied().flatten())))
                .map_err(sqlite_err)?;
            inserted += changed as u64;
        }
        Ok(inserted)
    }
}

static TASKS: LazyLock<Insert> =
    LazyLock::new(|| Insert::new(super::TASK_INSERT, super::TASK_PARAMS, "", ""));
static REMINDERS: LazyLock<Insert> = LazyLock::new(|| {
    Insert::new(
        super::REMINDER_INSERT,
        super::REMINDER_PARAMS,
        super::REMINDER_TAIL,
        "",
    )
});
static EVENTS: LazyLock<Insert> =
    LazyLock::new(|| Insert::new(super::EVENT_INSERT, super::EVENT_PARAMS, "", ""));
static AUDITS: LazyLock<Insert> = LazyLock::new(|| {
    Insert::new(
        super::AUDIT_INSERT,
        super::AUDIT_PARAMS,
        "",
        " ON CONFLICT (event_id) DO NOTHING",
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

fn audit_values(event: &todo_events::Event, recorded_at: DateTime<Utc>) -> Vec<Value> {
    vec![
        id(event.id()),
        id(event.data().user_id()),
        text(event.event_type().as_str()),
        id(event.data().task_id()),
        text(event.to_json()),
        instant(event.time()),
        instant(recorded_at),
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
    /// The checkpointer of a database file (none for an in-memory database).
    pub(super) checkpoints: Option<super::checkpointer::Checkpoints>,
}

/// Opens the writer's connection and starts its thread, which commits queued jobs in groups until every sender of
/// the queue is gone.
pub(super) fn spawn(target: &Target, shared: Shared, queue: mpsc::Receiver<Job>) -> Result<()> {
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
    // Four statement sizes for each of four inserts, the savepoints', the cursor's and the update's two.
    conn.set_prepared_statement_cache_capacity(24);
    // Statement journals in memory: a statement inserting a group's rows journals more than the 64 KiB after
    // which SQLite would otherwise spill to a temporary file.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{CACHE_KIB};"
    ))
    .map_err(sqlite_err)?;
    if !target.memory {
        // The checkpointer thread checkpoints instead, off this thread's path.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(sqlite_err)?;
    }
    std::thread::Builder::new()
        .name("todo-sqlite-writer".into())
        .spawn(move || run(conn, shared, queue))
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    Ok(())
}

fn run(mut conn: Connection, shared: Shared, mut queue: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        fill(&mut group, &mut queue);
        // The group waits its turn among the store's other writers; jobs queued meanwhile join it.
        let gate = shared.writer.blocking_lock();
        fill(&mut group, &mut queue);
        let results = commit_group(&mut conn, &group);
        // Wake-ups before answers: a caller's write has woken, when it returns, every wake-up armed before it.
        let (mut events, mut scheduled) = (false, false);
        for (job, result) in group.iter().zip(&results) {
            match (job, result) {
                (Job::Create(create), Ok(_)) => {
                    events |= !create.events.is_empty();
                    scheduled |= !create.reminders.is_empty();
                }
                (Job::Update(update), Ok(_)) => events |= !update.events.is_empty(),
                (Job::Reminder(_), Ok(_)) => scheduled = true,
                _ => {}
            }
        }
        if events {
            shared.outbox.notify_waiters();
        }
        if scheduled {
            shared.reminders.notify_waiters();
        }
        for (job, result) in group.drain(..).zip(results) {
            job.answer(result);
        }
        // Still holding the queue: the checkpointer may want this thread to start the log over.
        if let Some(checkpoints) = &shared.checkpoints {
            checkpoints.committed(&conn);
        }
        drop(gate);
    }
}

fn fill(group: &mut Vec<Job>, queue: &mut mpsc::Receiver<Job>) {
    while group.len() < MAX_GROUP {
        let Ok(job) = queue.try_recv() else { break };
        group.push(job);
    }
}

/// Why a job of a group failed: on its own (rolled back to its savepoint) or with the whole group.
enum GroupError {
    Job(crate::Error),
    Group(crate::Error),
}

/// One transaction for the group; one result per job, in order.
///
/// The jobs are inserted with nothing between them: a savepoint per create would make the full-text index write a
/// segment of its own for every create (FTS5 flushes its pending terms at each savepoint), and the pages of the
/// savepoints' journal. An update whose task changed or is gone fails alone without that: it wrote nothing. Any
/// other job fails only in exceptional cases (a duplicate id, a full disk); then the whole transaction rolls back
/// and the group runs again with a savepoint per job, so the failing job fails alone (an audit batch, all its rows
/// or none).
fn commit_group(conn: &mut Connection, group: &[Job]) -> Vec<Result<u64>> {
    match commit_together(conn, group) {
        Ok(results) => results,
        Err(_) => commit_one_by_one(conn, group),
    }
}

/// The group in one transaction without savepoints; an error rolls all of it back. The creates' rows go in
/// together, several per statement, in the order of the group (so their events keep that order in the outbox); then
/// the updates, new reminders, audit batches and cursors, in the order of the group.
fn commit_together(conn: &mut Connection, group: &[Job]) -> Result<Vec<Result<u64>>> {
    let live: Vec<bool> = group.iter().map(|job| !job.abandoned()).collect();
    let creates = || {
        group.iter().zip(&live).filter_map(|(job, live)| match job {
            Job::Create(c) if *live => Some(c),
            _ => None,
        })
    };
    let tasks: Vec<&Vec<Value>> = creates().map(|c| &c.task).collect();
    let reminders: Vec<&Vec<Value>> = creates().flat_map(|c| &c.reminders).collect();
    let events: Vec<&Vec<Value>> = creates().flat_map(|c| &c.events).collect();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    TASKS.run(&tx, &tasks)?;
    REMINDERS.run(&tx, &reminders)?;
    EVENTS.run(&tx, &events)?;
    let mut results = Vec::with_capacity(group.len());
    for (job, live) in group.iter().zip(live) {
        results.push(match job {
            _ if !live => Err(abandoned()),
            // Their rows went in above, with the other creates'.
            Job::Create(_) => Ok(0),
            _ => job.write(&tx)?,
        });
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(results)
}

/// The caller gave up before its job began: as with a transaction of its own, nothing is written.
fn abandoned() -> crate::Error {
    crate::Error::Unavailable("the write was abandoned".into())
}

/// The group in one transaction, one savepoint per job.
fn commit_one_by_one(conn: &mut Connection, group: &[Job]) -> Vec<Result<u64>> {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&sqlite_err(e), group.len()),
    };
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        if job.abandoned() {
            results.push(Err(abandoned()));
            continue;
        }
        match insert_in_savepoint(&tx, job) {
            Ok(inserted) => results.push(Ok(inserted)),
            Err(GroupError::Job(e)) => results.push(Err(e)),
            // Dropping the transaction rolls it back.
            Err(GroupError::Group(e)) => return fail_all(&e, group.len()),
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(&sqlite_err(e), group.len()),
    }
}

/// A job's rows under a savepoint: a failing job rolls back to it and fails alone.
fn insert_in_savepoint(conn: &Connection, job: &Job) -> std::result::Result<u64, GroupError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
    };
    run("SAVEPOINT job").map_err(|e| GroupError::Group(sqlite_err(e)))?;
    let e = match job.write(conn) {
        Ok(outcome) => {
            run("RELEASE job").map_err(|e| GroupError::Group(sqlite_err(e)))?;
            return outcome.map_err(GroupError::Job);
        }
        Err(e) => e,
    };
    // Fails when the error ended the whole transaction (I/O error, full disk): the group fails then.
    run("ROLLBACK TO job")
        .and_then(|()| run("RELEASE job"))
        .map_err(|_| GroupError::Group(copy_error(&e)))?;
    Err(GroupError::Job(e))
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

/// The same failure for every job of a group.
fn fail_all(error: &crate::Error, n: usize) -> Vec<Result<u64>> {
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
