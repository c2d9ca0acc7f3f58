//! The crate's single error type.

/// A boxed error from a backend or a handler.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A convenient alias for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Backend errors (librdkafka's) are carried as a boxed source: no rdkafka type crosses the traits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topic does not exist on the broker.
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    /// The partition does not exist in the topic.
    #[error("unknown partition {partition} of topic `{topic}`")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition that was asked for.
        partition: i32,
    },
    /// The partition is not assigned to this group member (it moved in a rebalance).
    #[error("partition {partition} of topic `{topic}` is not assigned to this consumer")]
    NotAssigned {
        /// Topic name.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// No record at that offset (out of range, or removed by retention).
    #[error("no record at offset {offset} of `{topic}` partition {partition}")]
    NoRecord {
        /// Topic name.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset that was asked for.
        offset: i64,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The broker or the subscription was closed.
    #[error("closed")]
    Closed,
    /// Existing topics differ from the registry in a way that cannot be fixed automatically.
    #[error("topic drift: {}", crate::admin::describe_drift(.0))]
    TopicDrift(Vec<crate::admin::TopicStatus>),
    /// A record could not be read as an event.
    #[error("undecodable event")]
    Decode(#[from] todo_events::Error),
    /// A record in a dead-letter topic lacks a `dlq-*` header or has an invalid one.
    #[error("invalid dead-letter record: {0}")]
    InvalidDlqRecord(String),
    /// The broker backend failed.
    #[error("{backend} backend error: {context}")]
    Backend {
        /// `kafka` or `memory`.
        backend: &'static str,
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    #[cfg(feature = "rdkafka")]
    pub(crate) fn kafka(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend: "kafka",
            context: context.into(),
            source: source.into(),
        }
    }
}
