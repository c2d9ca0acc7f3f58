//! The in-process broker of the embedded mode: the outbox table is the durable log.
//!
//! [`OutboxBroker`] implements the `todo-kafka` ports over the store's outbox, so the embedded mode runs the very
//! same [`ConsumerRuntime`](todo_kafka::ConsumerRuntime), handlers, retries and dead-letter handling as the
//! distributed mode:
//!
//! - every topic has one partition, partition 0; an offset is an outbox sequence number;
//! - a consumer group's committed offset of a topic is a cursor row in the store (`<group>/<topic>`), so a group
//!   resumes after a crash exactly where its committed work ended, and an acknowledged write (its outbox row
//!   committed with the state change) is never lost;
//! - publishing appends outbox rows: that is how dead-lettered messages (topic `<topic>.dlq`) and replays are
//!   written, durably, in embedded mode;
//! - the subscriptions of one broker share the newest records of each topic (`Tail`): every commit wakes every
//!   consumer, and the first to read the commit's records from the store serves them to the others.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use todo_kafka::{
    Ack, Delivery, LogReader, OutgoingRecord, PartitionOffsets, Publisher, Subscriber,
    Subscription, TopicPartition,
};

/// One row of the outbox log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number: the offset.
    pub seq: i64,
    /// Topic.
    pub topic: String,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Value bytes.
    pub payload: Vec<u8>,
    /// Creation time, milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// What the embedded broker needs from the store.
#[async_trait]
pub trait OutboxLog: Send + Sync + 'static {
    /// Up to `limit` records of `topic` with a sequence greater than `after`, in order.
    async fn read_after(
        &self,
        topic: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>, todo_kafka::Error>;
    /// The highest sequence of `topic` (0 when empty).
    async fn max_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error>;
    /// The lowest sequence still kept of `topic` (0 when empty).
    async fn min_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error>;
    /// Appends records; returns their sequences.
    async fn append(&self, records: &[OutgoingRecord]) -> Result<Vec<i64>, todo_kafka::Error>;
    /// The stored cursor of a consumer (0 when none).
    async fn cursor(&self, consumer: &str) -> Result<i64, todo_kafka::Error>;
    /// Stores a consumer's cursor.
    async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<(), todo_kafka::Error>;
    /// A wake-up armed now, for the next commit that may add records: arm it before reading, then wait on it, and
    /// records committed in between still wake it.
    fn changed(&self) -> todo_store::Wakeup;
}

/// The embedded broker over an [`OutboxLog`].
#[derive(Clone)]
pub struct OutboxBroker {
    log: Arc<dyn OutboxLog>,
    /// How long a subscription waits for a commit before it reads anyway ([`POLL`]).
    poll: Duration,
    /// The newest records of each topic, shared by the subscriptions.
    tail: Arc<Tail>,
}

impl std::fmt::Debug for OutboxBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxBroker")
    }
}

impl OutboxBroker {
    /// A broker over `log`.
    pub fn new(log: Arc<dyn OutboxLog>) -> Self {
        OutboxBroker {
            log,
            poll: POLL,
            tail: Arc::default(),
        }
    }
}

#[async_trait]
impl Publisher for OutboxBroker {
    async fn publish_batch(&self, records: Vec<OutgoingRecord>) -> Vec<todo_kafka::Result<Ack>> {
        match self.log.append(&records).await {
            Ok(seqs) => seqs
                .into_iter()
                .map(|offset| {
                    Ok(Ack {
                        partition: 0,
                        offset,
                    })
                })
                .collect(),
            Err(e) => {
                let text = e.to_string();
                records
                    .iter()
                    .map(|_| {
                        Err(todo_kafka::Error::Backend {
                            backend: "outbox",
                            context: "appending to the outbox".into(),
                            source: text.clone().into(),
                        })
                    })
                    .collect()
            }
        }
    }
}

#[async_trait]
impl LogReader for OutboxBroker {
    async fn partitions(&self, topic: &str) -> todo_kafka::Result<Vec<PartitionOffsets>> {
        let low = self.log.min_seq(topic).await?;
        let high = self.log.max_seq(topic).await? + 1;
        Ok(vec![PartitionOffsets {
            partition: 0,
            low: low.min(high),
            high,
        }])
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> todo_kafka::Result<Vec<Delivery>> {
        if partition != 0 {
            return Err(todo_kafka::Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            });
        }
        let rows = self.log.read_after(topic, from - 1, max).await?;
        Ok(rows.into_iter().map(delivery).collect())
    }
}

fn delivery(r: LogRecord) -> Delivery {
    Delivery {
        topic: r.topic,
        partition: 0,
        offset: r.seq,
        key: r.key,
        headers: r.headers.into_iter().collect(),
        payload: Some(r.payload),
        timestamp: Some(r.timestamp_ms),
    }
}

#[async_trait]
impl Subscriber for OutboxBroker {
    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> todo_kafka::Result<Box<dyn Subscription>> {
        if group.is_empty() || topics.is_empty() {
            return Err(todo_kafka::Error::Config(
                "a subscription needs a group and at least one topic".into(),
            ));
        }
        let mut state = BTreeMap::new();
        for topic in topics {
            let committed = self.log.cursor(&cursor_name(group, topic)).await?;
            state.insert(
                topic.clone(),
                TopicState {
                    fetched: committed,
                    committed,
                    pending: BTreeSet::new(),
                },
            );
        }
        Ok(Box::new(OutboxSubscription {
            log: self.log.clone(),
            tail: self.tail.clone(),
            poll: self.poll,
            group: group.to_owned(),
            inner: Mutex::new(Inner {
                topics: state,
                buffer: VecDeque::new(),
                paused: HashSet::new(),
                closed: false,
                caught_up: None,
                // Its first read may take what the shared tail holds, as any other within a poll interval.
                read_log_at: Instant::now(),
            }),
            fetch: tokio::sync::Mutex::new(()),
        }))
    }
}

/// The store cursor of a consumer group's position in a topic.
pub(crate) fn cursor_name(group: &str, topic: &str) -> String {
    format!("{group}/{topic}")
}

struct TopicState {
    /// Highest sequence handed out.
    fetched: i64,
    /// Highest sequence committed durably.
    committed: i64,
    /// Handed out but not yet stored.
    pending: BTreeSet<i64>,
}

impl TopicState {
    /// Everything up to this sequence is processed.
    fn processed_up_to(&self) -> i64 {
        self.pending.first().map_or(self.fetched, |first| first - 1)
    }
}

struct Inner {
    topics: BTreeMap<String, TopicState>,
    buffer: VecDeque<Delivery>,
    paused: HashSet<String>,
    closed: bool,
    /// Armed before a read that reached the end of every topic it read: until it fires, nothing was committed
    /// since, and another read would find nothing.
    caught_up: Option<todo_store::Wakeup>,
    /// When the subscription last read the log itself rather than the shared tail.
    read_log_at: Instant,
}

struct OutboxSubscription {
    log: Arc<dyn OutboxLog>,
    tail: Arc<Tail>,
    poll: Duration,
    group: String,
    inner: Mutex<Inner>,
    fetch: tokio::sync::Mutex<()>,
}

const BATCH: usize = 256;

impl OutboxSubscription {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Option<Delivery>> {
        let mut inner = self.lock();
        if inner.closed {
            return Some(None);
        }
        let paused = inner.paused.clone();
        let pos = inner
            .buffer
            .iter()
            .position(|d| !paused.contains(&d.topic))?;
        let d = inner.buffer.remove(pos)?;
        if let Some(t) = inner.topics.get_mut(&d.topic) {
            t.pending.insert(d.offset);
        }
        Some(Some(d))
    }

    /// Reads the next batch of every unpaused topic into the buffer: from the shared tail where it holds them, else
    /// from the log. At least every poll interval it reads the log itself: another process's writes wake nobody
    /// here, and the tail knows only what this process read.
    async fn fill(&self) -> todo_kafka::Result<Fill> {
        let (positions, from_log): (Vec<(String, i64)>, bool) = {
            let mut inner = self.lock();
            let positions = inner
                .topics
                .iter()
                .filter(|(t, _)| !inner.paused.contains(*t))
                .map(|(t, s)| (t.clone(), s.fetched))
                .collect();
            let from_log = inner.read_log_at.elapsed() >= self.poll;
            if from_log {
                inner.read_log_at = Instant::now();
            }
            (positions, from_log)
        };
        let mut fill = Fill {
            rows: 0,
            at_end: true,
        };
        for (topic, after) in positions {
            let shared = if from_log {
                None
            } else {
                self.tail.read(&topic, after, BATCH)
            };
            let (rows, at_end) = match shared {
                Some(read) => read,
                None => {
                    // Armed before the read: until it fires, nothing follows what the read found.
                    let armed = self.log.changed();
                    let rows = self.log.read_after(&topic, after, BATCH).await?;
                    let at_end = rows.len() < BATCH;
                    self.tail
                        .keep(&topic, after, &rows, at_end.then_some(armed));
                    (rows, at_end)
                }
            };
            fill.at_end &= at_end;
            if rows.is_empty() {
                continue;
            }
            fill.rows += rows.len();
            let mut inner = self.lock();
            if let Some(last) = rows.last()
                && let Some(t) = inner.topics.get_mut(&topic)
            {
                t.fetched = t.fetched.max(last.seq);
            }
            inner.buffer.extend(rows.into_iter().map(delivery));
        }
        Ok(fill)
    }
}

/// The newest records of each topic, read from the log by one subscription of a broker and served to the others.
///
/// Every commit with events wakes every consumer of the embedded mode, and three of them read `task-events`: without
/// it, each read the same rows from the store and copied them out. Sequence numbers grow in commit order (SQLite
/// has one writer at a time), so a read of the log returns every record of the topic between where it started and
/// the last record it found; the tail keeps such a stretch, up to [`TAIL`] records, and a subscription whose
/// position falls inside it takes its records from there. Whether anything follows the stretch is known only while
/// the wake-up armed before the read that found its end has not fired: until then, this process committed nothing
/// since. Commits of another process wake nobody, so each subscription still reads the log itself at least every
/// poll interval (a time kept with the subscription: the consumer runtime drops a pending `next` whenever another
/// of its duties comes first).
#[derive(Default)]
struct Tail(Mutex<HashMap<String, TopicTail>>);

/// The records of one topic with a sequence in (`after`, `upto`], all of them, in order.
struct TopicTail {
    after: i64,
    upto: i64,
    records: VecDeque<LogRecord>,
    /// Armed before the read that found `upto` and found nothing after it.
    end: Option<todo_store::Wakeup>,
}

/// Most records the tail keeps of a topic: a read's whole batch always fits.
const TAIL: usize = 2 * BATCH;
const _: () = assert!(BATCH <= TAIL);

impl Tail {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, TopicTail>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to `limit` records of `topic` after `after`, and whether they reach the end of the topic as of now;
    /// `None` when the tail cannot tell (the position is outside it, or at its end and a commit came since).
    fn read(&self, topic: &str, after: i64, limit: usize) -> Option<(Vec<LogRecord>, bool)> {
        let mut topics = self.lock();
        let tail = topics.get_mut(topic)?;
        if after < tail.after || after > tail.upto {
            return None;
        }
        let skip = tail.records.partition_point(|r| r.seq <= after);
        let rows: Vec<LogRecord> = tail.records.range(skip..).take(limit).cloned().collect();
        let to_upto = skip + rows.len() == tail.records.len();
        let quiet = tail.end.as_mut().is_some_and(|end| {
            Pin::new(end)
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        });
        if rows.is_empty() && !quiet {
            return None;
        }
        Some((rows, to_upto && quiet))
    }

    /// Keeps what a read of the log found: `rows`, every record of `topic` after `after` up to the last of them, and
    /// `end`, when the read found nothing after them, the wake-up armed before it.
    fn keep(&self, topic: &str, after: i64, rows: &[LogRecord], end: Option<todo_store::Wakeup>) {
        let upto = rows.last().map_or(after, |r| r.seq);
        let mut topics = self.lock();
        match topics.get_mut(topic) {
            // A read of older records than the tail holds (a subscription catching up) teaches it nothing.
            Some(tail) if after < tail.after || upto < tail.upto => {}
            Some(tail) if after <= tail.upto => {
                let known = tail.upto;
                tail.records
                    .extend(rows.iter().filter(|r| r.seq > known).cloned());
                if upto > known || end.is_some() {
                    tail.end = end;
                }
                tail.upto = upto;
                while tail.records.len() > TAIL {
                    if let Some(dropped) = tail.records.pop_front() {
                        tail.after = dropped.seq;
                    }
                }
            }
            // No tail yet, or one that ends before this read starts: this read's stretch replaces it.
            _ => {
                topics.insert(
                    topic.to_owned(),
                    TopicTail {
                        after,
                        upto,
                        records: rows.iter().cloned().collect(),
                        end,
                    },
                );
            }
        }
    }
}

/// What one [`OutboxSubscription::fill`] read.
struct Fill {
    rows: usize,
    /// Every topic read returned fewer rows than asked for: as of the read, nothing more was committed.
    at_end: bool,
}

/// How long a subscription waits for a commit before it reads anyway: writes of another process (a `todo` command
/// against the same file) wake nobody here.
const POLL: Duration = Duration::from_millis(500);

#[async_trait]
impl Subscription for OutboxSubscription {
    async fn next(&self) -> Option<todo_kafka::Result<Delivery>> {
        loop {
            if let Some(d) = self.pop() {
                return d.map(Ok);
            }
            let _guard = self.fetch.lock().await;
            if let Some(d) = self.pop() {
                return d.map(Ok);
            }
            // The last read reached the end of every topic: wait for a commit instead of reading again to find
            // nothing (under load, every commit wakes every consumer, and the second read was half of its reads).
            let caught_up = self.lock().caught_up.take();
            if let Some(caught_up) = caught_up {
                let _ = tokio::time::timeout(self.poll, caught_up).await;
            }
            // Armed before the read: a commit the read does not see still wakes it.
            let changed = self.log.changed();
            match self.fill().await {
                Ok(Fill { rows: 0, .. }) => {
                    let _ = tokio::time::timeout(self.poll, changed).await;
                }
                Ok(Fill { at_end, .. }) => {
                    if at_end {
                        self.lock().caught_up = Some(changed);
                    }
                }
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Some(Err(e));
                }
            }
        }
    }

    fn store(&self, topic: &str, partition: i32, offset: i64) -> todo_kafka::Result<()> {
        let mut inner = self.lock();
        match inner.topics.get_mut(topic) {
            Some(t) if partition == 0 => {
                // Storing an offset covers everything before it in the partition.
                t.pending = t.pending.split_off(&(offset + 1));
                if offset > t.fetched {
                    t.fetched = offset;
                }
                Ok(())
            }
            _ => Err(todo_kafka::Error::NotAssigned {
                topic: topic.to_owned(),
                partition,
            }),
        }
    }

    async fn commit(&self) -> todo_kafka::Result<()> {
        let updates: Vec<(String, i64)> = {
            let inner = self.lock();
            inner
                .topics
                .iter()
                .filter_map(|(topic, t)| {
                    let upto = t.processed_up_to();
                    (upto > t.committed).then(|| (topic.clone(), upto))
                })
                .collect()
        };
        for (topic, upto) in updates {
            self.log
                .set_cursor(&cursor_name(&self.group, &topic), upto)
                .await?;
            if let Some(t) = self.lock().topics.get_mut(&topic) {
                t.committed = t.committed.max(upto);
            }
        }
        Ok(())
    }

    fn pause(&self, tp: &TopicPartition) -> todo_kafka::Result<()> {
        let mut inner = self.lock();
        if tp.partition != 0 || !inner.topics.contains_key(&tp.topic) {
            return Err(todo_kafka::Error::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
        inner.paused.insert(tp.topic.clone());
        Ok(())
    }

    fn resume(&self, tp: &TopicPartition) -> todo_kafka::Result<()> {
        let mut inner = self.lock();
        if tp.partition != 0 || !inner.topics.contains_key(&tp.topic) {
            return Err(todo_kafka::Error::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
        inner.paused.remove(&tp.topic);
        // The topic was not read while paused: the next fill reads it.
        inner.caught_up = None;
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.lock()
            .topics
            .keys()
            .map(|t| TopicPartition::new(t.clone(), 0))
            .collect()
    }

    async fn high_watermarks(&self) -> todo_kafka::Result<Vec<(TopicPartition, i64)>> {
        let topics: Vec<String> = self.lock().topics.keys().cloned().collect();
        let mut out = Vec::with_capacity(topics.len());
        for topic in topics {
            let high = self.log.max_seq(&topic).await? + 1;
            out.push((TopicPartition::new(topic, 0), high));
        }
        Ok(out)
    }

    fn group(&self) -> &str {
        &self.group
    }

    async fn close(&self) -> todo_kafka::Result<()> {
        let result = self.commit().await;
        self.lock().closed = true;
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use todo_store::{SqliteConfig, SqliteStore, Store};

    use super::*;
    use crate::app::StoreLog;

    /// The store's outbox, counting the reads of subscriptions; on the read numbered `commit_during` it commits a
    /// record of topic `a` after reading, as another writer could between a subscription's read and its wait.
    struct CountingLog {
        inner: StoreLog,
        reads: AtomicUsize,
        commit_during: usize,
    }

    #[async_trait]
    impl OutboxLog for CountingLog {
        async fn read_after(
            &self,
            topic: &str,
            after: i64,
            limit: usize,
        ) -> Result<Vec<LogRecord>, todo_kafka::Error> {
            let rows = self.inner.read_after(topic, after, limit).await;
            if self.reads.fetch_add(1, Ordering::SeqCst) + 1 == self.commit_during {
                self.inner.append(&[record("a", "late")]).await?;
            }
            rows
        }
        async fn max_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error> {
            self.inner.max_seq(topic).await
        }
        async fn min_seq(&self, topic: &str) -> Result<i64, todo_kafka::Error> {
            self.inner.min_seq(topic).await
        }
        async fn append(&self, records: &[OutgoingRecord]) -> Result<Vec<i64>, todo_kafka::Error> {
            self.inner.append(records).await
        }
        async fn cursor(&self, consumer: &str) -> Result<i64, todo_kafka::Error> {
            self.inner.cursor(consumer).await
        }
        async fn set_cursor(&self, consumer: &str, seq: i64) -> Result<(), todo_kafka::Error> {
            self.inner.set_cursor(consumer, seq).await
        }
        fn changed(&self) -> todo_store::Wakeup {
            self.inner.changed()
        }
    }

    fn record(topic: &str, value: &str) -> OutgoingRecord {
        OutgoingRecord::new(topic, value.as_bytes().to_vec())
    }

    /// A broker over a fresh in-memory store whose subscriptions would wait a minute between reads when nothing
    /// wakes them: within a test, only a wake-up (or a read of its own) can bring them a record.
    async fn broker(commit_during: usize) -> (OutboxBroker, Arc<CountingLog>) {
        let log = Arc::new(CountingLog {
            inner: StoreLog(crate::testing::memory_store().await),
            reads: AtomicUsize::new(0),
            commit_during,
        });
        let broker = OutboxBroker {
            log: log.clone(),
            poll: Duration::from_secs(60),
            tail: Arc::default(),
        };
        (broker, log)
    }

    /// The subscription's next record's topic and value.
    async fn next_record(subscription: &dyn Subscription) -> (String, String) {
        let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("a record within 10 s")
            .expect("open")
            .expect("read");
        let value = String::from_utf8(delivery.payload.unwrap_or_default()).expect("UTF-8");
        (delivery.topic, value)
    }

    async fn next_value(subscription: &dyn Subscription) -> String {
        next_record(subscription).await.1
    }

    #[tokio::test]
    async fn a_subscription_at_the_end_of_the_log_waits_for_a_commit_instead_of_reading_again() {
        let (broker, log) = broker(0).await;
        let subscription = broker
            .subscribe("g", &["a".into()])
            .await
            .expect("subscribe");
        broker
            .publish_batch(vec![record("a", "1"), record("a", "2")])
            .await;
        assert_eq!(next_value(subscription.as_ref()).await, "1");
        assert_eq!(next_value(subscription.as_ref()).await, "2");
        assert_eq!(log.reads.load(Ordering::SeqCst), 1, "one read brought both");

        // The next call waits for a commit: a read now would find nothing.
        let waiting = next_value(subscription.as_ref());
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut waiting)
                .await
                .is_err()
        );
        assert_eq!(
            log.reads.load(Ordering::SeqCst),
            1,
            "no read while caught up"
        );

        broker.publish_batch(vec![record("a", "3")]).await;
        assert_eq!(waiting.await, "3", "the commit woke it");
        assert_eq!(log.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_record_committed_after_the_read_that_reached_the_end_still_wakes_the_subscription() {
        // The first read commits a record after reading: the wake-up was armed before the read.
        let (broker, _log) = broker(1).await;
        broker.publish_batch(vec![record("a", "1")]).await;
        let subscription = broker
            .subscribe("g", &["a".into()])
            .await
            .expect("subscribe");
        assert_eq!(next_value(subscription.as_ref()).await, "1");
        assert_eq!(next_value(subscription.as_ref()).await, "late");
    }

    /// Another process writing to the same file wakes nobody here: a caught-up subscription still finds its records
    /// by reading again after its poll interval.
    #[tokio::test]
    async fn a_caught_up_subscription_finds_another_processs_writes_by_polling() {
        let (subscription, theirs, dir) = caught_up_beside_another_process(200).await;
        theirs.append(&[record("a", "2")]).await.expect("append");
        assert_eq!(next_value(subscription.as_ref()).await, "2");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_resumed_topic_is_read_without_waiting_for_a_commit() {
        let (broker, _log) = broker(0).await;
        let subscription = broker
            .subscribe("g", &["a".into(), "b".into()])
            .await
            .expect("subscribe");
        let b = TopicPartition::new("b", 0);
        subscription.pause(&b).expect("pause");
        broker
            .publish_batch(vec![record("b", "held"), record("a", "1")])
            .await;
        assert_eq!(next_value(subscription.as_ref()).await, "1");
        subscription.resume(&b).expect("resume");
        assert_eq!(next_value(subscription.as_ref()).await, "held");
    }

    async fn subscribe(broker: &OutboxBroker, group: &str) -> Box<dyn Subscription> {
        broker
            .subscribe(group, &["a".into()])
            .await
            .expect("subscribe")
    }

    /// Every commit wakes every consumer: the first reads the commit's records from the log, the others take them
    /// from the shared tail, and all of them then wait for the next commit.
    #[tokio::test]
    async fn consumers_of_one_topic_read_each_commit_from_the_log_once() {
        let (broker, log) = broker(0).await;
        let groups = [
            subscribe(&broker, "g1").await,
            subscribe(&broker, "g2").await,
            subscribe(&broker, "g3").await,
        ];
        broker
            .publish_batch(vec![record("a", "1"), record("a", "2")])
            .await;
        for subscription in &groups {
            assert_eq!(next_value(subscription.as_ref()).await, "1");
            assert_eq!(next_value(subscription.as_ref()).await, "2");
        }
        assert_eq!(
            log.reads.load(Ordering::SeqCst),
            1,
            "one read for three groups"
        );

        broker.publish_batch(vec![record("a", "3")]).await;
        for subscription in &groups {
            assert_eq!(next_value(subscription.as_ref()).await, "3");
        }
        assert_eq!(
            log.reads.load(Ordering::SeqCst),
            2,
            "one more read for the next commit"
        );
    }

    /// A consumer behind what the tail keeps reads the log itself, and gets every record in order; so does one
    /// that the tail serves while the log grows past it.
    #[tokio::test]
    async fn a_consumer_behind_the_tail_reads_the_log_and_misses_nothing() {
        let (broker, log) = broker(0).await;
        let total = TAIL + BATCH + 10;
        let values: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        let ahead = subscribe(&broker, "ahead").await;
        broker
            .publish_batch(values.iter().map(|v| record("a", v)).collect())
            .await;
        for value in &values {
            assert_eq!(&next_value(ahead.as_ref()).await, value);
        }
        let reads = log.reads.load(Ordering::SeqCst);
        assert_eq!(
            reads,
            total.div_ceil(BATCH),
            "the first consumer read it all from the log"
        );

        // The tail now holds the last TAIL records: a new group starts before them.
        let behind = subscribe(&broker, "behind").await;
        for value in &values {
            assert_eq!(&next_value(behind.as_ref()).await, value);
        }
        assert!(log.reads.load(Ordering::SeqCst) > reads, "it read the log");

        // Both caught up; a commit reaches both, read from the log once.
        let reads = log.reads.load(Ordering::SeqCst);
        broker.publish_batch(vec![record("a", "last")]).await;
        assert_eq!(next_value(ahead.as_ref()).await, "last");
        assert_eq!(next_value(behind.as_ref()).await, "last");
        assert_eq!(log.reads.load(Ordering::SeqCst), reads + 1);
    }

    /// Consumers reading while commits of every size arrive (more than a read takes, more than the tail keeps)
    /// each get every record once, in order, whether from the tail or the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumers_reading_beside_commits_get_every_record_in_order() {
        let (broker, _log) = broker(0).await;
        let sizes = [1, 300, 2, 700, 17, 256, 1, 1, 513, 40];
        let total: usize = sizes.iter().sum();
        let mut readers = tokio::task::JoinSet::new();
        for group in ["g1", "g2", "g3"] {
            let subscription = subscribe(&broker, group).await;
            readers.spawn(async move {
                let mut seen = Vec::with_capacity(total);
                for _ in 0..total {
                    seen.push(next_value(subscription.as_ref()).await);
                }
                seen
            });
        }
        let mut next = 0;
        for size in sizes {
            let batch = (next..next + size)
                .map(|i| record("a", &i.to_string()))
                .collect();
            broker.publish_batch(batch).await;
            next += size;
            tokio::task::yield_now().await;
        }
        let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        while let Some(seen) = readers.join_next().await {
            assert_eq!(seen.expect("reader"), expected);
        }
    }

    /// The tail is kept per topic: consumers of two topics (as the audit consumer reads `task-events` and
    /// `task-updates`) beside a consumer of one of them, while commits of both topics' records of every size arrive,
    /// each get every record of their topics once, in each topic's order, and nothing of another topic.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumers_of_two_topics_get_each_topic_in_order_beside_a_consumer_of_one() {
        let (broker, _log) = broker(0).await;
        // Commits of records of `a`, of `b`, or of both (a count of each).
        let commits = [
            (1, 0),
            (0, 3),
            (300, 2),
            (2, 600),
            (17, 17),
            (0, 1),
            (513, 0),
            (1, 1),
        ];
        let (total_a, total_b) = commits.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
        let numbers = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        let mut readers = tokio::task::JoinSet::new();
        for (group, topics) in [
            ("both1", vec!["a", "b"]),
            ("both2", vec!["b", "a"]),
            ("only_a", vec!["a"]),
        ] {
            let expected: BTreeMap<String, Vec<String>> = topics
                .iter()
                .map(|&t| {
                    (
                        t.to_owned(),
                        numbers(if t == "a" { total_a } else { total_b }),
                    )
                })
                .collect();
            let topics: Vec<String> = topics.into_iter().map(String::from).collect();
            let subscription = broker.subscribe(group, &topics).await.expect("subscribe");
            readers.spawn(async move {
                let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for _ in 0..expected.values().map(Vec::len).sum::<usize>() {
                    let (topic, value) = next_record(subscription.as_ref()).await;
                    seen.entry(topic).or_default().push(value);
                }
                (group, seen, expected)
            });
        }
        let (mut next_a, mut next_b) = (0, 0);
        for (a, b) in commits {
            let mut batch: Vec<OutgoingRecord> = (next_a..next_a + a)
                .map(|i| record("a", &i.to_string()))
                .collect();
            batch.extend((next_b..next_b + b).map(|i| record("b", &i.to_string())));
            broker.publish_batch(batch).await;
            (next_a, next_b) = (next_a + a, next_b + b);
            tokio::task::yield_now().await;
        }
        while let Some(done) = readers.join_next().await {
            let (group, seen, expected) = done.expect("reader");
            assert_eq!(seen, expected, "{group}");
        }
    }

    /// The consumer runtime drops a pending `next` whenever another of its duties comes first (a commit tick, a lag
    /// tick, a message of a partition task), so waits can end in the middle again and again: a caught-up
    /// subscription still reads the log itself within its poll interval and finds another process's writes, which
    /// wake nobody here and are not in the shared tail.
    #[tokio::test]
    async fn a_subscription_whose_waits_are_cut_short_still_finds_another_processs_writes() {
        let (subscription, theirs, dir) = caught_up_beside_another_process(300).await;
        theirs.append(&[record("a", "2")]).await.expect("append");
        let mut found = None;
        for _ in 0..100 {
            if let Ok(delivery) =
                tokio::time::timeout(Duration::from_millis(100), subscription.next()).await
            {
                found = delivery;
                break;
            }
        }
        let delivery = found.expect("a record within 10 s").expect("read");
        assert_eq!(delivery.payload.as_deref(), Some(&b"2"[..]));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A subscription of a broker over a fresh database file (polling every `poll_ms`), caught up after one record,
    /// and a second store on the same file, as another process would open it; and the directory to remove.
    async fn caught_up_beside_another_process(
        poll_ms: u64,
    ) -> (Box<dyn Subscription>, StoreLog, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("todo-embedded-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = SqliteConfig::file(dir.join("todo.db"));
        let ours = SqliteStore::connect(&config).await.expect("connect");
        ours.migrate().await.expect("migrate");
        let theirs = StoreLog(Arc::new(
            SqliteStore::connect(&config).await.expect("connect"),
        ));
        let broker = OutboxBroker {
            log: Arc::new(StoreLog(Arc::new(ours))),
            poll: Duration::from_millis(poll_ms),
            tail: Arc::default(),
        };
        let subscription = subscribe(&broker, "g").await;
        broker.publish_batch(vec![record("a", "1")]).await;
        assert_eq!(next_value(subscription.as_ref()).await, "1");
        (subscription, theirs, dir)
    }
}
