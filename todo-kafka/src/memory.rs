//! An in-process broker with Kafka's semantics, always compiled.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use todo_events::Profile;
use tokio::sync::Notify;

use crate::admin::{TopicConfig, TopicState, registry_topics};
use crate::broker::{LogReader, PartitionOffsets, Publisher, Subscriber, Subscription, TopicAdmin};
use crate::record::now_millis;
use crate::{
    Ack, Delivery, Error, Headers, OutgoingRecord, Result, TopicPartition, partition_for_key,
};

/// An in-memory broker: topics with partitions, consumer groups, committed offsets, rebalances.
///
/// Same semantics as Kafka as far as this crate's traits can observe them:
/// - a keyed record goes to partition [`partition_for_key`] (the murmur2 of Java clients and librdkafka's
///   `murmur2_random`), an unkeyed one round-robin;
/// - each consumer group has its own committed offsets; a new group starts at the earliest offset;
/// - partitions are spread over the members of a group (round-robin by member join order) and rebalanced when a
///   member joins or leaves; stored offsets are committed before partitions move;
/// - a member that is dropped without [`Subscription::close`] leaves the group, and deliveries whose offsets it
///   never stored are delivered again to the next owner.
///
/// Records are kept for the broker's lifetime (no retention). Cloning gives another handle to the same broker.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use todo_kafka::{MemoryBroker, OutgoingRecord, Publisher, Subscriber, TopicAdmin, TopicConfig};
///
/// let broker = MemoryBroker::new();
/// broker.create_topic(&TopicConfig::new("demo", 3)).await?;
/// broker.publish(OutgoingRecord::new("demo", "hello").with_key("user-1")).await?;
///
/// let member = broker.subscribe("demo-group", &["demo".to_string()]).await?;
/// let delivery = member.next().await.expect("open")?;
/// assert_eq!(delivery.payload(), b"hello");
/// member.store(&delivery.topic, delivery.partition, delivery.offset)?;
/// member.close().await?;
/// # Ok::<(), todo_kafka::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryBroker")
            .field("topics", &state.topics.keys().collect::<Vec<_>>())
            .field("groups", &state.groups.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every mutation is a single step), so a poisoned
        // lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct State {
    topics: HashMap<String, TopicLog>,
    groups: HashMap<String, Group>,
    next_member: u64,
}

struct TopicLog {
    config: TopicConfig,
    partitions: Vec<Vec<StoredRecord>>,
    round_robin: usize,
}

struct StoredRecord {
    key: Option<Vec<u8>>,
    headers: Headers,
    value: Vec<u8>,
    timestamp: i64,
}

#[derive(Default)]
struct Group {
    /// Member id -> subscribed topics, in join order (ids increase).
    members: BTreeMap<u64, Vec<String>>,
    generation: u64,
    assignment: HashMap<u64, Vec<TopicPartition>>,
    committed: HashMap<TopicPartition, i64>,
    /// Offsets stored by the current owners, not yet committed (next offset to read).
    stored: HashMap<TopicPartition, i64>,
}

impl Group {
    fn rebalance(&mut self, topics: &HashMap<String, TopicLog>) {
        // Partitions move: commit what their owners stored, as the rebalance callback of a Kafka consumer does.
        let stored: Vec<_> = self.stored.drain().collect();
        self.committed.extend(stored);
        self.generation += 1;
        self.assignment = self.members.keys().map(|id| (*id, Vec::new())).collect();
        let mut wanted: Vec<&String> = self.members.values().flatten().collect();
        wanted.sort();
        wanted.dedup();
        for topic in wanted {
            let Some(log) = topics.get(topic) else {
                continue;
            };
            let candidates: Vec<u64> = self
                .members
                .iter()
                .filter(|(_, t)| t.contains(topic))
                .map(|(id, _)| *id)
                .collect();
            if candidates.is_empty() {
                continue;
            }
            for partition in 0..log.partitions.len() {
                let owner = candidates[partition % candidates.len()];
                if let Some(list) = self.assignment.get_mut(&owner) {
                    list.push(TopicPartition::new(topic.clone(), partition as i32));
                }
            }
        }
    }

    fn owns(&self, member: u64, tp: &TopicPartition) -> bool {
        self.assignment
            .get(&member)
            .is_some_and(|list| list.contains(tp))
    }

    fn commit_member(&mut self, member: u64) {
        let owned: Vec<TopicPartition> = self.assignment.get(&member).cloned().unwrap_or_default();
        for tp in owned {
            if let Some(offset) = self.stored.remove(&tp) {
                self.committed.insert(tp, offset);
            }
        }
    }
}

impl MemoryBroker {
    /// An empty broker: create topics with [`TopicAdmin::create_topic`] or [`TopicAdmin::ensure_topics`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A broker holding the registry's six topics ([`todo_events::TOPICS`]) for a profile.
    pub fn with_registry_topics(profile: Profile) -> Self {
        let broker = Self::new();
        {
            let mut state = broker.shared.lock();
            for config in registry_topics(profile) {
                create_locked(&mut state, &config);
            }
        }
        broker
    }

    /// The offset a group has committed for a partition (the next offset it will read), if any.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let state = self.shared.lock();
        state
            .groups
            .get(group)?
            .committed
            .get(&TopicPartition::new(topic, partition))
            .copied()
    }
}

fn create_locked(state: &mut State, config: &TopicConfig) -> bool {
    if state.topics.contains_key(&config.name) {
        return false;
    }
    let partitions = (0..config.partitions.max(1)).map(|_| Vec::new()).collect();
    state.topics.insert(
        config.name.clone(),
        TopicLog {
            config: config.clone(),
            partitions,
            round_robin: 0,
        },
    );
    let State { topics, groups, .. } = state;
    for group in groups.values_mut() {
        if group.members.values().any(|t| t.contains(&config.name)) {
            group.rebalance(topics);
        }
    }
    true
}

#[async_trait]
impl Publisher for MemoryBroker {
    async fn publish_batch(&self, records: Vec<OutgoingRecord>) -> Vec<Result<Ack>> {
        let mut results = Vec::with_capacity(records.len());
        {
            let mut state = self.shared.lock();
            for record in records {
                let Some(log) = state.topics.get_mut(&record.topic) else {
                    results.push(Err(Error::UnknownTopic(record.topic)));
                    continue;
                };
                let count = log.partitions.len() as i32;
                let partition = match &record.key {
                    Some(key) => partition_for_key(key, count),
                    None => {
                        log.round_robin = log.round_robin.wrapping_add(1);
                        (log.round_robin % log.partitions.len()) as i32
                    }
                };
                let Some(part) = log.partitions.get_mut(partition as usize) else {
                    results.push(Err(Error::UnknownPartition {
                        topic: record.topic,
                        partition,
                    }));
                    continue;
                };
                part.push(StoredRecord {
                    key: record.key,
                    headers: record.headers,
                    value: record.value,
                    timestamp: now_millis(),
                });
                results.push(Ok(Ack {
                    partition,
                    offset: part.len() as i64 - 1,
                }));
            }
        }
        self.shared.notify.notify_waiters();
        results
    }
}

#[async_trait]
impl Subscriber for MemoryBroker {
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Subscription>> {
        if group.is_empty() || topics.is_empty() {
            return Err(Error::Config(
                "a subscription needs a group id and at least one topic".into(),
            ));
        }
        let id = {
            let mut state = self.shared.lock();
            state.next_member += 1;
            let id = state.next_member;
            let State {
                topics: logs,
                groups,
                ..
            } = &mut *state;
            let g = groups.entry(group.to_owned()).or_default();
            g.members.insert(id, topics.to_vec());
            g.rebalance(logs);
            id
        };
        self.shared.notify.notify_waiters();
        Ok(Box::new(MemorySubscription {
            shared: self.shared.clone(),
            group: group.to_owned(),
            id,
            local: Mutex::new(Local::default()),
            closed: AtomicBool::new(false),
        }))
    }
}

#[async_trait]
impl LogReader for MemoryBroker {
    async fn partitions(&self, topic: &str) -> Result<Vec<PartitionOffsets>> {
        let state = self.shared.lock();
        let log = state
            .topics
            .get(topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        Ok(log
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionOffsets {
                partition: i as i32,
                low: 0,
                high: p.len() as i64,
            })
            .collect())
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let state = self.shared.lock();
        let log = state
            .topics
            .get(topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        let part = usize::try_from(partition)
            .ok()
            .and_then(|p| log.partitions.get(p))
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })?;
        let start = usize::try_from(from.max(0)).unwrap_or(usize::MAX);
        Ok(part
            .iter()
            .enumerate()
            .skip(start)
            .take(max)
            .map(|(offset, r)| to_delivery(topic, partition, offset as i64, r))
            .collect())
    }
}

#[async_trait]
impl TopicAdmin for MemoryBroker {
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicState>> {
        let state = self.shared.lock();
        Ok(state.topics.get(name).map(|log| TopicState {
            partitions: log.partitions.len() as i32,
            replication: Some(log.config.replication),
            retention_ms: log.config.retention_ms,
        }))
    }

    async fn create_topic(&self, topic: &TopicConfig) -> Result<()> {
        if topic.partitions < 1 {
            return Err(Error::Config(format!(
                "topic `{}` needs at least one partition",
                topic.name
            )));
        }
        let created = create_locked(&mut self.shared.lock(), topic);
        if created {
            self.shared.notify.notify_waiters();
        }
        Ok(())
    }
}

fn to_delivery(topic: &str, partition: i32, offset: i64, r: &StoredRecord) -> Delivery {
    Delivery {
        topic: topic.to_owned(),
        partition,
        offset,
        key: r.key.clone(),
        headers: r.headers.clone(),
        payload: Some(r.value.clone()),
        timestamp: Some(r.timestamp),
    }
}

#[derive(Default)]
struct Local {
    generation: u64,
    positions: HashMap<TopicPartition, i64>,
    assigned: Vec<TopicPartition>,
    paused: HashSet<TopicPartition>,
    cursor: usize,
}

struct MemorySubscription {
    shared: Arc<Shared>,
    group: String,
    id: u64,
    local: Mutex<Local>,
    closed: AtomicBool,
}

impl MemorySubscription {
    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the next record, if one is ready. Locks state, then local.
    fn poll_once(&self) -> Option<Delivery> {
        let state = self.shared.lock();
        let group = state.groups.get(&self.group)?;
        let mut local = self.local();
        if local.generation != group.generation {
            let assigned = group.assignment.get(&self.id).cloned().unwrap_or_default();
            local.positions.retain(|tp, _| assigned.contains(tp));
            for tp in &assigned {
                if !local.positions.contains_key(tp) {
                    let start = group.committed.get(tp).copied().unwrap_or(0);
                    local.positions.insert(tp.clone(), start);
                }
            }
            local.assigned = assigned;
            local.generation = group.generation;
        }
        let n = local.assigned.len();
        for i in 0..n {
            let idx = (local.cursor + i) % n;
            let tp = local.assigned[idx].clone();
            if local.paused.contains(&tp) {
                continue;
            }
            let Some(log) = state.topics.get(&tp.topic) else {
                continue;
            };
            let Some(part) = log.partitions.get(tp.partition as usize) else {
                continue;
            };
            let pos = local.positions.get(&tp).copied().unwrap_or(0);
            if let Some(record) = usize::try_from(pos).ok().and_then(|p| part.get(p)) {
                let delivery = to_delivery(&tp.topic, tp.partition, pos, record);
                local.positions.insert(tp, pos + 1);
                local.cursor = idx + 1;
                return Some(delivery);
            }
        }
        None
    }

    fn leave(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        {
            let mut state = self.shared.lock();
            let State { topics, groups, .. } = &mut *state;
            if let Some(group) = groups.get_mut(&self.group) {
                group.commit_member(self.id);
                group.members.remove(&self.id);
                group.rebalance(topics);
            }
        }
        self.shared.notify.notify_waiters();
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.leave();
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next(&self) -> Option<Result<Delivery>> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(delivery) = self.poll_once() {
                return Some(Ok(delivery));
            }
            notified.await;
        }
    }

    fn store(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        let tp = TopicPartition::new(topic, partition);
        let mut state = self.shared.lock();
        let group = state.groups.get_mut(&self.group).ok_or(Error::Closed)?;
        if !group.owns(self.id, &tp) {
            return Err(Error::NotAssigned {
                topic: topic.to_owned(),
                partition,
            });
        }
        let next = offset + 1;
        let current = group.stored.get(&tp).copied().unwrap_or(i64::MIN);
        if next > current {
            group.stored.insert(tp, next);
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let mut state = self.shared.lock();
        if let Some(group) = state.groups.get_mut(&self.group) {
            group.commit_member(self.id);
        }
        Ok(())
    }

    fn pause(&self, tp: &TopicPartition) -> Result<()> {
        self.local().paused.insert(tp.clone());
        Ok(())
    }

    fn resume(&self, tp: &TopicPartition) -> Result<()> {
        self.local().paused.remove(tp);
        self.shared.notify.notify_waiters();
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        let state = self.shared.lock();
        state
            .groups
            .get(&self.group)
            .and_then(|g| g.assignment.get(&self.id).cloned())
            .unwrap_or_default()
    }

    async fn high_watermarks(&self) -> Result<Vec<(TopicPartition, i64)>> {
        let assigned = self.assignment();
        let state = self.shared.lock();
        Ok(assigned
            .into_iter()
            .filter_map(|tp| {
                let high = state
                    .topics
                    .get(&tp.topic)?
                    .partitions
                    .get(tp.partition as usize)?
                    .len() as i64;
                Some((tp, high))
            })
            .collect())
    }

    fn group(&self) -> &str {
        &self.group
    }

    async fn close(&self) -> Result<()> {
        self.leave();
        Ok(())
    }
}
