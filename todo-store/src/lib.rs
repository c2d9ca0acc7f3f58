//! Persistence of the todo pipeline: where its guarantees live.
//!
//! A [`Store`] keeps tasks, reminders and the audit log, and two things that make the event pipeline reliable:
//!
//! - **The transactional outbox.** Every state change and the events it causes commit in one transaction
//!   ([`Store::create_task`], [`Store::update_task`], [`Store::delete_task`], [`Store::create_next_instance`],
//!   [`Store::fire_reminder`]): no event is ever lost between the database and the broker. A relay reads
//!   [`Store::unpublished_outbox`] in sequence order and marks rows published after the broker acknowledged them;
//!   in the embedded mode the outbox itself is the log that in-process consumers read with stored cursors
//!   ([`Store::outbox_after`], [`Store::cursor`], [`Store::set_cursor`]).
//! - **Idempotent effects.** The audit log is unique by event id ([`Store::record_audit`]); the recurrence
//!   consumer's effect commits with a processed marker `(consumer, event id)` ([`Store::create_next_instance`]
//!   reports [`Applied::AlreadyApplied`] the second time); reminder transitions are monotonic.
//!
//! Every user-facing read and write is scoped by owner: another user's task is [`Error::NotFound`].
//!
//! Adapters: [`SqliteStore`] (feature `sqlite`: a file or memory database in WAL mode, FTS5 search, in-process
//! wake-ups, concurrent creates, updates, new reminders, audit batches and cursors committed together by a writer
//! thread with a connection of its own, checkpoints on a thread of their own; every other statement through sqlx) and
//! [`PgStore`] (feature `postgres`: full-text search, `FOR UPDATE SKIP LOCKED` reminder claims with leases,
//! `LISTEN/NOTIFY` wake-ups across processes). Both run their embedded migrations with [`Store::migrate`]. The
//! [`contract`] module (feature `testing`) is the behaviour suite both pass.
//!
//! It depends on `todo-domain` and [`todo_events`], never on a broker.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use todo_store::{SqliteConfig, SqliteStore, Store};
//!
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&SqliteConfig::memory()).await?);
//! store.migrate().await?;
//! assert_eq!(store.outbox_backlog().await?, 0);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use todo_domain::{
    Priority, Reminder, ReminderId, ReminderInput, Task, TaskId, TaskStatus, UserId,
};
use todo_events::Event;
use uuid::Uuid;

#[cfg(any(test, feature = "testing"))]
pub mod contract;
#[macro_use]
mod common;
mod error;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod wakeup;

pub use self::error::{BoxError, Error, Result};
#[cfg(feature = "postgres")]
pub use self::postgres::{PgConfig, PgStore};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{SqliteConfig, SqliteStore};
pub use self::wakeup::Wakeup;

/// How tags filter a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagMatch {
    /// Tasks with at least one of the tags.
    #[default]
    Any,
    /// Tasks with every tag.
    All,
}

/// Sort keys of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    /// By due instant; tasks without a due date come last in ascending order.
    Due,
    /// By priority rank (low < medium < high < urgent).
    Priority,
    /// By creation time.
    #[default]
    Created,
    /// By title, case-insensitively (byte order of the lower-cased title).
    Title,
}

/// A task list query. Values are always bound as parameters, never spliced into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only these priorities (empty: all).
    pub priorities: Vec<Priority>,
    /// Tag filter (empty: none).
    pub tags: Vec<String>,
    /// Any or all of `tags`.
    pub tag_match: TagMatch,
    /// Due on or after this date.
    pub due_from: Option<NaiveDate>,
    /// Due on or before this date.
    pub due_to: Option<NaiveDate>,
    /// Full-text search in title and description.
    pub search: Option<String>,
    /// Sort key.
    pub sort: TaskSort,
    /// Descending order.
    pub descending: bool,
    /// Page size (1 to 500).
    pub limit: u32,
    /// Opaque cursor of the previous page.
    pub cursor: Option<String>,
}

impl Default for TaskQuery {
    fn default() -> Self {
        TaskQuery {
            status: None,
            priorities: Vec::new(),
            tags: Vec::new(),
            tag_match: TagMatch::Any,
            due_from: None,
            due_to: None,
            search: None,
            sort: TaskSort::Created,
            descending: false,
            limit: 50,
            cursor: None,
        }
    }
}

/// A page of tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    /// The tasks.
    pub items: Vec<Task>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The event id (unique).
    pub event_id: Uuid,
    /// The event's `type`.
    pub event_type: String,
    /// The task it concerns.
    pub task_id: Option<Uuid>,
    /// The full CloudEvents JSON.
    pub payload: serde_json::Value,
    /// The event's `time`.
    pub occurred_at: DateTime<Utc>,
    /// When the audit consumer recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditEntry>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
}

/// A committed outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Sequence number, increasing in commit order on SQLite and in insert order on PostgreSQL.
    pub seq: i64,
    /// The event id, when the row is an event of this contract.
    pub event_id: Option<Uuid>,
    /// Destination topic.
    pub topic: String,
    /// Record key (the partition key).
    pub key: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Record value.
    pub payload: Vec<u8>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A raw outbox row to append (dead letters and replays in the embedded mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxRecord {
    /// Destination topic.
    pub topic: String,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Record value.
    pub payload: Vec<u8>,
}

/// A reminder claimed by a scheduler, with what its trigger event needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderClaim {
    /// The reminder.
    pub reminder: Reminder,
    /// Title of its task.
    pub task_title: String,
    /// Due date of its task.
    pub due_date: Option<NaiveDate>,
    /// Proof of the claim, passed to [`Store::fire_reminder`].
    pub lease_token: Uuid,
}

/// A claimed reminder to fire with its trigger event ([`Store::fire_reminders`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderFire {
    /// The reminder.
    pub id: ReminderId,
    /// Its claim's [`ReminderClaim::lease_token`].
    pub lease_token: Uuid,
    /// Its `reminder.triggered` event.
    pub event: Event,
}

/// A `reminder.triggered` event as the reminder consumer applies it ([`Store::trigger_reminders`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderTrigger {
    /// The reminder.
    pub id: ReminderId,
    /// Whether its task is still active: TRIGGERED if so, else CANCELLED.
    pub task_active: bool,
    /// The event, audited when the reminder ends TRIGGERED.
    pub event: Event,
}

/// A change to one of a task's reminders, committed with the task's update
/// ([`Store::update_task_with_reminders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderChange {
    /// Fire at `remind_at` instead (a claim a scheduler holds on it is released, so the new time governs).
    Reschedule {
        /// The reminder.
        id: ReminderId,
        /// Its new time.
        remind_at: DateTime<Utc>,
    },
    /// Cancel it.
    Cancel {
        /// The reminder.
        id: ReminderId,
    },
}

/// A consumer of the outbox log (the embedded mode): its stored cursor ([`Store::cursor`]) and the topic it reads.
/// [`Store::prune_outbox`] never deletes a row of `topic` that this cursor has not passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxReader {
    /// The consumer's cursor name.
    pub consumer: String,
    /// The topic it reads.
    pub topic: String,
}

/// The right to relay the outbox ([`Store::try_acquire_relay_lease`]): while one relay holds it, no other relay
/// of the same database does. Dropping it gives it up; when its holder dies, the lease is freed for another.
pub struct RelayLease {
    holder: Box<dyn LeaseHolder>,
}

impl RelayLease {
    pub(crate) fn new(holder: impl LeaseHolder) -> Self {
        RelayLease {
            holder: Box::new(holder),
        }
    }

    /// Whether the lease is still held. False once it was lost (on PostgreSQL: the session holding it ended,
    /// and another relay may hold it now); a relay stops publishing then and acquires it again.
    pub async fn is_held(&mut self) -> bool {
        self.holder.is_held().await
    }
}

impl std::fmt::Debug for RelayLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLease").finish_non_exhaustive()
    }
}

/// What keeps a [`RelayLease`] (a database session, a permit).
#[async_trait]
pub(crate) trait LeaseHolder: Send + Sync + 'static {
    async fn is_held(&mut self) -> bool;
}

/// Whether an idempotent effect was applied by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Applied,
    /// A previous delivery applied it already; nothing changed.
    AlreadyApplied,
}

/// The persistence port of the todo pipeline. Object-safe: held as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the embedded migrations.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Backend`].
    async fn migrate(&self) -> Result<()>;

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    async fn ping(&self) -> Result<()>;

    // --- tasks ---------------------------------------------------------------------------------------------

    /// The task `id` of `owner`.
    ///
    /// # Errors
    /// MUST return [`Error::NotFound`] when `owner` owns no task with this id.
    async fn get_task(&self, owner: UserId, id: TaskId) -> Result<Task>;

    /// A page of `owner`'s tasks.
    ///
    /// # Errors
    /// [`Error::InvalidCursor`] for a cursor this store did not issue for the same sort.
    async fn list_tasks(&self, owner: UserId, query: &TaskQuery) -> Result<TaskPage>;

    /// Inserts a task, its reminders and its events in one transaction.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the id exists.
    async fn create_task(
        &self,
        task: &Task,
        reminders: &[Reminder],
        events: &[Event],
    ) -> Result<()>;

    /// Replaces a task whose stored version is `expected_version` (the task's new version is `task.version`), and
    /// writes its events, in one transaction.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the owner has no such task; [`Error::Conflict`] when the stored version differs.
    async fn update_task(&self, task: &Task, expected_version: i64, events: &[Event])
    -> Result<()>;

    /// [`Store::update_task`], and in the same transaction applies `changes` to reminders of that task that are
    /// still PENDING and not yet fired (a change to any other reminder is skipped). Wakes the reminder scheduler
    /// when a reminder changed. Returns how many reminders changed.
    ///
    /// # Errors
    /// As [`Store::update_task`]; nothing is written then.
    async fn update_task_with_reminders(
        &self,
        task: &Task,
        expected_version: i64,
        events: &[Event],
        changes: &[ReminderChange],
    ) -> Result<u64>;

    /// Deletes a task and writes its events in one transaction. Its reminders stay for the suppression consumer
    /// to cancel.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the owner has no such task.
    async fn delete_task(&self, owner: UserId, id: TaskId, events: &[Event]) -> Result<()>;

    /// The recurrence consumer's effect: inserts the next instance, its reminders, its events and the processed
    /// marker `(consumer, event_id)` in one transaction.
    ///
    /// # Errors
    /// Backend errors. A second call with the same marker changes nothing and returns [`Applied::AlreadyApplied`].
    async fn create_next_instance(
        &self,
        consumer: &str,
        event_id: Uuid,
        task: &Task,
        reminders: &[Reminder],
        events: &[Event],
    ) -> Result<Applied>;

    // --- reminders -----------------------------------------------------------------------------------------

    /// Inserts a reminder.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the id exists.
    async fn create_reminder(&self, reminder: &Reminder) -> Result<()>;

    /// The reminders of `owner`'s task, by `remind_at`.
    ///
    /// # Errors
    /// Backend errors.
    async fn list_reminders(&self, owner: UserId, task: TaskId) -> Result<Vec<Reminder>>;

    /// Cancels a pending reminder of `owner` and returns it (a terminal one is returned unchanged).
    ///
    /// # Errors
    /// [`Error::NotFound`].
    async fn cancel_reminder(&self, owner: UserId, id: ReminderId) -> Result<Reminder>;

    /// Cancels every pending reminder of a task; returns how many changed.
    ///
    /// # Errors
    /// Backend errors.
    async fn cancel_pending_reminders(
        &self,
        owner: UserId,
        task: TaskId,
        now: DateTime<Utc>,
    ) -> Result<u64>;

    /// Applies a state-machine input to a reminder (monotonic: terminal states absorb) and returns it.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    async fn transition_reminder(
        &self,
        id: ReminderId,
        input: &ReminderInput,
        now: DateTime<Utc>,
    ) -> Result<Reminder>;

    /// Claims up to `limit` pending, not yet fired reminders due at `now`, for `lease`. A claim whose lease
    /// expired (its claimer crashed) is claimed again. Two claimers never hold the same reminder. Times are compared
    /// in whole milliseconds, so a reminder due later in the same millisecond as `now` is claimed too; a caller that
    /// must never act early asks for what was due a millisecond before.
    ///
    /// # Errors
    /// Backend errors.
    async fn claim_due_reminders(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ReminderClaim>>;

    /// Marks a claimed reminder fired and writes its trigger event, in one transaction; false when the claim
    /// was lost (lease expired and another claimer fired it).
    ///
    /// # Errors
    /// Backend errors.
    async fn fire_reminder(
        &self,
        id: ReminderId,
        lease_token: Uuid,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Applies each trigger (a reminder that already left PENDING keeps its state) and records the audit row of
    /// every reminder that ends TRIGGERED (insert-if-absent, so a redelivery adds nothing), all in one transaction.
    /// One answer per trigger, in order: the reminder as it ends, or `None` when it does not exist.
    ///
    /// # Errors
    /// Backend errors (then nothing was applied).
    async fn trigger_reminders(
        &self,
        triggers: &[ReminderTrigger],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Reminder>>>;

    /// [`Store::fire_reminder`] for several claimed reminders in one transaction; one answer per reminder, in
    /// order (false where the claim was lost).
    ///
    /// # Errors
    /// Backend errors (then none of them fired).
    async fn fire_reminders(&self, fires: &[ReminderFire], now: DateTime<Utc>)
    -> Result<Vec<bool>>;

    /// The earliest `remind_at` of a pending reminder not yet fired.
    ///
    /// # Errors
    /// Backend errors.
    async fn next_reminder_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// A [`Wakeup`] armed now, for the next commit that may have created or changed a pending reminder. Arm it
    /// before reading [`Store::next_reminder_at`], then wait on it: a reminder committed in between still wakes it.
    fn reminders_changed(&self) -> Wakeup;

    // --- audit ---------------------------------------------------------------------------------------------

    /// Inserts the audit row of an event unless one with its id exists; returns whether it inserted.
    ///
    /// # Errors
    /// Backend errors.
    async fn record_audit(&self, event: &Event, recorded_at: DateTime<Utc>) -> Result<bool>;

    /// [`Store::record_audit`] for several events in one transaction (one write, one commit): all rows or none.
    /// Returns how many rows it inserted (events whose id already has a row, also twice in `events`, insert none).
    ///
    /// # Errors
    /// Backend errors.
    async fn record_audits(&self, events: &[&Event], recorded_at: DateTime<Utc>) -> Result<u64>;

    /// `owner`'s audit log, newest first.
    ///
    /// # Errors
    /// [`Error::InvalidCursor`].
    async fn list_audit(
        &self,
        owner: UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<AuditPage>;

    // --- outbox --------------------------------------------------------------------------------------------

    /// Up to `limit` unpublished rows in sequence order.
    ///
    /// # Errors
    /// Backend errors.
    async fn unpublished_outbox(&self, limit: usize) -> Result<Vec<OutboxRecord>>;

    /// Marks rows published.
    ///
    /// # Errors
    /// Backend errors.
    async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> Result<()>;

    /// Number of unpublished rows.
    ///
    /// # Errors
    /// Backend errors.
    async fn outbox_backlog(&self) -> Result<i64>;

    /// Deletes up to `limit` outbox rows, oldest first, written before `before` that nothing needs any more;
    /// returns how many. A row is deleted only when
    ///
    /// - every reader of its topic in `readers` has a stored cursor at or past it (a reader without a cursor has
    ///   passed nothing), and
    /// - it was published before `before`, or its topic has a reader in `readers` (in the embedded mode nothing is
    ///   published: the outbox is the log, and a row of a topic nobody reads, such as a dead letter, stays), and
    /// - it is not the newest row of its topic (the log's bounds, [`Store::outbox_bounds`], stay meaningful).
    ///
    /// It also raises [`Store::outbox_pruned_through`] to the highest sequence it deleted, in the same transaction.
    ///
    /// # Errors
    /// Backend errors.
    async fn prune_outbox(
        &self,
        before: DateTime<Utc>,
        readers: &[OutboxReader],
        limit: u32,
    ) -> Result<u64>;

    /// The highest sequence [`Store::prune_outbox`] has ever deleted (0 when it never deleted a row): every row
    /// after it that was written is still in the outbox. A reader that resumes from a sequence at or past it misses
    /// nothing by reading the outbox after that sequence.
    ///
    /// # Errors
    /// Backend errors.
    async fn outbox_pruned_through(&self) -> Result<i64>;

    /// Takes the relay lease unless another relay holds it (`None` then). On PostgreSQL it is a session-level
    /// advisory lock on a connection of its own, so it is freed when its holder's process or connection dies; on
    /// SQLite it is held within the process.
    ///
    /// # Errors
    /// Backend errors.
    async fn try_acquire_relay_lease(&self) -> Result<Option<RelayLease>>;

    /// A [`Wakeup`] armed now, for the next commit that may have added outbox rows. Arm it before reading the
    /// outbox, then wait on it: rows committed in between still wake it.
    fn outbox_changed(&self) -> Wakeup;

    /// Up to `limit` rows of `topic` with a sequence greater than `after`, in order.
    ///
    /// # Errors
    /// Backend errors.
    async fn outbox_after(
        &self,
        topic: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>>;

    /// Lowest and highest sequence of `topic` (`(0, 0)` when empty).
    ///
    /// # Errors
    /// Backend errors.
    async fn outbox_bounds(&self, topic: &str) -> Result<(i64, i64)>;

    /// Appends raw rows; returns their sequences.
    ///
    /// # Errors
    /// Backend errors.
    async fn append_outbox(&self, records: &[NewOutboxRecord]) -> Result<Vec<i64>>;

    /// The stored cursor of a consumer (0 when none).
    ///
    /// # Errors
    /// Backend errors.
    async fn cursor(&self, consumer: &str) -> Result<i64>;

    /// Stores a consumer's cursor.
    ///
    /// # Errors
    /// Backend errors.
    async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<()>;
}

/// The store as a shared trait object.
pub type DynStore = dyn Store;
