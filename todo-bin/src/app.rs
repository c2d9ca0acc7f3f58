//! Wiring: the store, the broker, the workers and the HTTP server, from typed configuration.
//!
//! Both deployments share this code: the embedded default (SQLite + the outbox as the in-process broker) and the
//! distributed one (PostgreSQL + Kafka). Only the transport under the consumer runtime differs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use todo_kafka::{
    ConsumerConfig, ConsumerRuntime, Handler, LogReader, Metrics, Publisher, RetryPolicy,
    Subscriber, TopicAdmin,
};
use todo_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerConfig, RetryConfig, StoreConfig, Worker};
use crate::consumers::{self, FaultInjection, groups};
use crate::embedded::{OutboxBroker, OutboxLog};
use crate::http::{Readiness, StreamHub};
use crate::workers::{OutboxPruner, Relay, RelayConfig, Scheduler};

/// Opens the store and applies its migrations.
///
/// # Errors
/// When the database cannot be reached or migrated; the message names `--database-url`.
pub async fn open_store(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match config {
        StoreConfig::Sqlite { path } => {
            // `:memory:` names one database for the whole pool, not one per pooled connection.
            let cfg = if path.as_os_str() == ":memory:" {
                todo_store::SqliteConfig::memory()
            } else {
                todo_store::SqliteConfig::file(path)
            };
            Arc::new(
                todo_store::SqliteStore::connect(&cfg)
                    .await
                    .with_context(|| {
                        format!(
                            "--database-url: cannot open SQLite database {}",
                            path.display()
                        )
                    })?,
            )
        }
        StoreConfig::Postgres {
            url,
            max_connections,
        } => {
            let cfg = todo_store::PgConfig::new(url.clone()).with_max_connections(*max_connections);
            Arc::new(todo_store::PgStore::connect(&cfg).await.with_context(|| {
                format!(
                    "--database-url: cannot connect to {}",
                    crate::config::redact_url(url)
                )
            })?)
        }
    };
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    Ok(store)
}

/// The broker a process uses.
#[derive(Clone)]
pub enum Broker {
    /// The outbox as the in-process log.
    Embedded(Arc<OutboxBroker>),
    /// Kafka or Redpanda.
    Kafka(Arc<todo_kafka::KafkaBroker>),
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broker::Embedded(_) => f.write_str("Broker::Embedded"),
            Broker::Kafka(_) => f.write_str("Broker::Kafka"),
        }
    }
}

impl Broker {
    /// Creates the broker the configuration names.
    ///
    /// # Errors
    /// When the Kafka client cannot be created (bad settings); the message names `--kafka-brokers`.
    pub fn new(config: &BrokerConfig, store: &Arc<dyn Store>) -> anyhow::Result<Self> {
        Ok(match config {
            BrokerConfig::Embedded => {
                let log: Arc<dyn OutboxLog> = Arc::new(StoreLog(store.clone()));
                Broker::Embedded(Arc::new(OutboxBroker::new(log)))
            }
            BrokerConfig::Kafka { brokers, options } => {
                let mut cfg = todo_kafka::KafkaConfig::new(brokers.clone());
                cfg.client_id = "todo".into();
                cfg.extra = options.clone();
                Broker::Kafka(Arc::new(
                    todo_kafka::KafkaBroker::new(&cfg)
                        .context("--kafka-brokers: cannot create the Kafka client")?,
                ))
            }
        })
    }

    /// The publishing side.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        match self {
            Broker::Embedded(b) => b.clone(),
            Broker::Kafka(b) => b.clone(),
        }
    }

    /// The consuming side.
    pub fn subscriber(&self) -> Arc<dyn Subscriber> {
        match self {
            Broker::Embedded(b) => b.clone(),
            Broker::Kafka(b) => b.clone(),
        }
    }

    /// Direct log reads (dead-letter tools).
    pub fn reader(&self) -> Arc<dyn LogReader> {
        match self {
            Broker::Embedded(b) => b.clone(),
            Broker::Kafka(b) => b.clone(),
        }
    }

    /// Whether events flow through an external broker (then the relay must run).
    pub fn is_external(&self) -> bool {
        matches!(self, Broker::Kafka(_))
    }
}

/// The store's outbox as the embedded broker's log.
pub(crate) struct StoreLog(pub(crate) Arc<dyn Store>);

fn log_error(e: todo_store::Error) -> todo_kafka::Error {
    todo_kafka::Error::Backend {
        backend: "outbox",
        context: "reading the outbox".into(),
        source: Box::new(e),
    }
}

#[async_trait::async_trait]
impl OutboxLog for StoreLog {
    async fn read_after(
        &self,
        topic: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::embedded::LogRecord>, todo_kafka::Error> {
        let rows = self
            .0
            .outbox_after(topic, after, limit)
            .await
            .map_err(log_error)?;
        Ok(rows
            .into_iter()
            .map(|r| crate::embedded::LogRecord {
                seq: r.seq,
                topic: r.topic,
                key: r.key,
                headers: r.headers,
                payload: r.payload,
                timestamp_ms: r.created_at.timestamp_millis(),
            })
            .collect())
    }

    async fn max_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error> {
        self.0
            .outbox_bounds(topic)
            .await
            .map(|(_, max)| max)
            .map_err(log_error)
    }

    async fn min_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error> {
        self.0
            .outbox_bounds(topic)
            .await
            .map(|(min, _)| min)
            .map_err(log_error)
    }

    async fn append(
        &self,
        records: &[todo_kafka::OutgoingRecord],
    ) -> Result<Vec<i64>, todo_kafka::Error> {
        let rows: Vec<todo_store::NewOutboxRecord> = records
            .iter()
            .map(|r| todo_store::NewOutboxRecord {
                topic: r.topic.clone(),
                key: r.key.clone(),
                headers: r.headers.clone(),
                payload: r.value.clone(),
            })
            .collect();
        self.0.append_outbox(&rows).await.map_err(log_error)
    }

    async fn cursor(&self, consumer: &str) -> Result<i64, todo_kafka::Error> {
        self.0.cursor(consumer).await.map_err(log_error)
    }

    async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<(), todo_kafka::Error> {
        self.0.set_cursor(consumer, seq).await.map_err(log_error)
    }

    fn changed(&self) -> todo_store::Wakeup {
        self.0.outbox_changed()
    }
}

/// What the workers need besides the store and the broker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Retry delays of retryable handler failures.
    pub retry: RetryConfig,
    /// Fault injection for drills.
    pub faults: FaultInjection,
    /// How long a claimed reminder stays claimed.
    pub reminder_lease: Duration,
    /// The outbox relay and pruning.
    pub relay: RelayConfig,
}

/// Running workers and their counters.
pub struct Workers {
    tasks: JoinSet<()>,
    /// Counters of each consumer group.
    pub metrics: Vec<(&'static str, Metrics)>,
}

impl Workers {
    /// Waits for every worker to stop (after the shutdown token was cancelled).
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The consumer group of a worker and the topics it reads.
fn group_topics(worker: Worker) -> Option<(&'static str, Vec<String>)> {
    match worker {
        Worker::Relay | Worker::Scheduler => None,
        Worker::Audit => Some((groups::AUDIT, consumers::AuditConsumer::topics())),
        Worker::Recurrence => Some((groups::RECURRENCE, consumers::RecurrenceConsumer::topics())),
        Worker::Reminders => Some((groups::REMINDERS, consumers::ReminderConsumer::topics())),
        Worker::Suppression => Some((
            groups::SUPPRESSION,
            consumers::SuppressionConsumer::topics(),
        )),
    }
}

/// The cursors of every consumer group of the embedded mode, whether this process runs it or not: outbox pruning
/// keeps each row until all of those reading its topic passed it.
pub fn embedded_readers() -> Vec<todo_store::OutboxReader> {
    Worker::ALL
        .into_iter()
        .filter_map(group_topics)
        .flat_map(|(group, topics)| {
            topics
                .into_iter()
                .map(move |topic| todo_store::OutboxReader {
                    consumer: crate::embedded::cursor_name(group, &topic),
                    topic,
                })
        })
        .collect()
}

/// Starts the selected workers.
pub fn spawn_workers(
    selection: &[Worker],
    store: &Arc<dyn Store>,
    broker: &Broker,
    settings: &WorkerSettings,
    shutdown: &CancellationToken,
) -> Workers {
    let mut tasks = JoinSet::new();
    let mut metrics = Vec::new();
    for worker in selection {
        let consumer: Option<(&'static str, Vec<String>, Arc<dyn Handler>)> = match worker {
            Worker::Relay => {
                if broker.is_external() {
                    let relay = Relay::with_config(
                        store.clone(),
                        broker.publisher(),
                        settings.relay.clone(),
                    );
                    tasks.spawn(relay.run(shutdown.clone()));
                } else {
                    // The outbox is the log: only what every consumer group has read may go.
                    let pruner = OutboxPruner::new(
                        store.clone(),
                        embedded_readers(),
                        settings.relay.retention,
                    );
                    tasks.spawn(pruner.run(settings.relay.prune_every, shutdown.clone()));
                }
                None
            }
            Worker::Scheduler => {
                let scheduler = Scheduler::new(store.clone(), settings.reminder_lease);
                tasks.spawn(scheduler.run(shutdown.clone()));
                None
            }
            Worker::Audit => Some((
                groups::AUDIT,
                consumers::AuditConsumer::topics(),
                Arc::new(consumers::AuditConsumer::new(
                    store.clone(),
                    settings.faults.clone(),
                )),
            )),
            Worker::Recurrence => Some((
                groups::RECURRENCE,
                consumers::RecurrenceConsumer::topics(),
                Arc::new(consumers::RecurrenceConsumer::new(
                    store.clone(),
                    settings.faults.clone(),
                )),
            )),
            Worker::Reminders => Some((
                groups::REMINDERS,
                consumers::ReminderConsumer::topics(),
                Arc::new(consumers::ReminderConsumer::new(
                    store.clone(),
                    settings.faults.clone(),
                )),
            )),
            Worker::Suppression => Some((
                groups::SUPPRESSION,
                consumers::SuppressionConsumer::topics(),
                Arc::new(consumers::SuppressionConsumer::new(
                    store.clone(),
                    settings.faults.clone(),
                )),
            )),
        };
        if let Some((group, topics, handler)) = consumer {
            let mut config = ConsumerConfig::new(group, topics).with_retry(RetryPolicy {
                delays: settings.retry.delays.clone(),
                jitter: 0.0,
            });
            if !broker.is_external() {
                // Embedded: commits are cheap row updates; keep the stored cursor close behind the work.
                config.commit_interval = Duration::from_millis(200);
            }
            let runtime = ConsumerRuntime::new(config, handler, broker.publisher());
            metrics.push((group, runtime.metrics()));
            let subscriber = broker.subscriber();
            let token = shutdown.clone();
            tasks.spawn(async move {
                let mut delay = Duration::from_millis(500);
                loop {
                    match runtime.run(subscriber.as_ref(), token.clone()).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::error!(group, error = %e, "consumer stopped; restarting");
                            tokio::select! {
                                () = token.cancelled() => break,
                                () = tokio::time::sleep(delay) => {}
                            }
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                    }
                }
            });
        }
    }
    let exported = metrics.clone();
    let token = shutdown.clone();
    tasks.spawn(async move {
        loop {
            for (group, m) in &exported {
                let s = m.snapshot();
                metrics::gauge!("todo_consumer_lag", "group" => *group).set(s.lag as f64);
                metrics::gauge!("todo_consumer_processed", "group" => *group)
                    .set(s.processed as f64);
                metrics::gauge!("todo_consumer_retries", "group" => *group).set(s.retried as f64);
                metrics::gauge!("todo_consumer_dead_lettered", "group" => *group)
                    .set(s.dead_lettered as f64);
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    Workers { tasks, metrics }
}

/// Feeds the live stream from the outbox: every committed event of the three topics, whoever wrote it, once.
///
/// Sequence numbers are taken when a row is written, and on PostgreSQL rows commit in any order: a reader that moved
/// past every sequence it read would pass for good a row that commits after a later one was read. The feed moves its
/// position only over what it published and over gaps open for [`FeedPosition::GRACE`] (a row of another topic, a
/// write rolled back), and publishes rows past a gap at once, each once however often it reads them.
///
/// The feed starts at the end of the outbox as it is when this returns, so a stream opened afterwards gets every event
/// committed after it opened. While no stream is open it skips ahead instead of reading (see [`skipped_ahead`]).
/// On PostgreSQL a write still in flight when the end is read, whose row takes an earlier sequence than that end,
/// is passed over.
pub async fn spawn_stream_feed(store: Arc<dyn Store>, hub: StreamHub, shutdown: CancellationToken) {
    let log = StoreLog(store);
    let mut position = FeedPosition::new(outbox_end(&log).await);
    hub.advance(position.done);
    tokio::spawn(async move {
        let topics = todo_events::Topic::ALL.map(todo_events::Topic::name);
        let mut skipped = std::time::Instant::now();
        loop {
            // Armed before the reads: events committed while they run still wake the feed.
            let changed = log.changed();
            let mut published = false;
            if hub.receivers() == 0 {
                // Nobody listens: skip ahead instead of reading, at most every `SKIP_AHEAD` (every commit wakes
                // the feed, and finding the end takes a read per topic). A stream opened meanwhile may begin with
                // events of the last `SKIP_AHEAD`.
                const SKIP_AHEAD: Duration = Duration::from_millis(100);
                if skipped.elapsed() >= SKIP_AHEAD {
                    if let Some(ahead) = skipped_ahead(&hub, outbox_end(&log)).await {
                        position = ahead;
                    }
                    skipped = std::time::Instant::now();
                }
            } else {
                let mut rows = Vec::new();
                let mut complete = true;
                for topic in topics {
                    match log.read_after(topic, position.done, 256).await {
                        Ok(mut read) => rows.append(&mut read),
                        // A topic left unread would look like a gap: read again after the wait.
                        Err(_) => complete = false,
                    }
                }
                if complete {
                    rows.sort_unstable_by_key(|r| r.seq);
                    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                    // In the order of `rows`, so one pass over both picks the rows to publish.
                    let mut fresh = position
                        .read(&seqs, std::time::Instant::now())
                        .into_iter()
                        .peekable();
                    for row in &rows {
                        if fresh.next_if_eq(&row.seq).is_none() {
                            continue;
                        }
                        published = true;
                        if let Ok(event) = todo_events::binding::decode(&row.headers, &row.payload)
                        {
                            // Every row up to `position.done` is published or given up: a stream resumes from
                            // there when an earlier row is still missing (on PostgreSQL, a write in flight).
                            hub.publish(row.seq, row.seq.min(position.done), event);
                        }
                    }
                }
            }
            hub.advance(position.done);
            if !published {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tokio::time::timeout(Duration::from_secs(1), changed) => {}
                }
            }
        }
    });
}

/// The last sequence of the outbox's three topics (0 when it is empty or cannot be read).
async fn outbox_end(log: &StoreLog) -> i64 {
    let mut end = 0;
    for topic in todo_events::Topic::ALL.map(todo_events::Topic::name) {
        end = end.max(log.max_seq(topic).await.unwrap_or(0));
    }
    end
}

/// The feed's position after skipping ahead to `end`, the end of the outbox, while no stream was open; `None` when
/// a stream opened while that end was read. That stream must get every event committed after it opened, and some of
/// them may be before the end read: the feed then keeps its position, and reads from there.
async fn skipped_ahead(hub: &StreamHub, end: impl Future<Output = i64>) -> Option<FeedPosition> {
    let end = end.await;
    (hub.receivers() == 0).then(|| FeedPosition::new(end))
}

/// Where the live stream reads the outbox ([`spawn_stream_feed`]).
#[derive(Debug)]
struct FeedPosition {
    /// Every sequence up to this one was published or given up.
    done: i64,
    /// Sequences after `done` already published.
    published: std::collections::BTreeSet<i64>,
    /// Since when the sequence after `done` has been missing while a later one was published.
    gap: Option<(i64, std::time::Instant)>,
}

impl FeedPosition {
    /// How long a missing sequence is waited for: a write that took it may still commit.
    const GRACE: Duration = Duration::from_secs(5);

    fn new(done: i64) -> Self {
        FeedPosition {
            done,
            published: std::collections::BTreeSet::new(),
            gap: None,
        }
    }

    /// Takes the sequences read after `done` (ascending), returns those to publish (the ones not published yet, in
    /// the same order), and moves `done` over what is published and over a gap open for [`Self::GRACE`].
    fn read(&mut self, seqs: &[i64], now: std::time::Instant) -> Vec<i64> {
        let fresh: Vec<i64> = seqs
            .iter()
            .copied()
            .filter(|&seq| seq > self.done && self.published.insert(seq))
            .collect();
        loop {
            while self.published.first() == Some(&(self.done + 1)) {
                self.published.pop_first();
                self.done += 1;
            }
            let Some(&next) = self.published.first() else {
                self.gap = None;
                break;
            };
            match self.gap {
                Some((at, since)) if at == self.done => {
                    if now.duration_since(since) < Self::GRACE {
                        break;
                    }
                    // Given up: whatever took these sequences did not commit in time (or is of another topic).
                    self.done = next - 1;
                    self.gap = None;
                }
                _ => {
                    self.gap = Some((self.done, now));
                    break;
                }
            }
        }
        fresh
    }
}

/// `/readyz`: the database answers, and the Kafka cluster answers when there is one.
pub struct Ready {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The broker.
    pub broker: Broker,
}

#[async_trait::async_trait]
impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        self.store
            .ping()
            .await
            .map_err(|e| format!("database: {e}"))?;
        if let Broker::Kafka(k) = &self.broker {
            let probe = k.describe_topic(todo_events::Topic::TaskEvents.name());
            match tokio::time::timeout(Duration::from_secs(3), probe).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("broker: {e}")),
                Err(_) => return Err("broker: no answer within 3 s".into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use todo_kafka::OutgoingRecord;
    use todo_store::Store;
    use tokio_util::sync::CancellationToken;

    use super::{
        FeedPosition, OutboxLog as _, StoreLog, StreamHub, skipped_ahead, spawn_stream_feed,
    };

    /// A record of a `task.deleted` event of a new user, as the store's outbox holds events.
    fn deleted_event() -> (OutgoingRecord, uuid::Uuid) {
        let event = crate::testing::task_deleted(uuid::Uuid::new_v4());
        (OutgoingRecord::from_event(&event), event.id())
    }

    /// A feed spawned over a fresh store, and a stream subscribed to its hub.
    async fn feed() -> (
        Arc<dyn Store>,
        CancellationToken,
        tokio::sync::broadcast::Receiver<Arc<crate::http::Published>>,
    ) {
        let store = crate::testing::memory_store().await;
        let hub = StreamHub::default();
        let shutdown = CancellationToken::new();
        spawn_stream_feed(store.clone(), hub.clone(), shutdown.clone()).await;
        (store, shutdown, hub.subscribe())
    }

    /// A stream opened right after the feed was spawned gets an event committed before the feed's task first ran:
    /// the feed's starting point is read before `spawn_stream_feed` returns, not later by its task, which would
    /// start past that event. (The commit runs on another thread while this runtime's only thread waits for it, so
    /// the feed's task cannot run before it.)
    #[tokio::test(flavor = "current_thread")]
    async fn an_event_committed_before_the_feeds_task_first_runs_reaches_an_open_stream() {
        let (store, shutdown, mut stream) = feed().await;

        let (record, id) = deleted_event();
        let writer = StoreLog(store.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(writer.append(&[record]))
                .expect("append");
        })
        .join()
        .expect("writer thread");

        let event = tokio::time::timeout(Duration::from_secs(10), stream.recv())
            .await
            .expect("the event within 10 s")
            .expect("received");
        assert_eq!(event.event.id(), id);
        shutdown.cancel();
    }

    /// An event published past a missing sequence (a write still in flight, or a row of another topic) carries that
    /// gap's start as where a stream resumes from, not its own sequence: a client resuming from there gets the
    /// missing row if it commits.
    #[tokio::test]
    async fn an_event_past_a_gap_resumes_from_before_the_gap() {
        let (store, shutdown, mut stream) = feed().await;

        let (before, _) = deleted_event();
        let (after, _) = deleted_event();
        // A dead letter: a row of a topic the feed does not read.
        let (mut gap, _) = deleted_event();
        gap.topic = "todo.task-events.dlq".into();
        let seqs = StoreLog(store.clone())
            .append(&[before, gap, after])
            .await
            .expect("append");
        let mut received = Vec::new();
        for _ in 0..2 {
            let published = tokio::time::timeout(Duration::from_secs(10), stream.recv())
                .await
                .expect("an event within 10 s")
                .expect("received");
            received.push((published.seq, published.resume_from));
        }
        assert_eq!(received, [(seqs[0], seqs[0]), (seqs[2], seqs[0])]);
        shutdown.cancel();
    }

    /// The feed skips ahead to the end of the outbox only while no stream is open: a stream that opens while the
    /// end is being read keeps the feed where it was, since events committed after the stream opened may lie
    /// before that end.
    #[tokio::test]
    async fn the_feed_does_not_skip_past_a_stream_opened_while_it_reads_the_end() {
        let hub = StreamHub::default();
        let quiet = skipped_ahead(&hub, async { 42 }).await;
        assert_eq!(quiet.map(|p| p.done), Some(42), "nobody listens: skip");

        let mut opened = None;
        let busy = skipped_ahead(&hub, async {
            opened = Some(hub.subscribe());
            43
        })
        .await;
        assert!(opened.is_some());
        assert!(
            busy.is_none(),
            "a stream opened while the end was read: the feed keeps its position"
        );
    }

    #[test]
    fn the_feed_publishes_rows_in_order_once() {
        let now = Instant::now();
        let mut position = FeedPosition::new(10);
        assert_eq!(position.read(&[11, 12, 13], now), [11, 12, 13]);
        assert_eq!(position.done, 13);
        assert!(position.read(&[], now).is_empty());
        assert_eq!(position.read(&[14], now), [14]);
        assert_eq!(position.done, 14);
    }

    /// A row that commits after a later one was read is still published, and the later one only once.
    #[test]
    fn a_row_committed_late_is_not_passed() {
        let now = Instant::now();
        let mut position = FeedPosition::new(0);
        // 2 committed while 1 was still being written.
        assert_eq!(position.read(&[2], now), [2]);
        assert_eq!(position.done, 0, "the feed waits at the gap");
        assert!(
            position
                .read(&[2], now + Duration::from_millis(10))
                .is_empty()
        );
        assert_eq!(
            position.read(&[1, 2, 3], now + Duration::from_millis(20)),
            [1, 3]
        );
        assert_eq!(position.done, 3);
        assert!(position.published.is_empty());
    }

    /// A sequence that never shows up (a rolled-back write, a row of another topic) holds the position for the grace
    /// period only; rows after it are published meanwhile.
    #[test]
    fn a_gap_is_given_up_after_the_grace_period() {
        let start = Instant::now();
        let mut position = FeedPosition::new(0);
        assert_eq!(position.read(&[1, 3], start), [1, 3]);
        assert_eq!(position.done, 1);
        let almost = start + FeedPosition::GRACE - Duration::from_millis(1);
        assert_eq!(position.read(&[3, 4], almost), [4]);
        assert_eq!(position.done, 1);
        assert!(
            position
                .read(&[3, 4], start + FeedPosition::GRACE)
                .is_empty()
        );
        assert_eq!(position.done, 4);
        assert!(position.gap.is_none());
        // A later gap waits its own grace period.
        let later = start + FeedPosition::GRACE * 2;
        assert_eq!(position.read(&[6], later), [6]);
        assert_eq!(position.done, 4);
        assert!(position.read(&[6], later + FeedPosition::GRACE).is_empty());
        assert_eq!(position.done, 6);
    }
}
