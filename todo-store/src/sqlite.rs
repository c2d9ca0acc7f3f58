//! The SQLite adapter: the embedded mode's database.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::Result;

mod checkpointer;
mod writer;

/// Where the SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    location: Location,
    /// Pool size (one writer at a time; readers in parallel under WAL). A file's default is twice the cores the
    /// process may use, from 4 to 16.
    pub max_connections: u32,
    /// How long a writer waits for the lock before the operation fails.
    pub busy_timeout: Duration,
    /// Log size, in pages, from which the checkpointer starts the write-ahead log over.
    wal_restart_pages: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    Memory(String),
}

impl SqliteConfig {
    /// A database file (created when missing), in WAL mode.
    pub fn file(path: impl AsRef<Path>) -> Self {
        SqliteConfig {
            location: Location::File(path.as_ref().to_path_buf()),
            max_connections: file_pool_size(),
            busy_timeout: Duration::from_secs(5),
            wal_restart_pages: checkpointer::RESTART_FRAMES,
        }
    }

    /// A private in-memory database (shared by the pool's connections, gone when the store is dropped).
    pub fn memory() -> Self {
        SqliteConfig {
            location: Location::Memory(format!("todo-{}", uuid::Uuid::new_v4())),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            wal_restart_pages: checkpointer::RESTART_FRAMES,
        }
    }
}

/// The pool size of a database file: twice the cores the process may use, at least 4 and at most 16. Each
/// connection is a thread of sqlx's that every statement is handed to and back from, and on few cores more of them
/// only add hand-offs. Measured on 2 cores at 64 clients (`bash tests/load.sh embedded --concurrency 64 --duration
/// 20`, alternated runs): the default mix 4,381 to 4,428 requests/s with 8 connections, 4,624 to 4,932 with 4,
/// 4,555 to 4,906 with 6, 4,090 to 4,171 with 2; a mix of 80% lists 2% slower with 4 than with 8.
fn file_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    u32::try_from(cores.saturating_mul(2)).map_or(16, |n| n.clamp(4, 16))
}

/// The SQLite store: WAL mode, FTS5 search, in-process wake-ups, group commit of concurrent creates, updates, new
/// reminders, audit batches and cursors, checkpoints on a thread of their own, and one queue of writers.
///
/// SQLite lets one connection write at a time. Left to itself, a writer that finds the lock taken sleeps in
/// SQLite's busy handler (1 ms, 2 ms, 5 ms ... up to 100 ms a try) and tries again, and a writer that comes back
/// for the lock at once (the group writer of a steady stream of creates) keeps winning it: the consumers' and the
/// scheduler's writes starved behind the API's. Every write of the store therefore first takes its place in one
/// first-come, first-served queue (an async mutex) of the process, and is handed the lock as the previous writer
/// commits. The busy timeout stays for writers of other processes (a `todo` command run against the same file).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    writer: Arc<Mutex<()>>,
    outbox: Arc<Notify>,
    reminders: Arc<Notify>,
    relay: Arc<Semaphore>,
    jobs: mpsc::Sender<writer::Job>,
}

/// Most jobs (creates, updates, new reminders, audit batches, cursors) committed by one transaction of the group
/// writer.
const MAX_GROUP: usize = 64;

/// The page cache of each connection of the pool, in KiB (SQLite's default is 2,000). SQLite empties a connection's
/// cache when another connection committed since its last transaction, which under writes is nearly every read; what
/// a cache still serves is the pages one statement reads twice. Measured at 64 clients: list requests of the mixed
/// load the same (p50 1.5 to 1.9 ms, p99 8 to 10 ms either way), and the server's peak memory, reached while the
/// audit log is read page by page by eight clients at once, 72 to 79 MB against 81 to 86 MB with the default
/// (together with the writer's larger cache).
const READER_CACHE_KIB: u32 = 512;

/// The relay lease of a SQLite store: one permit per store (and its clones), held within the process.
struct LocalLease(#[allow(dead_code)] OwnedSemaphorePermit);

#[async_trait::async_trait]
impl crate::LeaseHolder for LocalLease {
    async fn is_held(&mut self) -> bool {
        true
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database. Call [`Store::migrate`](crate::Store::migrate) before use.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when the file cannot be opened.
    pub async fn connect(config: &SqliteConfig) -> Result<Self> {
        let options = match &config.location {
            Location::File(path) => SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                // The checkpointer thread checkpoints for every connection of the store.
                .pragma("wal_autocheckpoint", "0"),
            Location::Memory(name) => SqliteConnectOptions::from_str(&format!(
                "sqlite:file:{name}?mode=memory&cache=shared"
            ))
            .map_err(db_err)?,
        }
        .busy_timeout(config.busy_timeout)
        .pragma("cache_size", format!("-{READER_CACHE_KIB}"))
        .foreign_keys(true);
        if matches!(config.location, Location::File(_)) {
            // Switching a new file to WAL takes an exclusive lock, and SQLite does not wait for it: two pool
            // connections opening a fresh file at once could fail with "database is locked". One connection
            // switches first (the mode is kept in the file); the pool's connections then find it set.
            use sqlx::Connection as _;
            let first = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(db_err)?;
            first.close().await.map_err(db_err)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            // A connection is a thread in this process: pinging it before every use costs a round trip and
            // tells nothing (a dead worker fails the statement itself).
            .test_before_acquire(false)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        let outbox = Arc::new(Notify::new());
        let reminders = Arc::new(Notify::new());
        let writer = Arc::new(Mutex::new(()));
        let (jobs, queue) = mpsc::channel(4 * MAX_GROUP);
        let target = writer::Target {
            filename: match &config.location {
                Location::File(path) => path.to_string_lossy().into_owned(),
                Location::Memory(name) => format!("file:{name}"),
            },
            memory: matches!(config.location, Location::Memory(_)),
            busy_timeout: config.busy_timeout,
        };
        let checkpoints = if target.memory {
            None
        } else {
            Some(checkpointer::spawn(
                &target.filename,
                writer.clone(),
                config.wal_restart_pages,
            )?)
        };
        // The thread ends when the last clone of the store is dropped (the queue closes).
        writer::spawn(
            &target,
            writer::Shared {
                writer: writer.clone(),
                outbox: outbox.clone(),
                reminders: reminders.clone(),
                checkpoints,
            },
            queue,
        )?;
        Ok(SqliteStore {
            pool,
            writer,
            outbox,
            reminders,
            relay: Arc::new(Semaphore::new(1)),
            jobs,
        })
    }

    /// Group commit: the create joins the queue of the group writer, which commits the creates queued together in
    /// one transaction and answers each after that COMMIT. A create that fails fails alone: the group then runs
    /// again with a savepoint per create. SQLite commits one transaction at a time, and the commit (WAL append,
    /// checkpoint) is most of a create's cost: concurrent creates share it. A lone create waits for nothing: the
    /// writer commits whatever is queued when it is free. The writer is a thread with a connection of its own (see
    /// [`writer`]); if it is gone, the create runs in a transaction of its own.
    async fn create(
        &self,
        task: &todo_domain::Task,
        reminders: &[todo_domain::Reminder],
        events: &[todo_events::Event],
    ) -> Result<()> {
        self.through_writer(
            |done| writer::Job::Create(writer::Create::new(task, reminders, events, done)),
            self.create_in_transaction(task, reminders, events),
        )
        .await
    }

    /// An update joins the group writer's queue as a create does, and shares its commit: completions and edits
    /// arrive beside the creates, and each in a transaction of its own would take a turn of the writer queue, and
    /// a commit of another connection, which empties the writer's page cache. A stale version or a missing task
    /// fails the update alone, having changed nothing; the rest of the group commits.
    async fn update(
        &self,
        task: &todo_domain::Task,
        expected_version: i64,
        events: &[todo_events::Event],
    ) -> Result<()> {
        self.through_writer(
            |done| writer::Job::Update(writer::Update::new(task, expected_version, events, done)),
            self.update_in_transaction(task, expected_version, events),
        )
        .await
    }

    /// A new reminder (one set on an existing task) joins the group writer's queue as a create does, and shares its
    /// commit.
    async fn add_reminder(&self, reminder: &todo_domain::Reminder) -> Result<()> {
        self.through_writer(
            |done| writer::Job::Reminder(writer::NewReminder::new(reminder, done)),
            self.add_reminder_in_transaction(reminder),
        )
        .await
    }

    /// An audit batch joins the group writer's queue as a create does, and shares the commit of the creates queued
    /// with it: the audit consumer writes a batch for every batch of events the API commits, so each batch in a
    /// transaction of its own would double the commits. The batch is still all or nothing: if it fails, the group
    /// runs again with a savepoint per job and the batch fails alone.
    async fn audit(
        &self,
        events: &[&todo_events::Event],
        recorded_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.through_writer(
            |done| writer::Job::Audit(writer::Audit::new(events, recorded_at, done)),
            self.audit_in_transaction(events, recorded_at),
        )
        .await
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| crate::Error::Backend {
                backend: "sqlite",
                source: Box::new(e),
            })
    }

    fn search_clause(param: &str) -> String {
        format!("rowid IN (SELECT rowid FROM tasks_fts WHERE tasks_fts MATCH {param})")
    }

    /// Every term quoted (FTS5 string syntax), so user text is never query syntax; implicit AND.
    fn search_value(terms: &[String]) -> String {
        terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Triggers keep the full-text index in step with `tasks` (migration 0002), in the same statement. The index is
    /// keyed by the implicit rowid of `tasks`, which `VACUUM` may renumber: nothing here runs it, and after one the
    /// index needs `INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild')`.
    async fn index_task(
        _conn: &mut sqlx::SqliteConnection,
        _task: &todo_domain::Task,
    ) -> Result<()> {
        Ok(())
    }

    /// Triggers, as for `index_task`.
    async fn unindex_task(_conn: &mut sqlx::SqliteConnection, _id: uuid::Uuid) -> Result<()> {
        Ok(())
    }

    async fn relay_lease(&self) -> Result<Option<crate::RelayLease>> {
        Ok(self
            .relay
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| crate::RelayLease::new(LocalLease(permit))))
    }

    async fn notify_outbox(&self, _conn: &mut sqlx::SqliteConnection) -> Result<()> {
        Ok(())
    }

    async fn notify_reminders(&self, _conn: &mut sqlx::SqliteConnection) -> Result<()> {
        Ok(())
    }

    /// A consumer's cursor joins the group writer's queue as an audit batch does. Besides sharing a commit, this
    /// keeps the writer's page cache: SQLite drops a connection's whole cache when another connection of the
    /// database committed since its last transaction, and the embedded consumers store their cursors several times
    /// a second.
    async fn save_cursor(
        &self,
        consumer: &str,
        seq: i64,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.through_writer(
            |done| writer::Job::Cursor(writer::Cursor::new(consumer, seq, updated_at, done)),
            self.save_cursor_in_statement(consumer, seq, updated_at),
        )
        .await
    }

    /// Queues the job `job` makes (given where its answer goes) for the group writer and waits for the answer. If
    /// the writer is gone, the same write runs through the pool instead (`alone`, which runs only then).
    async fn through_writer<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Job,
        alone: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let (done, answer) = oneshot::channel();
        if self.jobs.send(job(done)).await.is_err() {
            return alone.await;
        }
        answer.await.unwrap_or_else(|_| Err(writer_stopped()))
    }

    /// The writer's place in the queue: held until its transaction ended.
    async fn write_gate(&self) -> Option<OwnedMutexGuard<()>> {
        Some(self.writer.clone().lock_owned().await)
    }

    /// One process owns an embedded database: the in-process wake-ups are all there is.
    fn wake_other_processes(&self, _outbox: bool, _reminders: bool) {}

    /// SQLite has a single writer: the claiming UPDATE is atomic without row locks.
    /// Write transactions take the write lock up front: a deferred transaction that read before writing would fail
    /// with SQLITE_BUSY_SNAPSHOT, without waiting, when another connection committed in between.
    const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

    const CLAIM_LOCK: &str = "";
}

fn writer_stopped() -> crate::Error {
    crate::Error::Unavailable("the SQLite group writer stopped before answering".into())
}

crate::common::impl_store!(SqliteStore, Sqlite, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store as _;
    use crate::contract::{created, new_task, user};

    async fn memory_store() -> SqliteStore {
        let store = SqliteStore::connect(&SqliteConfig::memory())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    /// A store on `todo.db` in a fresh directory that starts its log over at `restart_pages`; the directory.
    async fn file_store(restart_pages: i64) -> (SqliteStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("todo-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut config = SqliteConfig::file(dir.join("todo.db"));
        config.wal_restart_pages = restart_pages;
        let store = SqliteStore::connect(&config).await.expect("connect");
        store.migrate().await.expect("migrate");
        (store, dir)
    }

    /// The checkpoint counter in the log file's header, once the log holds a header: how many times the connection
    /// that wrote the header has started the log over. Each connection counts its own start-overs, so this counts
    /// them all only where one connection (the group writer) writes.
    fn log_restarts(dir: &std::path::Path) -> Option<u32> {
        let header = std::fs::read(dir.join("todo.db-wal")).ok()?;
        Some(u32::from_be_bytes(header.get(12..16)?.try_into().ok()?))
    }

    /// The salts in the log file's header, once the log holds a header. Every start-over changes them, whichever
    /// connection starts the log over (the first is the previous one plus one, the second is random).
    async fn log_salts_when_written(dir: &std::path::Path) -> [u8; 8] {
        loop {
            let header = std::fs::read(dir.join("todo.db-wal")).unwrap_or_default();
            if let Some(salts) = header.get(16..24).and_then(|s| s.try_into().ok()) {
                return salts;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every kind of write waits for its place in the writer queue: while the place is held, jobs of the group
    /// writer (a create, an audit batch, a single audit row) and writes through sqlx (a transaction: a delete; a
    /// single statement: a cursor) all wait, and all of them complete once it is given up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_queues_for_the_writer() {
        let store = memory_store().await;
        let owner = user();
        let task = new_task(owner, "Queued");
        let event = created(&task);
        let doomed = new_task(owner, "Deleted while queued");
        store.create_task(&doomed, &[], &[]).await.expect("create");

        let held = store.write_gate().await;
        let mut writes = tokio::task::JoinSet::new();
        let s = store.clone();
        let (t, e) = (task.clone(), event.clone());
        writes.spawn(async move { s.create_task(&t, &[], &[e]).await.map(|()| "create") });
        let (s, e) = (store.clone(), event.clone());
        writes.spawn(async move {
            s.record_audits(&[&e], chrono::Utc::now())
                .await
                .map(|_| "audits")
        });
        let s = store.clone();
        writes.spawn(async move { s.set_cursor("queued", 7).await.map(|()| "cursor") });
        let s = store.clone();
        writes.spawn(async move {
            s.delete_task(owner, doomed.id, &[])
                .await
                .map(|()| "delete")
        });
        let (s, e) = (store.clone(), event.clone());
        writes.spawn(async move {
            s.record_audit(&e, chrono::Utc::now())
                .await
                .map(|_| "audit")
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(writes.len(), 5);
        assert!(
            writes.try_join_next().is_none(),
            "a write completed while the writer queue was held"
        );
        drop(held);
        let mut done = Vec::new();
        while let Some(joined) = writes.join_next().await {
            done.push(joined.expect("join").expect("write"));
        }
        done.sort_unstable();
        assert_eq!(done, ["audit", "audits", "create", "cursor", "delete"]);
        assert_eq!(store.cursor("queued").await.expect("cursor"), 7);
        assert_eq!(store.get_task(owner, task.id).await.expect("get"), task);
    }

    /// Under a steady stream of creates beside a reader, the checkpointer copies the log into the database file and
    /// starts it over again and again, and every task is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_copies_the_log_and_starts_it_over() {
        const WRITERS: usize = 8;
        const CREATES: usize = 300;
        let (store, dir) = file_store(256).await;
        let owners: Vec<todo_domain::UserId> = (0..WRITERS).map(|_| user()).collect();
        let mut writers = tokio::task::JoinSet::new();
        for owner in owners.clone() {
            let s = store.clone();
            writers.spawn(async move {
                for i in 0..CREATES {
                    let task = new_task(owner, &format!("Task {i}"));
                    s.create_task(&task, &[], &[created(&task)])
                        .await
                        .expect("create");
                }
            });
        }
        let reader = {
            let (s, owner) = (store.clone(), owners[0]);
            tokio::spawn(async move {
                loop {
                    s.list_tasks(owner, &crate::TaskQuery::default())
                        .await
                        .expect("list");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        while let Some(done) = writers.join_next().await {
            done.expect("writer");
        }
        reader.abort();
        // The checkpointer's next round after the last commit copies what is left.
        tokio::time::sleep(checkpointer::INTERVAL * 10).await;

        let db = std::fs::metadata(dir.join("todo.db"))
            .expect("database file")
            .len();
        let restarts = log_restarts(&dir).expect("log header");
        assert!(
            restarts >= 2,
            "the log was started over {restarts} times in {} creates",
            WRITERS * CREATES
        );
        assert!(
            db > 1 << 20,
            "database file {db} bytes: the log was not copied into it"
        );
        for owner in owners {
            let query = crate::TaskQuery {
                limit: 500,
                ..crate::TaskQuery::default()
            };
            let page = store.list_tasks(owner, &query).await.expect("list");
            assert_eq!(page.items.len(), CREATES);
        }
        store.pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Writes through sqlx alone (updates that may move reminders: the group writer commits nothing, and nothing
    /// wakes the checkpointer) still get the log copied and started over, by the checkpointer's rounds every
    /// second: with eight updaters keeping the writer queue busy, the thread takes the queue for the last pass
    /// itself (when it finds the queue free after a quiet second, it empties the log instead).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_through_sqlx_alone_get_the_log_started_over() {
        let (store, dir) = file_store(64).await;
        let owner = user();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..8 {
            let task = new_task(owner, &format!("Task {w}"));
            store.create_task(&task, &[], &[]).await.expect("create");
            let (s, stop) = (store.clone(), stop.clone());
            writers.spawn(async move {
                let mut task = task;
                let mut updates = 0_u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let expected = task.version;
                    let title = todo_domain::Title::parse(&format!("Task {w}, take {updates}"))
                        .expect("title");
                    task.apply(
                        todo_domain::TaskPatch {
                            title: Some(title),
                            ..Default::default()
                        },
                        chrono::Utc::now(),
                    );
                    s.update_task_with_reminders(&task, expected, &[], &[])
                        .await
                        .expect("update");
                    updates += 1;
                }
                updates
            });
        }
        let first = log_salts_when_written(&dir).await;
        tokio::time::sleep(checkpointer::IDLE * 3).await;
        let last = log_salts_when_written(&dir).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut updates = 0;
        while let Some(done) = writers.join_next().await {
            updates += done.expect("writer");
        }
        assert_ne!(
            first, last,
            "the log was not started over in {updates} updates (the salts of its header did not change)"
        );
        store.pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A store that goes quiet has its log copied completely and its log file emptied whatever its size (here the
    /// size alone never asks for a start-over): with automatic checkpoints off, only the checkpointer makes that
    /// happen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quiet_store_starts_its_log_over() {
        let (store, dir) = file_store(i64::MAX).await;
        let owner = user();
        let create = |title: &str| {
            let task = new_task(owner, title);
            let s = store.clone();
            async move { s.create_task(&task, &[], &[]).await.expect("create") }
        };
        let log = || {
            std::fs::metadata(dir.join("todo.db-wal"))
                .expect("log")
                .len()
        };
        for i in 0..20 {
            create(&format!("Before {i}")).await;
        }
        assert!(log() > 0);
        tokio::time::sleep(checkpointer::IDLE * 2).await;
        assert_eq!(
            log(),
            0,
            "the log file was not emptied after a quiet second"
        );
        create("After").await;
        let after = log();
        assert!(
            after > 0 && after < 1 << 20,
            "the log holds {after} bytes after one create: it was not started over"
        );
        assert_eq!(
            store
                .list_tasks(owner, &crate::TaskQuery::default())
                .await
                .expect("list")
                .items
                .len(),
            21
        );
        store.pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A create whose caller stopped waiting before its group began writes nothing, as a transaction that never
    /// began would; the others of the group commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_create_writes_nothing() {
        let store = memory_store().await;
        let owner = user();
        let (abandoned, kept) = (new_task(owner, "Abandoned"), new_task(owner, "Kept"));
        let held = store.write_gate().await;
        let (s, t) = (store.clone(), abandoned.clone());
        let gone = tokio::spawn(async move { s.create_task(&t, &[], &[created(&t)]).await });
        let (s, t) = (store.clone(), kept.clone());
        let waited = tokio::spawn(async move { s.create_task(&t, &[], &[created(&t)]).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        gone.abort();
        assert!(gone.await.is_err_and(|e| e.is_cancelled()));
        drop(held);
        waited.await.expect("join").expect("kept create");
        assert!(matches!(
            store.get_task(owner, abandoned.id).await,
            Err(crate::Error::NotFound)
        ));
        assert_eq!(store.get_task(owner, kept.id).await.expect("kept"), kept);
        let events = store
            .outbox_after(todo_events::Topic::TaskEvents.name(), 0, 10)
            .await
            .expect("outbox");
        assert_eq!(events.len(), 1, "only the kept create's event");
    }

    /// Creates, updates, an audit batch and a consumer's cursor queued together share one group of the writer: a
    /// create that fails (its id exists) fails alone, and the group runs again job by job; there, an update with a
    /// stale version fails alone too, having written nothing, the good update commits with its event, the audit
    /// batch inserts exactly its new rows, the cursor is stored, and the other create commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_jobs_share_a_group_with_a_failing_create() {
        let store = memory_store().await;
        let owner = user();
        let (existing, fresh) = (new_task(owner, "Existing"), new_task(owner, "Fresh"));
        let events: Vec<_> = (0..70).map(|_| created(&existing)).collect();
        store
            .create_task(&existing, &[], &events[..1])
            .await
            .expect("first create");
        store
            .record_audits(&[&events[0]], chrono::Utc::now())
            .await
            .expect("first audit");

        let held = store.write_gate().await;
        let mut writes = tokio::task::JoinSet::new();
        let (s, t, e) = (store.clone(), existing.clone(), created(&existing));
        writes.spawn(async move { ("duplicate", s.create_task(&t, &[], &[e]).await.map(|()| 0)) });
        let (s, batch) = (store.clone(), events.clone());
        writes.spawn(async move {
            let refs: Vec<&todo_events::Event> = batch.iter().collect();
            ("audits", s.record_audits(&refs, chrono::Utc::now()).await)
        });
        let s = store.clone();
        writes.spawn(async move { ("cursor", s.set_cursor("audit", 42).await.map(|()| 0)) });
        let (s, t, e) = (store.clone(), fresh.clone(), created(&fresh));
        writes.spawn(async move { ("fresh", s.create_task(&t, &[], &[e]).await.map(|()| 0)) });
        let mut completed = existing.clone();
        assert!(completed.complete(chrono::Utc::now()));
        let completion = todo_events::Event::new(
            todo_events::SOURCE_BACKEND,
            completed.updated_at,
            completed.completed_payload(),
        );
        let (s, t, e) = (store.clone(), completed.clone(), completion.clone());
        let stale_version = existing.version + 1;
        writes.spawn(async move {
            (
                "stale",
                s.update_task(&t, stale_version, &[e]).await.map(|()| 0),
            )
        });
        let (s, t, e) = (store.clone(), completed.clone(), completion.clone());
        let version = existing.version;
        writes.spawn(async move {
            (
                "complete",
                s.update_task(&t, version, &[e]).await.map(|()| 0),
            )
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        let mut outcomes = std::collections::BTreeMap::new();
        while let Some(joined) = writes.join_next().await {
            let (name, result) = joined.expect("join");
            outcomes.insert(name, result);
        }
        assert!(
            matches!(outcomes["duplicate"], Err(crate::Error::Conflict)),
            "{:?}",
            outcomes["duplicate"]
        );
        assert_eq!(outcomes["audits"].as_ref().expect("audits"), &69);
        assert!(outcomes["cursor"].is_ok(), "{:?}", outcomes["cursor"]);
        assert_eq!(store.cursor("audit").await.expect("cursor"), 42);
        assert!(outcomes["fresh"].is_ok(), "{:?}", outcomes["fresh"]);
        assert_eq!(store.get_task(owner, fresh.id).await.expect("fresh"), fresh);
        assert!(
            matches!(outcomes["stale"], Err(crate::Error::Conflict)),
            "{:?}",
            outcomes["stale"]
        );
        assert!(outcomes["complete"].is_ok(), "{:?}", outcomes["complete"]);
        assert_eq!(
            store.get_task(owner, existing.id).await.expect("completed"),
            completed
        );
        let outbox = store
            .outbox_after(todo_events::Topic::TaskEvents.name(), 0, 10)
            .await
            .expect("outbox");
        let completions = outbox
            .iter()
            .filter(|record| record.event_id == Some(completion.id()))
            .count();
        assert_eq!(
            completions, 1,
            "the completion's event once, the stale update's never"
        );
        let page = store.list_audit(owner, 500, None).await.expect("audit");
        let mut ids: Vec<uuid::Uuid> = page.items.iter().map(|a| a.event_id).collect();
        ids.sort_unstable();
        let mut expected: Vec<uuid::Uuid> = events.iter().map(todo_events::Event::id).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected, "every event audited once");
    }

    /// Updates queued together share one group of the writer with a create and a new reminder: an update whose
    /// expected version is stale fails with a conflict, one of another owner's task with not found, each having
    /// written nothing (no row changed, no event), and the create, the reminder and the good update commit. An
    /// update through the writer wakes the outbox's waiters by the time it returns, a new reminder the
    /// scheduler's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn updates_share_a_group_and_fail_alone() {
        let store = memory_store().await;
        let (owner, stranger) = (user(), user());
        let (edited, stale, fresh) = (
            new_task(owner, "Edited"),
            new_task(owner, "Stale"),
            new_task(owner, "Fresh"),
        );
        for task in [&edited, &stale] {
            store.create_task(task, &[], &[]).await.expect("create");
        }
        let completed = |task: &todo_domain::Task| {
            let mut done = task.clone();
            assert!(done.complete(chrono::Utc::now()));
            let event = todo_events::Event::new(
                todo_events::SOURCE_BACKEND,
                done.updated_at,
                done.completed_payload(),
            );
            (done, event)
        };
        let (edited_done, edited_event) = completed(&edited);
        let (stale_done, stale_event) = completed(&stale);
        let mut stolen = edited_done.clone();
        stolen.owner = stranger;
        let reminder = |task: &todo_domain::Task| todo_domain::Reminder {
            id: todo_domain::ReminderId::new(),
            task_id: task.id,
            owner: task.owner,
            lead: None,
            remind_at: chrono::Utc::now() + chrono::Duration::hours(1),
            status: todo_domain::ReminderStatus::Pending,
            fired_at: None,
            created_at: chrono::Utc::now(),
        };
        let stale_reminder = reminder(&stale);

        let held = store.write_gate().await;
        let mut writes = tokio::task::JoinSet::new();
        let (s, t, e) = (store.clone(), edited_done.clone(), edited_event.clone());
        writes.spawn(async move { ("edit", s.update_task(&t, edited.version, &[e]).await) });
        let (s, t, e) = (store.clone(), stale_done.clone(), stale_event.clone());
        writes.spawn(async move { ("stale", s.update_task(&t, stale.version + 1, &[e]).await) });
        let (s, e) = (store.clone(), edited_event.clone());
        writes.spawn(async move {
            (
                "stranger",
                s.update_task(&stolen, edited.version, &[e]).await,
            )
        });
        let fresh_event = created(&fresh);
        let (s, t, e) = (store.clone(), fresh.clone(), fresh_event.clone());
        writes.spawn(async move { ("create", s.create_task(&t, &[], &[e]).await) });
        let (s, r) = (store.clone(), stale_reminder.clone());
        writes.spawn(async move { ("remind", s.create_reminder(&r).await) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(writes.len(), 5);
        assert!(
            writes.try_join_next().is_none(),
            "a write completed while the writer queue was held"
        );
        drop(held);
        let mut outcomes = std::collections::BTreeMap::new();
        while let Some(joined) = writes.join_next().await {
            let (name, result) = joined.expect("join");
            outcomes.insert(name, result);
        }
        assert!(outcomes["edit"].is_ok(), "{:?}", outcomes["edit"]);
        assert!(outcomes["create"].is_ok(), "{:?}", outcomes["create"]);
        assert!(outcomes["remind"].is_ok(), "{:?}", outcomes["remind"]);
        assert_eq!(
            store
                .list_reminders(owner, stale.id)
                .await
                .expect("reminders"),
            [stale_reminder]
        );
        assert!(
            matches!(outcomes["stale"], Err(crate::Error::Conflict)),
            "{:?}",
            outcomes["stale"]
        );
        assert!(
            matches!(outcomes["stranger"], Err(crate::Error::NotFound)),
            "{:?}",
            outcomes["stranger"]
        );
        assert_eq!(
            store.get_task(owner, edited_done.id).await.expect("edited"),
            edited_done
        );
        assert_eq!(store.get_task(owner, stale.id).await.expect("stale"), stale);
        assert_eq!(store.get_task(owner, fresh.id).await.expect("fresh"), fresh);
        let mut ids: Vec<uuid::Uuid> = store
            .outbox_after(todo_events::Topic::TaskEvents.name(), 0, 10)
            .await
            .expect("outbox")
            .iter()
            .map(|record| record.event_id.expect("event id"))
            .collect();
        ids.sort_unstable();
        let mut expected = [fresh_event.id(), edited_event.id()];
        expected.sort_unstable();
        assert_eq!(
            ids, expected,
            "the events of the create and the good update only"
        );

        let woken = store.outbox_changed();
        let (fresh_done, fresh_done_event) = completed(&fresh);
        store
            .update_task(&fresh_done, fresh.version, &[fresh_done_event])
            .await
            .expect("complete");
        assert!(
            tokio::time::timeout(Duration::ZERO, woken).await.is_ok(),
            "the update returned before waking the outbox's waiters"
        );
        let woken = store.reminders_changed();
        store
            .create_reminder(&reminder(&stale))
            .await
            .expect("reminder");
        assert!(
            tokio::time::timeout(Duration::ZERO, woken).await.is_ok(),
            "the new reminder returned before waking the scheduler"
        );
    }

    /// Every column of every row the group writer writes (its own connection, its own encoding of the values) is
    /// what the sqlx statements write for the same create, the same update (a completion that also renames the task
    /// and clears columns), the same new reminder, the same audit batch and the same cursor: same type, same text,
    /// same bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_writes_rows_as_sqlx_does() {
        use chrono::{NaiveDate, NaiveTime, TimeZone as _, Utc};
        use todo_domain::{
            Description, Due, LeadTime, NewTask, Priority, Recurrence, Reminder, ReminderId,
            ReminderStatus, Series, Tags, Task, TaskId, TimeZone, Title, UserId,
        };
        let at = Utc
            .with_ymd_and_hms(2030, 3, 4, 5, 6, 7)
            .single()
            .expect("instant")
            + chrono::Duration::microseconds(123_456);
        let new = NewTask {
            title: Title::parse("Water the plants").expect("title"),
            description: Some(Description::parse("The \"big\" ones, too").expect("description")),
            priority: Priority::High,
            tags: Tags::parse(["home", "garden"]).expect("tags"),
            due: Some(Due {
                date: NaiveDate::from_ymd_opt(2030, 3, 5).expect("date"),
                time: Some(NaiveTime::from_hms_milli_opt(9, 30, 15, 250).expect("time")),
                zone: TimeZone::parse("Europe/Berlin").expect("zone"),
            }),
            recurrence: Some(Recurrence::parse("weekly").expect("rule")),
            reminder_leads: vec![LeadTime::parse("30min").expect("lead")],
        };
        let mut task = Task::create(
            TaskId::new(),
            UserId::from_uuid(uuid::Uuid::new_v4()),
            new,
            at,
        );
        task.series = Some(Series {
            id: TaskId::new(),
            index: 3,
        });
        let reminders = [
            Reminder {
                id: ReminderId::new(),
                task_id: task.id,
                owner: task.owner,
                lead: Some(LeadTime::parse("30min").expect("lead")),
                remind_at: at + chrono::Duration::hours(4),
                status: ReminderStatus::Pending,
                fired_at: None,
                created_at: at,
            },
            Reminder {
                id: ReminderId::new(),
                task_id: task.id,
                owner: task.owner,
                lead: None,
                remind_at: at,
                status: ReminderStatus::Triggered,
                fired_at: Some(at + chrono::Duration::milliseconds(1)),
                created_at: at,
            },
        ];
        let events = [todo_events::Event::new(
            todo_events::SOURCE_BACKEND,
            at,
            task.created_payload(),
        )];
        let later = Reminder {
            id: ReminderId::new(),
            task_id: task.id,
            owner: task.owner,
            lead: None,
            remind_at: at + chrono::Duration::days(2),
            status: ReminderStatus::Pending,
            fired_at: None,
            created_at: at + chrono::Duration::milliseconds(1),
        };
        let mut completed = task.clone();
        completed.title = Title::parse("Water the roses").expect("title");
        completed.description = None;
        completed.series = None;
        assert!(completed.complete(at + chrono::Duration::milliseconds(1)));
        let completion = [todo_events::Event::new(
            todo_events::SOURCE_BACKEND,
            completed.updated_at,
            completed.completed_payload(),
        )];

        let mut tables = Vec::new();
        for by_writer in [true, false] {
            let store = memory_store().await;
            let audited: Vec<&todo_events::Event> = events.iter().collect();
            let recorded_at = at + chrono::Duration::milliseconds(2);
            if by_writer {
                store.create_task(&task, &reminders, &events).await
            } else {
                store
                    .create_in_transaction(&task, &reminders, &events)
                    .await
            }
            .expect("create");
            if by_writer {
                store
                    .update_task(&completed, task.version, &completion)
                    .await
            } else {
                store
                    .update_in_transaction(&completed, task.version, &completion)
                    .await
            }
            .expect("update");
            if by_writer {
                store.create_reminder(&later).await
            } else {
                store.add_reminder_in_transaction(&later).await
            }
            .expect("reminder");
            let inserted = if by_writer {
                store.record_audits(&audited, recorded_at).await
            } else {
                store.audit_in_transaction(&audited, recorded_at).await
            }
            .expect("audit");
            assert_eq!(inserted, 1);
            if by_writer {
                store.save_cursor("audit", 7, recorded_at).await
            } else {
                store
                    .save_cursor_in_statement("audit", 7, recorded_at)
                    .await
            }
            .expect("cursor");
            let mut rows = Vec::new();
            for table in [
                "tasks",
                "reminders",
                "outbox",
                "audit_log",
                "consumer_cursors",
            ] {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                        .bind(table)
                        .fetch_all(&store.pool)
                        .await
                        .expect("columns");
                let quoted: Vec<String> = columns
                    .iter()
                    .map(|c| format!("typeof({c}) || ':' || quote({c})"))
                    .collect();
                let sql = format!(
                    "SELECT {} FROM {table} ORDER BY rowid",
                    quoted.join(" || ' | ' || ")
                );
                let values: Vec<String> = sqlx::query_scalar(&sql)
                    .fetch_all(&store.pool)
                    .await
                    .expect("rows");
                rows.push((table, columns.join(", "), values));
            }
            tables.push(rows);
        }
        let (writer, sqlx) = (&tables[0], &tables[1]);
        for ((table, columns, written), (_, _, expected)) in writer.iter().zip(sqlx) {
            assert!(!expected.is_empty(), "{table}: no rows");
            assert_eq!(written, expected, "{table} ({columns})");
        }
    }

    /// A new database file opens and migrates every time: the pool's first connections used to race to switch it
    /// to WAL, and one of them could fail with "database is locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fresh_files_open_and_migrate() {
        let dir = std::env::temp_dir().join(format!("todo-store-open-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        for i in 0..100 {
            let store = SqliteStore::connect(&SqliteConfig::file(dir.join(format!("{i}.db"))))
                .await
                .unwrap_or_else(|e| panic!("open {i}: {e}"));
            store
                .migrate()
                .await
                .unwrap_or_else(|e| panic!("migrate {i}: {e}"));
            store.pool.close().await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
