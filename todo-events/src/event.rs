//! The typed CloudEvents envelope.

mod envelope;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::payload::{
    ReminderTriggered, TaskCompleted, TaskCreated, TaskDeleted, TaskExtra, TaskUpdated,
};
use crate::{Error, Result, Topic};

/// The CloudEvents version this crate writes, and the only one it reads.
pub const SPEC_VERSION: &str = "1.0";
/// The `datacontenttype` of every event this crate writes.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The `type` attribute: which of the five events this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// `task.created`
    TaskCreated,
    /// `task.updated`
    TaskUpdated,
    /// `task.completed`
    TaskCompleted,
    /// `task.deleted`
    TaskDeleted,
    /// `reminder.triggered`
    ReminderTriggered,
}

impl EventType {
    /// Every event type of the contract.
    ///
    /// ```
    /// let names: Vec<_> = todo_events::EventType::ALL.iter().map(|t| t.as_str()).collect();
    /// assert_eq!(names, ["task.created", "task.updated", "task.completed", "task.deleted", "reminder.triggered"]);
    /// ```
    pub const ALL: [EventType; 5] = [
        EventType::TaskCreated,
        EventType::TaskUpdated,
        EventType::TaskCompleted,
        EventType::TaskDeleted,
        EventType::ReminderTriggered,
    ];

    /// The wire name, such as `task.created`.
    ///
    /// ```
    /// use todo_events::EventType;
    /// assert_eq!(EventType::ReminderTriggered.as_str(), "reminder.triggered");
    /// assert_eq!(EventType::TaskCreated.to_string(), "task.created");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TaskCreated => "task.created",
            EventType::TaskUpdated => "task.updated",
            EventType::TaskCompleted => "task.completed",
            EventType::TaskDeleted => "task.deleted",
            EventType::ReminderTriggered => "reminder.triggered",
        }
    }

    /// The topic events of this type are published to.
    ///
    /// ```
    /// use todo_events::{EventType, Topic};
    /// assert_eq!(EventType::TaskUpdated.topic(), Topic::TaskUpdates);
    /// assert_eq!(EventType::TaskDeleted.topic().name(), "todo.task-events");
    /// ```
    pub fn topic(self) -> Topic {
        match self {
            EventType::TaskCreated | EventType::TaskCompleted | EventType::TaskDeleted => {
                Topic::TaskEvents
            }
            EventType::TaskUpdated => Topic::TaskUpdates,
            EventType::ReminderTriggered => Topic::Reminders,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = Error;

    /// ```
    /// use todo_events::{Error, EventType};
    /// assert_eq!("task.completed".parse::<EventType>()?, EventType::TaskCompleted);
    /// assert_eq!("x".parse::<EventType>(), Err(Error::UnknownType("x".into())));
    /// # Ok::<(), Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::UnknownType(s.to_owned()))
    }
}

/// The payload of an [`Event`], one variant per [`EventType`].
///
/// Every payload type converts into it with `From`, so [`Event::new`] takes the payload directly.
///
/// ```
/// use todo_events::{EventData, EventType, TaskDeleted};
/// # let now = chrono::Utc::now();
/// let data: EventData = TaskDeleted {
///     task_id: uuid::Uuid::new_v4(),
///     user_id: uuid::Uuid::new_v4(),
///     title: "Buy groceries".into(),
///     deleted_at: now,
/// }
/// .into();
/// assert_eq!(data.event_type(), EventType::TaskDeleted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// `task.created`
    TaskCreated(TaskCreated),
    /// `task.updated`
    TaskUpdated(TaskUpdated),
    /// `task.completed`
    TaskCompleted(TaskCompleted),
    /// `task.deleted`
    TaskDeleted(TaskDeleted),
    /// `reminder.triggered`
    ReminderTriggered(ReminderTriggered),
}

impl EventData {
    /// The event type of this payload.
    ///
    /// ```
    /// # use todo_events::{EventData, EventType, TaskDeleted};
    /// # let d = TaskDeleted { task_id: uuid::Uuid::nil(), user_id: uuid::Uuid::nil(), title: "t".into(), deleted_at: chrono::Utc::now() };
    /// assert_eq!(EventData::from(d).event_type().topic().name(), "todo.task-events");
    /// ```
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::TaskCreated(_) => EventType::TaskCreated,
            EventData::TaskUpdated(_) => EventType::TaskUpdated,
            EventData::TaskCompleted(_) => EventType::TaskCompleted,
            EventData::TaskDeleted(_) => EventType::TaskDeleted,
            EventData::ReminderTriggered(_) => EventType::ReminderTriggered,
        }
    }

    /// The owning user (`data.user_id`), the partition key of every event.
    ///
    /// ```
    /// # use todo_events::{EventData, TaskDeleted};
    /// let user = uuid::Uuid::new_v4();
    /// let d = TaskDeleted { task_id: uuid::Uuid::nil(), user_id: user, title: "t".into(), deleted_at: chrono::Utc::now() };
    /// assert_eq!(EventData::from(d).user_id(), user);
    /// ```
    pub fn user_id(&self) -> Uuid {
        match self {
            EventData::TaskCreated(d) => d.user_id,
            EventData::TaskUpdated(d) => d.user_id,
            EventData::TaskCompleted(d) => d.user_id,
            EventData::TaskDeleted(d) => d.user_id,
            EventData::ReminderTriggered(d) => d.user_id,
        }
    }

    /// The task the event is about (`data.task_id`).
    ///
    /// ```
    /// # use todo_events::{EventData, TaskDeleted};
    /// let task = uuid::Uuid::new_v4();
    /// let d = TaskDeleted { task_id: task, user_id: uuid::Uuid::nil(), title: "t".into(), deleted_at: chrono::Utc::now() };
    /// assert_eq!(EventData::from(d).task_id(), task);
    /// ```
    pub fn task_id(&self) -> Uuid {
        match self {
            EventData::TaskCreated(d) => d.task_id,
            EventData::TaskUpdated(d) => d.task_id,
            EventData::TaskCompleted(d) => d.task_id,
            EventData::TaskDeleted(d) => d.task_id,
            EventData::ReminderTriggered(d) => d.task_id,
        }
    }

    fn from_value(ty: EventType, data: Value) -> Result<Self> {
        fn de<'de, T: serde::Deserialize<'de>>(
            v: impl serde::Deserializer<'de, Error = serde_json::Error>,
        ) -> Result<T> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // A missing field is reported by its parent's deserializer, so its path is the parent's;
                // `from_serde` appends the field name.
                let full = if path == "." {
                    "data".to_owned()
                } else {
                    format!("data.{path}")
                };
                Error::from_serde(&full, &inner)
            })
        }
        Ok(match ty {
            EventType::TaskCreated => {
                // `TaskExtra` is flattened into `TaskCreated`: serde buffers its fields, so an error in one of them
                // loses its path. Reading the extra fields on their own finds it again.
                match de::<TaskCreated>(&data) {
                    Ok(d) => EventData::TaskCreated(d),
                    Err(Error::InvalidField { field, message }) if field == "data" => {
                        return Err(match de::<TaskExtra>(&data) {
                            Err(e @ Error::InvalidField { .. }) => e,
                            _ => Error::InvalidField { field, message },
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            EventType::TaskUpdated => EventData::TaskUpdated(de(data)?),
            EventType::TaskCompleted => EventData::TaskCompleted(de(data)?),
            EventType::TaskDeleted => EventData::TaskDeleted(de(data)?),
            EventType::ReminderTriggered => EventData::ReminderTriggered(de(data)?),
        })
    }
}

/// The payload object, its members in the order of the payload's fields.
impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            EventData::TaskCreated(d) => d.serialize(serializer),
            EventData::TaskUpdated(d) => d.serialize(serializer),
            EventData::TaskCompleted(d) => d.serialize(serializer),
            EventData::TaskDeleted(d) => d.serialize(serializer),
            EventData::ReminderTriggered(d) => d.serialize(serializer),
        }
    }
}

macro_rules! impl_from_payload {
    ($($t:ident),*) => {$(
        impl From<$t> for EventData {
            fn from(d: $t) -> Self {
                EventData::$t(d)
            }
        }
    )*};
}
impl_from_payload!(
    TaskCreated,
    TaskUpdated,
    TaskCompleted,
    TaskDeleted,
    ReminderTriggered
);

/// A CloudEvents 1.0 event of this contract: the envelope attributes plus a typed payload.
///
/// Written in structured JSON mode with every required attribute (`specversion`, `id`, `source`, `type`, `time`,
/// `datacontenttype`); read tolerantly (see the [crate docs](crate)).
///
/// ```
/// use todo_events::{Event, EventType, SOURCE_BACKEND, TaskDeleted, Topic};
/// # let now = chrono::Utc::now();
/// let user = uuid::Uuid::new_v4();
/// let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
/// let event = Event::new(SOURCE_BACKEND, now, data);
/// assert_eq!(event.event_type(), EventType::TaskDeleted);
/// assert_eq!(event.topic(), Topic::TaskEvents);
/// assert_eq!(event.partition_key(), user.to_string());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: Uuid,
    source: String,
    time: DateTime<Utc>,
    subject: Option<String>,
    data: EventData,
    extensions: BTreeMap<String, Value>,
}

impl Event {
    /// A new event with a fresh id: a time-ordered UUID (v7), unique as a random one, so that the indexes keyed by
    /// event id (the audit log's, the consumers' processed markers) take new events at their end instead of at a
    /// random page each.
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let a = Event::new("todo-backend", now, data.clone());
    /// let b = Event::new("todo-backend", now, data);
    /// assert_ne!(a.id(), b.id());
    /// // Time-ordered: a later event of the process has a greater id.
    /// assert_eq!(a.id().get_version_num(), 7);
    /// assert!(a.id() < b.id());
    /// assert_eq!((a.source(), a.time()), ("todo-backend", now));
    /// ```
    pub fn new(source: impl Into<String>, time: DateTime<Utc>, data: impl Into<EventData>) -> Self {
        Self::with_id(Uuid::now_v7(), source, time, data)
    }

    /// A new event with the given id (for replays and tests).
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let id = uuid::Uuid::new_v4();
    /// assert_eq!(Event::with_id(id, "todo-backend", now, data).id(), id);
    /// ```
    pub fn with_id(
        id: Uuid,
        source: impl Into<String>,
        time: DateTime<Utc>,
        data: impl Into<EventData>,
    ) -> Self {
        Event {
            id,
            source: source.into(),
            time,
            subject: None,
            data: data.into(),
            extensions: BTreeMap::new(),
        }
    }

    /// Sets the `subject` attribute (this implementation writes the task id there).
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let task = data.task_id.to_string();
    /// let event = Event::new("todo-backend", now, data).with_subject(task.clone());
    /// assert_eq!(event.subject(), Some(task.as_str()));
    /// ```
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets an extension attribute such as `traceparent`.
    ///
    /// Names must be lower-case ASCII letters and digits (CloudEvents attribute naming); other names and the
    /// names of core attributes are ignored. Values must be strings, integers or booleans (the CloudEvents
    /// types JSON can carry); `null`, floats, arrays and objects are ignored. In binary mode every extension
    /// travels as a string header, so it is read back as a string.
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # let now = chrono::Utc::now();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::nil(), user_id: uuid::Uuid::nil(), title: "t".into(), deleted_at: now };
    /// let event = Event::new("todo-backend", now, data)
    ///     .with_extension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    ///     .with_extension("attempt", 2)
    ///     .with_extension("Bad-Name", "ignored")
    ///     .with_extension("nested", serde_json::json!({"ignored": true}));
    /// assert_eq!(event.extensions().len(), 2);
    /// assert!(event.to_json().contains(r#""traceparent":"00-4bf9"#));
    /// ```
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        let value = value.into();
        if is_extension_name(&name) && is_extension_value(&value) {
            self.extensions.insert(name, value);
        }
        self
    }

    /// The event id: the idempotency key of every consumer.
    ///
    /// The getters below read the envelope's attributes and payload:
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let event = Event::new("todo-backend", now, data.clone()).with_extension("traceparent", "00-ab-cd-01");
    /// assert_eq!(event.source(), "todo-backend");
    /// assert_eq!(event.time(), now);
    /// assert_eq!(event.subject(), None);
    /// assert_eq!(event.extension_str("traceparent"), Some("00-ab-cd-01"));
    /// assert_eq!(event.extensions().len(), 1);
    /// assert_eq!(event.data().user_id(), user);
    /// assert_eq!(event.clone().into_data(), data.into());
    /// assert!(!event.id().is_nil());
    /// ```
    pub fn id(&self) -> Uuid {
        self.id
    }
    /// The `source` attribute.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The `time` attribute.
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }
    /// The `subject` attribute, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// The typed payload.
    pub fn data(&self) -> &EventData {
        &self.data
    }
    /// Consumes the event, returning its payload.
    pub fn into_data(self) -> EventData {
        self.data
    }
    /// Extension attributes (for example `traceparent`), kept as read.
    pub fn extensions(&self) -> &BTreeMap<String, Value> {
        &self.extensions
    }
    /// One extension attribute as a string, if present and a string.
    pub fn extension_str(&self, name: &str) -> Option<&str> {
        self.extensions.get(name).and_then(Value::as_str)
    }
    /// The `type` attribute.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }
    /// The topic this event is published to.
    pub fn topic(&self) -> Topic {
        self.event_type().topic()
    }
    /// The partition key: `data.user_id` as a hyphenated lower-case UUID.
    pub fn partition_key(&self) -> String {
        self.data.user_id().to_string()
    }

    /// Encodes the event in structured JSON mode.
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let json = Event::new("todo-backend", now, data).to_json();
    /// assert!(json.starts_with(r#"{"specversion":"1.0","id":""#));
    /// assert!(json.contains(r#""type":"task.deleted","time":"2026-02-09T17:00:00Z","datacontenttype":"application/json""#));
    /// ```
    pub fn to_json(&self) -> String {
        // Serialising a map of strings and JSON values into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Encodes the event in structured JSON mode, as bytes.
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let event = Event::new("todo-backend", now, data);
    /// assert_eq!(event.to_vec(), event.to_json().into_bytes());
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an event from structured-mode JSON bytes.
    ///
    /// The common shape (the one [`Event::to_vec`] writes) is read in one pass, straight into the envelope's and the
    /// payload's types; anything else goes through a `serde_json::Value`, which also finds the path of an error.
    /// Both give the same event for the same input.
    ///
    /// # Errors
    /// [`Error::Syntax`] with line and column for malformed JSON, [`Error::MissingField`] and
    /// [`Error::InvalidField`] with the field's path, [`Error::UnknownType`], [`Error::UnsupportedSpecVersion`].
    ///
    /// ```
    /// use todo_events::{Error, Event};
    /// let err = Event::from_slice(br#"{"id": "#).unwrap_err();
    /// assert!(matches!(err, Error::Syntax { line: 1, .. }));
    /// let err = Event::from_slice(br#"{"id":"550e8400-e29b-41d4-a716-446655440000","source":"s","type":"x",
    ///     "time":"2026-02-09T14:30:00Z","data":{}}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "unknown event type `x`");
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if let Some(event) = envelope::decode(bytes) {
            return Ok(event);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::from_serde("", &e))?;
        Self::from_value(value)
    }

    /// Decodes an event from a structured-mode JSON string.
    ///
    /// # Errors
    /// As [`Event::from_slice`].
    ///
    /// ```
    /// # use todo_events::{Event, TaskDeleted};
    /// # use chrono::{TimeZone, Utc};
    /// # let now = Utc.with_ymd_and_hms(2026, 2, 9, 17, 0, 0).unwrap();
    /// # let user = uuid::Uuid::new_v4();
    /// # let data = TaskDeleted { task_id: uuid::Uuid::new_v4(), user_id: user, title: "Buy groceries".into(), deleted_at: now };
    /// let event = Event::new("todo-backend", now, data);
    /// assert_eq!(Event::from_json(&event.to_json())?, event);
    /// # Ok::<(), todo_events::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Self> {
        Self::from_slice(json.as_bytes())
    }

    /// Decodes an event from an already parsed JSON value.
    ///
    /// # Errors
    /// As [`Event::from_slice`], and [`Error::NotAnObject`] for a value that is not a JSON object.
    ///
    /// ```
    /// use todo_events::{Error, Event};
    /// assert_eq!(Event::from_value(serde_json::json!([1])), Err(Error::NotAnObject));
    /// ```
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(Error::NotAnObject);
        };
        Self::from_attributes(map)
    }

    pub(crate) fn from_attributes(mut map: Map<String, Value>) -> Result<Self> {
        match map.remove("specversion") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == SPEC_VERSION => {}
            Some(Value::String(v)) => return Err(Error::UnsupportedSpecVersion(v)),
            Some(other) => {
                return Err(invalid(
                    "specversion",
                    format!("expected a string, found {}", kind(&other)),
                ));
            }
        }
        let ty: EventType = take_str(&mut map, "type")?.parse()?;
        let id = take_str(&mut map, "id")?;
        let id =
            Uuid::parse_str(&id).map_err(|e| invalid("id", format!("expected a UUID: {e}")))?;
        let source = take_str(&mut map, "source")?;
        if source.is_empty() {
            return Err(invalid("source", "must not be empty".into()));
        }
        let time = take_str(&mut map, "time")?;
        let time = DateTime::parse_from_rfc3339(&time)
            .map_err(|e| invalid("time", format!("expected an RFC 3339 timestamp: {e}")))?
            .with_timezone(&Utc);
        match map.remove("datacontenttype") {
            None | Some(Value::Null) => {}
            Some(Value::String(ct)) if is_json_content_type(&ct) => {}
            Some(Value::String(ct)) => {
                return Err(invalid(
                    "datacontenttype",
                    format!("expected application/json, found `{ct}`"),
                ));
            }
            Some(other) => {
                return Err(invalid(
                    "datacontenttype",
                    format!("expected a string, found {}", kind(&other)),
                ));
            }
        }
        let subject = match map.remove("subject") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(invalid(
                    "subject",
                    format!("expected a string, found {}", kind(&other)),
                ));
            }
        };
        if map.contains_key("data_base64") {
            return Err(invalid(
                "data_base64",
                "binary data is not part of this contract".into(),
            ));
        }
        let data = map.remove("data").ok_or_else(|| Error::MissingField {
            field: "data".into(),
        })?;
        if !data.is_object() {
            return Err(invalid(
                "data",
                format!("expected an object, found {}", kind(&data)),
            ));
        }
        let data = EventData::from_value(ty, data)?;
        map.remove("dataschema");
        let extensions = map
            .into_iter()
            .filter(|(k, v)| is_extension_name(k) && is_extension_value(v))
            .collect();
        Ok(Event {
            id,
            source,
            time,
            subject,
            data,
            extensions,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", SPEC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("type", self.event_type().as_str())?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("datacontenttype", CONTENT_TYPE_JSON)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        for (k, v) in &self.extensions {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("data", &self.data)?;
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Event::from_value(value).map_err(serde::de::Error::custom)
    }
}

const CORE_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "subject",
    "data",
    "dataschema",
    "data_base64",
];

/// CloudEvents attribute names: lower-case letters and digits, and not a core attribute.
pub(crate) fn is_extension_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !CORE_ATTRIBUTES.contains(&name)
}

/// CloudEvents attribute values JSON can carry: string, integer, boolean.
fn is_extension_value(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Bool(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

pub(crate) fn is_json_content_type(ct: &str) -> bool {
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json") || media == "text/json"
}

fn take_str(map: &mut Map<String, Value>, field: &str) -> Result<String> {
    match map.remove(field) {
        None | Some(Value::Null) => Err(Error::MissingField {
            field: field.to_owned(),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(
            field,
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn invalid(field: &str, message: String) -> Error {
    Error::InvalidField {
        field: field.to_owned(),
        message,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
