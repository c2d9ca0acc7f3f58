//! Transport records: what publishers send and subscribers receive, with typed helpers over `todo-events`.

use todo_events::Event;
use todo_events::binding::{self, Mode};

use crate::Result;

/// Record headers, in order. Names may repeat; lookups take the last value, as the CloudEvents binding does.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic and partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// A record to publish: topic, optional key, headers and value bytes.
///
/// Keyed records go to partition `murmur2(key) % partitions` (see [`partition_for_key`](crate::partition_for_key)),
/// on every broker of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Destination topic.
    pub topic: String,
    /// Record key (the partition key); `None` spreads records over partitions.
    pub key: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Headers,
    /// Value bytes.
    pub value: Vec<u8>,
}

impl OutgoingRecord {
    /// A record with no key and no headers.
    pub fn new(topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        OutgoingRecord {
            topic: topic.into(),
            key: None,
            headers: Vec::new(),
            value: value.into(),
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The event as a structured-mode CloudEvents record on its topic ([`Event::topic`]), keyed by its partition
    /// key (the user id).
    pub fn from_event(event: &Event) -> Self {
        Self::from_event_with_mode(event, Mode::Structured)
    }

    /// The event as a record in the given binding mode.
    pub fn from_event_with_mode(event: &Event, mode: Mode) -> Self {
        let record = binding::encode(event, mode);
        OutgoingRecord {
            topic: event.topic().name().to_owned(),
            key: record.key,
            headers: record.headers,
            value: record.value,
        }
    }

    /// The event as a structured-mode record on another topic (for tests and tools).
    pub fn from_event_to(topic: impl Into<String>, event: &Event) -> Self {
        OutgoingRecord {
            topic: topic.into(),
            ..Self::from_event(event)
        }
    }
}

/// Where a published record was written, once the broker acknowledged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Partition written to.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
}

/// A record received from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic it was read from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Headers,
    /// Value bytes (`None` for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Record timestamp in milliseconds since the Unix epoch, when the broker gave one.
    pub timestamp: Option<i64>,
}

impl Delivery {
    /// Decodes the CloudEvents event, in either binding mode.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) when the record is not a valid event of the contract (including an
    /// empty value).
    pub fn event(&self) -> Result<Event> {
        Ok(binding::decode(&self.headers, self.payload())?)
    }

    /// The value bytes; empty for a tombstone.
    pub fn payload(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// The last value of a header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// The last value of a header, if it is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

pub(crate) fn find_header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
