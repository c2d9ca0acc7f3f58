//! Dead-letter topics: the `dlq-*` headers, and tools to list, inspect and replay a dead-letter topic.
//!
//! A dead-lettered record keeps the original key, value and headers, and gains these headers (UTF-8 text):
//!
//! | header | value |
//! |---|---|
//! | [`dlq-error`](ERROR) | the error chain, such as `retryable: db timeout` |
//! | [`dlq-error-class`](ERROR_CLASS) | `retryable` (retries exhausted), `permanent` or `undecodable` |
//! | [`dlq-attempts`](ATTEMPTS) | handler attempts made, decimal; `0` for an undecodable record |
//! | [`dlq-original-topic`](ORIGINAL_TOPIC) | topic the record came from |
//! | [`dlq-original-partition`](ORIGINAL_PARTITION) | its partition, decimal |
//! | [`dlq-original-offset`](ORIGINAL_OFFSET) | its offset, decimal |
//! | [`dlq-original-timestamp`](ORIGINAL_TIMESTAMP) | its timestamp in ms since the Unix epoch, decimal (absent if the broker gave none) |
//! | [`dlq-consumer-group`](CONSUMER_GROUP) | the consumer group that gave up |
//! | [`dlq-failed-at`](FAILED_AT) | when it was dead-lettered, ms since the Unix epoch |
//!
//! [`replay`] publishes the original key, value and non-`dlq-*` headers back to the original topic: the event
//! keeps its `id`, so idempotent consumers skip it if it had in fact been processed.

use crate::broker::{LogReader, Publisher};
use crate::record::{find_header, now_millis};
use crate::{Ack, Delivery, Error, OutgoingRecord, Result};

/// Header: the error chain.
pub const ERROR: &str = "dlq-error";
/// Header: the failure class (`retryable`, `permanent`, `undecodable`).
pub const ERROR_CLASS: &str = "dlq-error-class";
/// Header: handler attempts made.
pub const ATTEMPTS: &str = "dlq-attempts";
/// Header: original topic.
pub const ORIGINAL_TOPIC: &str = "dlq-original-topic";
/// Header: original partition.
pub const ORIGINAL_PARTITION: &str = "dlq-original-partition";
/// Header: original offset.
pub const ORIGINAL_OFFSET: &str = "dlq-original-offset";
/// Header: original record timestamp (ms since the Unix epoch).
pub const ORIGINAL_TIMESTAMP: &str = "dlq-original-timestamp";
/// Header: the consumer group that dead-lettered the record.
pub const CONSUMER_GROUP: &str = "dlq-consumer-group";
/// Header: when the record was dead-lettered (ms since the Unix epoch).
pub const FAILED_AT: &str = "dlq-failed-at";
/// The prefix of every dead-letter header.
pub const HEADER_PREFIX: &str = "dlq-";

/// The dead-letter topic of a topic: `<topic>.dlq`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The dead-letter record for a delivery.
pub fn dead_letter_record(
    delivery: &Delivery,
    group: &str,
    class: &str,
    error: &str,
    attempts: u32,
) -> OutgoingRecord {
    let mut headers: Vec<(String, Vec<u8>)> = delivery
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with(HEADER_PREFIX))
        .cloned()
        .collect();
    let mut put = |k: &str, v: String| headers.push((k.to_owned(), v.into_bytes()));
    put(ERROR, error.to_owned());
    put(ERROR_CLASS, class.to_owned());
    put(ATTEMPTS, attempts.to_string());
    put(ORIGINAL_TOPIC, delivery.topic.clone());
    put(ORIGINAL_PARTITION, delivery.partition.to_string());
    put(ORIGINAL_OFFSET, delivery.offset.to_string());
    if let Some(ts) = delivery.timestamp {
        put(ORIGINAL_TIMESTAMP, ts.to_string());
    }
    put(CONSUMER_GROUP, group.to_owned());
    put(FAILED_AT, now_millis().to_string());
    OutgoingRecord {
        topic: dlq_topic(&delivery.topic),
        key: delivery.key.clone(),
        headers,
        value: delivery.payload().to_vec(),
    }
}

/// The `dlq-*` headers of a dead-lettered record, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqInfo {
    /// `dlq-error`.
    pub error: String,
    /// `dlq-error-class`.
    pub error_class: String,
    /// `dlq-attempts`.
    pub attempts: u32,
    /// `dlq-original-topic`.
    pub original_topic: String,
    /// `dlq-original-partition`.
    pub original_partition: i32,
    /// `dlq-original-offset`.
    pub original_offset: i64,
    /// `dlq-original-timestamp`.
    pub original_timestamp: Option<i64>,
    /// `dlq-consumer-group`.
    pub consumer_group: String,
    /// `dlq-failed-at`.
    pub failed_at: Option<i64>,
}

/// A record read from a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqMessage {
    /// The record as stored in the dead-letter topic.
    pub delivery: Delivery,
    /// Its parsed `dlq-*` headers.
    pub info: DlqInfo,
}

impl DlqMessage {
    /// Parses the `dlq-*` headers of a record read from a dead-letter topic.
    ///
    /// # Errors
    /// [`Error::InvalidDlqRecord`] when a required header is missing or not a number where one is expected.
    pub fn from_delivery(delivery: Delivery) -> Result<Self> {
        let text = |name: &str| -> Result<String> {
            let raw = find_header(&delivery.headers, name)
                .ok_or_else(|| Error::InvalidDlqRecord(format!("missing header `{name}`")))?;
            String::from_utf8(raw.to_vec())
                .map_err(|_| Error::InvalidDlqRecord(format!("header `{name}` is not UTF-8")))
        };
        fn num<T: std::str::FromStr>(name: &str, s: String) -> Result<T> {
            s.trim().parse().map_err(|_| {
                Error::InvalidDlqRecord(format!("header `{name}` is not a number: `{s}`"))
            })
        }
        let optional = |name: &str| text(name).ok().and_then(|s| s.trim().parse().ok());
        let info = DlqInfo {
            error: text(ERROR)?,
            error_class: text(ERROR_CLASS).unwrap_or_default(),
            attempts: num(ATTEMPTS, text(ATTEMPTS)?)?,
            original_topic: text(ORIGINAL_TOPIC)?,
            original_partition: num(ORIGINAL_PARTITION, text(ORIGINAL_PARTITION)?)?,
            original_offset: num(ORIGINAL_OFFSET, text(ORIGINAL_OFFSET)?)?,
            original_timestamp: optional(ORIGINAL_TIMESTAMP),
            consumer_group: text(CONSUMER_GROUP)?,
            failed_at: optional(FAILED_AT),
        };
        Ok(DlqMessage { delivery, info })
    }

    /// The record that [`replay`] publishes: original topic, key, value and non-`dlq-*` headers.
    pub fn replay_record(&self) -> OutgoingRecord {
        OutgoingRecord {
            topic: self.info.original_topic.clone(),
            key: self.delivery.key.clone(),
            headers: self
                .delivery
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with(HEADER_PREFIX))
                .cloned()
                .collect(),
            value: self.delivery.payload().to_vec(),
        }
    }
}

const PAGE: usize = 500;

/// Every record of a dead-letter topic, partition by partition, in offset order.
///
/// # Errors
/// Errors of the [`LogReader`], and [`Error::InvalidDlqRecord`] for a record without the `dlq-*` headers.
pub async fn list(reader: &dyn LogReader, dlq_topic: &str) -> Result<Vec<DlqMessage>> {
    let mut out = Vec::new();
    for p in reader.partitions(dlq_topic).await? {
        // Read until the reader reports the end, rather than up to the high watermark, which some brokers
        // under-report.
        let mut from = p.low;
        loop {
            let batch = reader.read(dlq_topic, p.partition, from, PAGE).await?;
            let Some(last) = batch.last() else {
                break;
            };
            from = last.offset + 1;
            for d in batch {
                out.push(DlqMessage::from_delivery(d)?);
            }
        }
    }
    Ok(out)
}

/// One record of a dead-letter topic.
///
/// # Errors
/// [`Error::NoRecord`] if there is no record at that offset; otherwise as [`list`].
pub async fn inspect(
    reader: &dyn LogReader,
    dlq_topic: &str,
    partition: i32,
    offset: i64,
) -> Result<DlqMessage> {
    let batch = reader.read(dlq_topic, partition, offset, 1).await?;
    match batch.into_iter().next() {
        Some(d) if d.offset == offset => DlqMessage::from_delivery(d),
        _ => Err(Error::NoRecord {
            topic: dlq_topic.to_owned(),
            partition,
            offset,
        }),
    }
}

/// Which records [`replay`] republishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Every record of the dead-letter topic.
    All,
    /// The record at one partition and offset.
    One {
        /// Partition of the dead-letter topic.
        partition: i32,
        /// Offset in it.
        offset: i64,
    },
}

/// One replayed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Where it was in the dead-letter topic.
    pub dlq_partition: i32,
    /// Offset in the dead-letter topic.
    pub dlq_offset: i64,
    /// The topic it went back to.
    pub topic: String,
    /// Where it was written.
    pub ack: Ack,
}

/// Republishes dead-lettered records to their original topics with their original key, value (hence event id)
/// and non-`dlq-*` headers. The dead-letter topic is left as it is (Kafka has no delete).
///
/// # Errors
/// As [`list`] and [`inspect`]; the first failed publish.
pub async fn replay(
    reader: &dyn LogReader,
    publisher: &dyn Publisher,
    dlq_topic: &str,
    selection: ReplaySelection,
) -> Result<Vec<Replayed>> {
    let messages = match selection {
        ReplaySelection::All => list(reader, dlq_topic).await?,
        ReplaySelection::One { partition, offset } => {
            vec![inspect(reader, dlq_topic, partition, offset).await?]
        }
    };
    let records: Vec<_> = messages.iter().map(DlqMessage::replay_record).collect();
    let acks = publisher.publish_batch(records).await;
    messages
        .iter()
        .zip(acks)
        .map(|(m, ack)| {
            Ok(Replayed {
                dlq_partition: m.delivery.partition,
                dlq_offset: m.delivery.offset,
                topic: m.info.original_topic.clone(),
                ack: ack?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_headers_round_trip() {
        let d = Delivery {
            topic: "t".into(),
            partition: 2,
            offset: 41,
            key: Some(b"k".to_vec()),
            headers: vec![("content-type".into(), b"x".to_vec())],
            payload: Some(b"v".to_vec()),
            timestamp: Some(7),
        };
        let rec = dead_letter_record(&d, "g", "permanent", "boom", 3);
        assert_eq!(rec.topic, "t.dlq");
        let back = Delivery {
            topic: rec.topic.clone(),
            partition: 0,
            offset: 0,
            key: rec.key.clone(),
            headers: rec.headers.clone(),
            payload: Some(rec.value.clone()),
            timestamp: None,
        };
        let m = DlqMessage::from_delivery(back).unwrap();
        assert_eq!(m.info.error, "boom");
        assert_eq!(m.info.error_class, "permanent");
        assert_eq!(m.info.attempts, 3);
        assert_eq!(
            (
                m.info.original_topic.as_str(),
                m.info.original_partition,
                m.info.original_offset
            ),
            ("t", 2, 41)
        );
        assert_eq!(m.info.original_timestamp, Some(7));
        assert_eq!(m.info.consumer_group, "g");
        let replay = m.replay_record();
        assert_eq!(replay.topic, "t");
        assert_eq!(replay.headers, d.headers);
        assert_eq!(replay.value, b"v");
    }

    #[test]
    fn a_record_without_dlq_headers_is_rejected_with_the_missing_name() {
        let d = Delivery {
            topic: "t.dlq".into(),
            partition: 0,
            offset: 0,
            key: None,
            headers: vec![],
            payload: None,
            timestamp: None,
        };
        let err = DlqMessage::from_delivery(d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid dead-letter record: missing header `dlq-error`"
        );
    }
}
