//! The PostgreSQL adapter: the distributed mode's database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use tokio::sync::Notify;

use crate::Result;

const OUTBOX_CHANNEL: &str = "todo_outbox";
const REMINDER_CHANNEL: &str = "todo_reminders";
/// The advisory lock key of the relay lease (advisory locks are per database).
const RELAY_LOCK: i64 = 0x746f_646f_7265_6c61;

/// How to reach PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before [`Error::Unavailable`](crate::Error::Unavailable).
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PgConfig {
    /// A configuration for `url` (`postgres://user:password@host:5432/db`).
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }

    /// Sets the pool size.
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }
}

/// The PostgreSQL store: full-text search, `FOR UPDATE SKIP LOCKED` claims with leases, `LISTEN/NOTIFY` wake-ups.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    outbox: Arc<Notify>,
    reminders: Arc<Notify>,
    remote: Arc<RemoteWake>,
}

/// Wake-ups for other processes, sent after commit by one background task.
///
/// A `NOTIFY` inside a write transaction makes PostgreSQL take a database-wide lock from its pre-commit step to the
/// end of the commit (WAL flush included), so every notifying transaction would commit one at a time (measured:
/// about 1,000 two-insert transactions/s with `pg_notify`, 3,500 to 4,100 without, at 16 clients). Sending the
/// wake-up after commit, and at most one per channel at a time however many commits asked for it, keeps commits
/// parallel. Waiters still re-read on their own timers, so a wake-up lost to an outage only delays.
#[derive(Debug, Default)]
struct RemoteWake {
    outbox: std::sync::atomic::AtomicBool,
    reminders: std::sync::atomic::AtomicBool,
    pending: Notify,
}

impl PgStore {
    /// Connects the pool and starts listening for commits of other processes.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when the server cannot be reached.
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect(&config.url)
            .await
            .map_err(db_err)?;
        let store = PgStore {
            pool,
            outbox: Arc::new(Notify::new()),
            reminders: Arc::new(Notify::new()),
            remote: Arc::new(RemoteWake::default()),
        };
        store.spawn_listener();
        store.spawn_notifier();
        Ok(store)
    }

    /// Sends the coalesced post-commit wake-ups ([`RemoteWake`]).
    fn spawn_notifier(&self) {
        use std::sync::atomic::Ordering;
        let pool = self.pool.clone();
        let remote = Arc::downgrade(&self.remote);
        tokio::spawn(async move {
            loop {
                let Some(wake) = remote.upgrade() else {
                    return;
                };
                // `notify_one` keeps a permit when nobody waits, so a commit during a send is not missed.
                if tokio::time::timeout(Duration::from_secs(5), wake.pending.notified())
                    .await
                    .is_err()
                {
                    continue;
                }
                let channels = [
                    (wake.outbox.swap(false, Ordering::AcqRel), OUTBOX_CHANNEL),
                    (
                        wake.reminders.swap(false, Ordering::AcqRel),
                        REMINDER_CHANNEL,
                    ),
                ];
                drop(wake);
                for (_, channel) in channels.iter().filter(|(set, _)| *set) {
                    let _ = sqlx::query("SELECT pg_notify($1, '')")
                        .bind(*channel)
                        .execute(&pool)
                        .await;
                }
            }
        });
    }

    /// Forwards `NOTIFY`s of other processes to local waiters, reconnecting after outages.
    fn spawn_listener(&self) {
        let pool = self.pool.clone();
        let (outbox, reminders) = (
            Arc::downgrade(&self.outbox),
            Arc::downgrade(&self.reminders),
        );
        tokio::spawn(async move {
            loop {
                if outbox.strong_count() == 0 {
                    return;
                }
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if listener
                    .listen_all([OUTBOX_CHANNEL, REMINDER_CHANNEL])
                    .await
                    .is_err()
                {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                loop {
                    match tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await {
                        Ok(Ok(Some(n))) => {
                            let target = if n.channel() == OUTBOX_CHANNEL {
                                &outbox
                            } else {
                                &reminders
                            };
                            match target.upgrade() {
                                Some(notify) => notify.notify_waiters(),
                                None => return,
                            }
                        }
                        // The connection was lost (notifications may be missed): wake everyone and reconnect.
                        Ok(Ok(None)) => {
                            for w in [&outbox, &reminders] {
                                if let Some(n) = w.upgrade() {
                                    n.notify_waiters();
                                }
                            }
                        }
                        Ok(Err(_)) => break,
                        Err(_) => {
                            if outbox.strong_count() == 0 {
                                return;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(inner) => db_err(inner),
                other => crate::Error::Backend {
                    backend: "postgres",
                    source: Box::new(other),
                },
            })
    }

    fn search_clause(param: &str) -> String {
        format!("search @@ to_tsquery('simple', {param})")
    }

    /// Terms are alphanumeric only (see `search_terms`), so joining them with `&` is a valid tsquery.
    fn search_value(terms: &[String]) -> String {
        terms.join(" & ")
    }

    async fn index_task(_conn: &mut sqlx::PgConnection, _task: &todo_domain::Task) -> Result<()> {
        Ok(())
    }

    async fn unindex_task(_conn: &mut sqlx::PgConnection, _id: uuid::Uuid) -> Result<()> {
        Ok(())
    }

    /// A session-level advisory lock on a connection of its own, outside the pool: the lock lives exactly as long as
    /// that session, so a relay that dies (or loses its connection) frees it for another.
    async fn relay_lease(&self) -> Result<Option<crate::RelayLease>> {
        use sqlx::ConnectOptions as _;
        let mut conn = self
            .pool
            .connect_options()
            .connect()
            .await
            .map_err(db_err)?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        if !held {
            use sqlx::Connection as _;
            let _ = conn.close().await;
            return Ok(None);
        }
        Ok(Some(crate::RelayLease::new(PgLease { conn })))
    }

    /// Each create is a transaction of its own: concurrent transactions commit in parallel on PostgreSQL.
    async fn create(
        &self,
        task: &todo_domain::Task,
        reminders: &[todo_domain::Reminder],
        events: &[todo_events::Event],
    ) -> Result<()> {
        self.create_in_transaction(task, reminders, events).await
    }

    /// Each update is a transaction of its own, as each create.
    async fn update(
        &self,
        task: &todo_domain::Task,
        expected_version: i64,
        events: &[todo_events::Event],
    ) -> Result<()> {
        self.update_in_transaction(task, expected_version, events)
            .await
    }

    /// Each new reminder is a transaction of its own, as each create.
    async fn add_reminder(&self, reminder: &todo_domain::Reminder) -> Result<()> {
        self.add_reminder_in_transaction(reminder).await
    }

    /// Each audit batch is a transaction of its own, as each create.
    async fn audit(
        &self,
        events: &[&todo_events::Event],
        recorded_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.audit_in_transaction(events, recorded_at).await
    }

    /// Each cursor update is a statement of its own.
    async fn save_cursor(
        &self,
        consumer: &str,
        seq: i64,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.save_cursor_in_statement(consumer, seq, updated_at)
            .await
    }

    /// Nothing inside the transaction: other processes are woken after commit ([`RemoteWake`]).
    async fn notify_outbox(&self, _conn: &mut sqlx::PgConnection) -> Result<()> {
        Ok(())
    }

    /// As [`PgStore::notify_outbox`].
    async fn notify_reminders(&self, _conn: &mut sqlx::PgConnection) -> Result<()> {
        Ok(())
    }

    /// Asks the notifier task to wake the other processes' waiters (after a commit).
    fn wake_other_processes(&self, outbox: bool, reminders: bool) {
        use std::sync::atomic::Ordering;
        if outbox {
            self.remote.outbox.store(true, Ordering::Release);
        }
        if reminders {
            self.remote.reminders.store(true, Ordering::Release);
        }
        if outbox || reminders {
            self.remote.pending.notify_one();
        }
    }

    /// PostgreSQL has row locks and many writers: no process-wide queue in front of them.
    async fn write_gate(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        None
    }

    /// Concurrent schedulers skip each other's rows instead of waiting, and never claim the same reminder.
    /// Write transactions start as plain `BEGIN` (read committed).
    const BEGIN_WRITE: &str = "BEGIN";

    const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
}

/// The session holding the relay's advisory lock.
struct PgLease {
    conn: sqlx::PgConnection,
}

#[async_trait::async_trait]
impl crate::LeaseHolder for PgLease {
    /// The session answers, so its session-level lock is still held.
    async fn is_held(&mut self) -> bool {
        let probe = sqlx::query("SELECT 1").execute(&mut self.conn);
        matches!(
            tokio::time::timeout(Duration::from_secs(5), probe).await,
            Ok(Ok(_))
        )
    }
}

crate::common::impl_store!(PgStore, Postgres, "postgres");
