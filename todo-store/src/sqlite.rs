//! The SQLite adapter: the embedded mode's database.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::Result;

/// Where the SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    location: Location,
    /// Pool size (one writer at a time; readers in parallel under WAL).
    pub max_connections: u32,
    /// How long a writer waits for the lock before the operation fails.
    pub busy_timeout: Duration,
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
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// A private in-memory database (shared by the pool's connections, gone when the store is dropped).
    pub fn memory() -> Self {
        SqliteConfig {
            location: Location::Memory(format!("todo-{}", uuid::Uuid::new_v4())),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite store: WAL mode, FTS5 search, in-process wake-ups.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    outbox: Arc<Notify>,
    reminders: Arc<Notify>,
    relay: Arc<Semaphore>,
}

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
                .synchronous(SqliteSynchronous::Normal),
            Location::Memory(name) => SqliteConnectOptions::from_str(&format!(
                "sqlite:file:{name}?mode=memory&cache=shared"
            ))
            .map_err(db_err)?,
        }
        .busy_timeout(config.busy_timeout)
        .foreign_keys(true);
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
        Ok(SqliteStore {
            pool,
            outbox: Arc::new(Notify::new()),
            reminders: Arc::new(Notify::new()),
            relay: Arc::new(Semaphore::new(1)),
        })
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

    /// One process owns an embedded database: the in-process wake-ups are all there is.
    fn wake_other_processes(&self, _outbox: bool, _reminders: bool) {}

    /// SQLite has a single writer: the claiming UPDATE is atomic without row locks.
    /// Write transactions take the write lock up front: a deferred transaction that read before writing would fail
    /// with SQLITE_BUSY_SNAPSHOT, without waiting, when another connection committed in between.
    const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

    const CLAIM_LOCK: &str = "";
}

crate::common::impl_store!(SqliteStore, Sqlite, "sqlite");
