//! The broker ports: publishing, consumer-group subscriptions, log reading and topic administration.

use async_trait::async_trait;
use todo_events::Profile;

use crate::admin::{TopicConfig, TopicReport, TopicState, registry_topics};
use crate::{Ack, Delivery, OutgoingRecord, Result, TopicPartition};

/// Publishes records.
///
/// Implementations: [`MemoryBroker`](crate::MemoryBroker) and, with the `rdkafka` feature, `KafkaBroker`.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publishes a batch and returns once every record is acknowledged (or failed), with one result per record
    /// in input order.
    ///
    /// Records with the same key on the same topic MUST keep their relative order. A keyed record MUST land on
    /// partition [`partition_for_key`](crate::partition_for_key)`(key, partitions)`.
    ///
    /// # Errors
    /// Per record: [`Error::UnknownTopic`](crate::Error::UnknownTopic) when the topic does not exist, or
    /// [`Error::Backend`](crate::Error::Backend) when the broker rejected it or did not acknowledge it in time.
    async fn publish_batch(&self, records: Vec<OutgoingRecord>) -> Vec<Result<Ack>>;

    /// Publishes one record and waits for its acknowledgement.
    ///
    /// # Errors
    /// As [`Publisher::publish_batch`].
    async fn publish(&self, record: OutgoingRecord) -> Result<Ack> {
        self.publish_batch(vec![record])
            .await
            .pop()
            .unwrap_or(Err(crate::Error::Closed))
    }
}

/// Creates consumer-group subscriptions.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Joins consumer group `group` as a new member subscribed to `topics`.
    ///
    /// A new group starts at the earliest offset. Partitions are shared among the members of a group; members
    /// joining or leaving trigger a rebalance, before which stored offsets are committed.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an empty group id or topic list;
    /// [`Error::Backend`](crate::Error::Backend) when the client cannot be created.
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Subscription>>;
}

/// One member of a consumer group.
///
/// At-least-once contract: a delivery whose offset was not [stored](Subscription::store) and then committed is
/// delivered again to whichever member owns its partition after a restart or a rebalance. Stored offsets are
/// committed by [`commit`](Subscription::commit), on rebalance, and on [`close`](Subscription::close).
/// Dropping a subscription without `close` is a crash: uncommitted work is redelivered.
#[async_trait]
pub trait Subscription: Send + Sync + 'static {
    /// The next delivery, waiting for one. Within a partition, deliveries come in offset order.
    ///
    /// Cancel-safe: dropping the future loses no delivery.
    ///
    /// # Errors
    /// `Some(Err(_))` for a transient consumer error (the caller may keep polling); `None` once closed.
    async fn next(&self) -> Option<Result<Delivery>>;

    /// Marks the delivery at `offset` (and everything before it in the partition) as processed; the next commit
    /// makes the group resume after it.
    ///
    /// # Errors
    /// [`Error::NotAssigned`](crate::Error::NotAssigned) when the partition moved to another member.
    fn store(&self, topic: &str, partition: i32, offset: i64) -> Result<()>;

    /// Commits the stored offsets now.
    ///
    /// # Errors
    /// [`Error::Backend`](crate::Error::Backend) when the broker refused the commit.
    async fn commit(&self) -> Result<()>;

    /// Stops fetching from a partition; deliveries already received are unaffected.
    ///
    /// # Errors
    /// [`Error::NotAssigned`](crate::Error::NotAssigned) or a backend error.
    fn pause(&self, tp: &TopicPartition) -> Result<()>;

    /// Resumes fetching from a paused partition.
    ///
    /// # Errors
    /// As [`Subscription::pause`].
    fn resume(&self, tp: &TopicPartition) -> Result<()>;

    /// The partitions currently assigned to this member.
    fn assignment(&self) -> Vec<TopicPartition>;

    /// The high watermark (offset of the next record to be written) of each assigned partition.
    ///
    /// # Errors
    /// A backend error when the watermarks cannot be fetched.
    async fn high_watermarks(&self) -> Result<Vec<(TopicPartition, i64)>>;

    /// The group id.
    fn group(&self) -> &str;

    /// Commits the stored offsets and leaves the group.
    ///
    /// # Errors
    /// As [`Subscription::commit`]; the member leaves the group in any case.
    async fn close(&self) -> Result<()>;
}

/// Low and high watermark of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Partition.
    pub partition: i32,
    /// Offset of the oldest record still kept.
    pub low: i64,
    /// Offset the next record will get.
    pub high: i64,
}

/// Reads partitions directly, outside any consumer group (used by the dead-letter tools).
#[async_trait]
pub trait LogReader: Send + Sync + 'static {
    /// The partitions of a topic with their watermarks.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic) or a backend error.
    async fn partitions(&self, topic: &str) -> Result<Vec<PartitionOffsets>>;

    /// Up to `max` records of a partition starting at offset `from`, in order. Returns fewer (possibly none) when
    /// the partition ends.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic), [`Error::UnknownPartition`](crate::Error::UnknownPartition)
    /// or a backend error.
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Delivery>>;
}

/// Creates and describes topics.
#[async_trait]
pub trait TopicAdmin: Send + Sync + 'static {
    /// The current state of a topic, or `None` if it does not exist.
    ///
    /// # Errors
    /// A backend error when the cluster cannot be asked.
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicState>>;

    /// Creates a topic. Creating a topic that already exists is not an error.
    ///
    /// # Errors
    /// A backend error when the broker refuses it (for example a replication factor above the broker count).
    async fn create_topic(&self, topic: &TopicConfig) -> Result<()>;

    /// Creates the missing topics among `topics` and reports drift in the existing ones.
    ///
    /// # Errors
    /// Backend errors only: drift is reported in the [`TopicReport`], see [`TopicReport::into_result`].
    async fn ensure(&self, topics: &[TopicConfig]) -> Result<TopicReport> {
        crate::admin::ensure_with(self, topics).await
    }

    /// Creates the six topics of [`todo_events::TOPICS`] for a profile and reports drift.
    ///
    /// # Errors
    /// As [`TopicAdmin::ensure`].
    async fn ensure_topics(&self, profile: Profile) -> Result<TopicReport> {
        self.ensure(&registry_topics(profile)).await
    }
}
