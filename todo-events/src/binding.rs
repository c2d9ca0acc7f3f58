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
///
/// ```
/// use todo_events::binding::{CONTENT_TYPE_HEADER, HEADER_PREFIX, Mode, STRUCTURED_CONTENT_TYPE, encode};
/// # use todo_events::{Event, TaskDeleted};
/// # let now = chrono::Utc::now();
/// # let event = Event::new("todo-backend", now, TaskDeleted {
/// #     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "t".into(), deleted_at: now });
/// let record = encode(&event, Mode::Structured);
/// assert_eq!(record.headers, [(CONTENT_TYPE_HEADER.to_owned(), STRUCTURED_CONTENT_TYPE.as_bytes().to_vec())]);
/// let binary = encode(&event, Mode::Binary);
/// assert!(binary.headers.iter().any(|(k, v)| k == &format!("{HEADER_PREFIX}type") && v == b"task.deleted"));
/// ```
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// The header prefix of attributes in binary mode.
///
/// ```
/// assert_eq!(todo_events::binding::HEADER_PREFIX, "ce_");
/// ```
pub const HEADER_PREFIX: &str = "ce_";
/// The content-type header name.
///
/// ```
/// assert_eq!(todo_events::binding::CONTENT_TYPE_HEADER, "content-type");
/// ```
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// Which binding mode to write.
///
/// ```
/// assert_eq!(todo_events::binding::Mode::default(), todo_events::binding::Mode::Structured);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The whole event as the JSON value (the default, as the design's Dapr publisher writes).
    #[default]
    Structured,
    /// Attributes as `ce_*` headers, data as the value.
    Binary,
}

/// A Kafka record as the binding sees it: key, headers and value bytes.
///
/// ```
/// use todo_events::binding::{Mode, encode};
/// # use todo_events::{Event, TaskDeleted};
/// # let now = chrono::Utc::now();
/// # let event = Event::new("todo-backend", now, TaskDeleted {
/// #     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "t".into(), deleted_at: now });
/// let record = encode(&event, Mode::Binary);
/// assert_eq!(record.key, Some(event.partition_key().into_bytes()));
/// let data: serde_json::Value = serde_json::from_slice(&record.value)?;
/// assert_eq!(data["title"], "t");
/// # Ok::<(), serde_json::Error>(())
/// ```
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
///
/// Binary mode writes every attribute as a `ce_<name>` string header, extension attributes included; an integer
/// or boolean extension is therefore read back as a string.
///
/// ```
/// use todo_events::binding::{Mode, decode_record, encode};
/// # use todo_events::{Event, TaskDeleted};
/// # let now = chrono::Utc::now();
/// # let event = Event::new("todo-backend", now, TaskDeleted {
/// #     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "t".into(), deleted_at: now });
/// let record = encode(&event, Mode::Structured);
/// assert_eq!(record.value, event.to_vec());
/// assert_eq!(decode_record(&record)?, event);
/// # Ok::<(), todo_events::Error>(())
/// ```
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
///
/// ```
/// use todo_events::binding::decode;
/// let headers = [
///     ("content-type".to_owned(), b"application/json".to_vec()),
///     ("ce_specversion".to_owned(), b"1.0".to_vec()),
///     ("ce_id".to_owned(), b"16fd2706-8baf-433b-82eb-8c7fada847da".to_vec()),
///     ("ce_source".to_owned(), b"todo-backend".to_vec()),
///     ("ce_type".to_owned(), b"task.deleted".to_vec()),
///     ("ce_time".to_owned(), b"2026-02-09T17:00:00Z".to_vec()),
///     ("ce_traceparent".to_owned(), b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
/// ];
/// let value = br#"{"task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",
///     "title":"Buy groceries","deleted_at":"2026-02-09T17:00:00Z"}"#;
/// let event = decode(&headers, value)?;
/// assert_eq!(event.partition_key(), "7c9e6679-7425-40de-944b-e07fc1f90ae7");
/// assert!(event.extension_str("traceparent").is_some());
/// // Without headers the value is read as a structured event.
/// assert_eq!(decode(&[], &event.to_vec())?, event);
/// # Ok::<(), todo_events::Error>(())
/// ```
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
    if let Some(ct) = content_type
        && !is_json_content_type(ct)
    {
        return Err(Error::Binding(format!(
            "unsupported data content type `{ct}` (expected application/json)"
        )));
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
///
/// ```
/// use todo_events::binding::{Mode, decode_record, encode};
/// # use todo_events::{Event, TaskDeleted};
/// # let now = chrono::Utc::now();
/// # let event = Event::new("todo-backend", now, TaskDeleted {
/// #     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "t".into(), deleted_at: now });
/// assert_eq!(decode_record(&encode(&event, Mode::Binary))?, event);
/// # Ok::<(), todo_events::Error>(())
/// ```
pub fn decode_record(record: &Record) -> Result<Event> {
    decode(&record.headers, &record.value)
}
