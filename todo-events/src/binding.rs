//! The CloudEvents [Kafka protocol binding], both modes, independent of any Kafka client.
//!
//! - Structured mode: the whole event is the record value (JSON); header `content-type:
//!   application/cloudevents+json; charset=UTF-8`.
//! - Binary mode: the attributes are `ce_*` headers, `content-type` is the data's media type (`application/json`),
//!   and the record value is the `data` JSON alone.
//!
//! In both modes the record key is the partition key (`data.user_id`). [`decode`] accepts either mode, and a bare
//! structured value with no headers (what many producers write).
//!
//! ```
//! use todo_events::binding::{decode, encode, Mode};
//! # use todo_events::{Event, TaskDeleted};
//! # let now = chrono::Utc::now();
//! # let event = Event::new("todo-backend", now, TaskDeleted {
//! #     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "t".into(), deleted_at: now });
//! for mode in [Mode::Structured, Mode::Binary] {
//!     let record = encode(&event, mode);
//!     assert_eq!(record.key.as_deref(), Some(event.partition_key().as_bytes()));
//!     assert_eq!(decode(&record.headers, &record.value)?, event);
//! }
//! # Ok::<(), todo_events::Error>(())
//! ```
//!
//! [Kafka protocol binding]: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md

use serde_json::{Map, Value};

use crate::event::{CONTENT_TYPE_JSON, SPEC_VERSION, is_json_content_type};
use crate::{Error, Event, Result};

/// The `content-type` of a structured-mode record.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// The header prefix of attributes in binary mode.
pub const HEADER_PREFIX: &str = "ce_";
/// The content-type header name.
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// Which binding mode to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The whole event as the JSON value (the default, as the design's Dapr publisher writes).
    #[default]
    Structured,
    /// Attributes as `ce_*` headers, data as the value.
    Binary,
}

/// A Kafka record as the binding sees it: key, headers and value bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Record key: the partition key.
    pub key: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Record value.
    pub value: Vec<u8>,
}

/// Encodes an event as a Kafka record in the given mode.
pub fn encode(event: &Event, mode: Mode) -> Record {
    let key = Some(event.partition_key().into_bytes());
    match mode {
        Mode::Structured => Record {
            key,
            headers: vec![(
                CONTENT_TYPE_HEADER.to_owned(),
                STRUCTURED_CONTENT_TYPE.as_bytes().to_vec(),
            )],
            value: event.to_vec(),
        },
        Mode::Binary => {
            let Value::Object(mut attrs) = serde_json::to_value(event).unwrap_or(Value::Null)
            else {
                return Record::default();
            };
            let data = attrs.remove("data").unwrap_or(Value::Null);
            attrs.remove("datacontenttype");
            let mut headers = vec![(
                CONTENT_TYPE_HEADER.to_owned(),
                CONTENT_TYPE_JSON.as_bytes().to_vec(),
            )];
            for (name, value) in attrs {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                headers.push((format!("{HEADER_PREFIX}{name}"), text.into_bytes()));
            }
            Record {
                key,
                headers,
                value: serde_json::to_vec(&data).unwrap_or_default(),
            }
        }
    }
}

/// Decodes a record in either mode, detected from its headers.
///
/// # Errors
/// [`Error::Binding`] for headers that are not UTF-8 or a data content type other than JSON; otherwise the errors
/// of [`Event::from_slice`].
pub fn decode(headers: &[(String, Vec<u8>)], value: &[u8]) -> Result<Event> {
    let header = |name: &str| {
        headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let content_type = header(CONTENT_TYPE_HEADER)
        .map(|v| {
            std::str::from_utf8(v)
                .map_err(|_| Error::Binding("content-type header is not UTF-8".into()))
        })
        .transpose()?;
    let binary = header("ce_specversion").is_some()
        && !content_type.is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/cloudevents")
        });
    if !binary {
        return Event::from_slice(value);
    }
    if let Some(ct) = content_type {
        if !is_json_content_type(ct) {
            return Err(Error::Binding(format!(
                "unsupported data content type `{ct}` (expected application/json)"
            )));
        }
    }
    let mut attrs = Map::new();
    for (name, raw) in headers {
        let Some(attr) = name.strip_prefix(HEADER_PREFIX) else {
            continue;
        };
        let text = std::str::from_utf8(raw)
            .map_err(|_| Error::Binding(format!("header `{name}` is not UTF-8")))?;
        attrs.insert(attr.to_owned(), Value::String(text.to_owned()));
    }
    let data: Value = serde_json::from_slice(value).map_err(|e| Error::from_serde("data", &e))?;
    attrs.insert("data".into(), data);
    attrs
        .entry("specversion")
        .or_insert_with(|| Value::String(SPEC_VERSION.into()));
    Event::from_attributes(attrs)
}

/// Decodes a binary- or structured-mode record.
///
/// # Errors
/// As [`decode`].
pub fn decode_record(record: &Record) -> Result<Event> {
    decode(&record.headers, &record.value)
}
