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
//!   written, durably, in embedded mode.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl std::fmt::Debug for OutboxBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxBroker")
    }
}

impl OutboxBroker {
    /// A broker over `log`.
    pub fn new(log: Arc<dyn OutboxLog>) -> Self {
        OutboxBroker { log }
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
            group: group.to_owned(),
            inner: Mutex::new(Inner {
                topics: state,
                buffer: VecDeque::new(),
                paused: HashSet::new(),
                closed: false,
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
}

struct OutboxSubscription {
    log: Arc<dyn OutboxLog>,
    group: String,
    inner: Mutex<Inner>,
    fetch: tokio::sync::Mutex<()>,
}

const BATCH: usize = 256;

impl OutboxSubscription {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// Reads the next batch of every unpaused topic into the buffer; returns whether anything was read.
    async fn fill(&self) -> todo_kafka::Result<bool> {
        let positions: Vec<(String, i64)> = {
            let inner = self.lock();
            inner
                .topics
                .iter()
                .filter(|(t, _)| !inner.paused.contains(*t))
                .map(|(t, s)| (t.clone(), s.fetched))
                .collect()
        };
        let mut any = false;
        for (topic, after) in positions {
            let rows = self.log.read_after(&topic, after, BATCH).await?;
            if rows.is_empty() {
                continue;
            }
            any = true;
            let mut inner = self.lock();
            if let Some(last) = rows.last()
                && let Some(t) = inner.topics.get_mut(&topic)
            {
                t.fetched = t.fetched.max(last.seq);
            }
            inner.buffer.extend(rows.into_iter().map(delivery));
        }
        Ok(any)
    }
}

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
            let changed = self.log.changed();
            match self.fill().await {
                Ok(true) => continue,
                Ok(false) => {
                    let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
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
