//! The wire contract of the todo event pipeline.
//!
//! Every task change in the system becomes a [CloudEvents 1.0] event in structured JSON mode, published to one of
//! three Kafka topics and keyed by the owning user's id. This crate owns that contract and nothing else:
//!
//! - [`Event`]: a typed CloudEvents envelope whose `data` is one of the five payloads
//!   ([`TaskCreated`], [`TaskUpdated`], [`TaskCompleted`], [`TaskDeleted`], [`ReminderTriggered`]);
//! - [`EventType`]: the `type` attribute and the routing from type to [`Topic`];
//! - [`TOPICS`] and [`TopicSpec`]: the topic registry (partitions, retention, replication per [`Profile`], dead
//!   letter topics), the single source of truth for the Kafka admin, the Helm chart and the docs;
//! - [`binding`]: the CloudEvents Kafka protocol binding, structured and binary mode;
//! - [`schema`]: the JSON Schema (draft 2020-12) of each event type, as shipped in `schemas/`;
//! - [`Error`]: decode errors that say what is wrong and where.
//!
//! It sits at the bottom of the crate graph: `todo-domain`, `todo-kafka`, `todo-store` and `todo-bin` all depend on
//! it, and it depends only on serde, uuid and chrono. Consumers are tolerant readers: unknown attributes and
//! payload fields are accepted (extension attributes are kept), a missing `specversion` means `1.0`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use todo_events::{Event, EventData, Priority, TaskCreated, Topic};
//! use uuid::Uuid;
//!
//! let user = Uuid::new_v4();
//! let now = Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap();
//! let event = Event::new(
//!     "todo-backend",
//!     now,
//!     TaskCreated {
//!         task_id: Uuid::new_v4(),
//!         user_id: user,
//!         title: "Buy groceries".into(),
//!         description: Some("Milk, eggs, bread".into()),
//!         priority: Priority::High,
//!         tags: vec!["personal".into()],
//!         due_date: None,
//!         recurrence: Some("weekly".into()),
//!         created_at: now,
//!         extra: Default::default(),
//!     },
//! );
//! assert_eq!(event.topic(), Topic::TaskEvents);
//! assert_eq!(event.partition_key(), user.to_string());
//!
//! let json = event.to_json();
//! let decoded = Event::from_slice(json.as_bytes())?;
//! assert_eq!(decoded, event);
//! assert!(matches!(decoded.data(), EventData::TaskCreated(_)));
//! # Ok::<(), todo_events::Error>(())
//! ```
//!
//! # Modules and files
//!
//! | item | what |
//! |------|------|
//! | [`Event`], [`EventData`], [`EventType`] | the envelope, its typed payload and the `type` attribute |
//! | [`TaskCreated`], [`TaskUpdated`] ([`TaskChanges`]), [`TaskCompleted`], [`TaskDeleted`], [`ReminderTriggered`] | the payloads, with [`Priority`] and [`TaskExtra`] |
//! | [`TOPICS`], [`TopicSpec`], [`Topic`], [`Profile`] | the topic registry |
//! | [`binding`] | Kafka records in structured and binary mode |
//! | [`schema`] | JSON Schemas of the envelopes |
//! | `tests/fixtures/` | golden files: the design's examples, decoded and re-encoded by the tests |
//!
//! The crate has no feature flags. The event catalogue (topics, producers, consumer groups, guarantees,
//! versioning) is `docs/events.md` in the repository; `docs/asyncapi.yaml` describes the same in AsyncAPI 3.0.
//!
//! [CloudEvents 1.0]: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md

pub mod binding;
mod error;
mod event;
mod payload;
pub mod schema;
mod topic;

#[doc(inline)]
pub use self::error::{Error, Result};
#[doc(inline)]
pub use self::event::{CONTENT_TYPE_JSON, Event, EventData, EventType, SPEC_VERSION};
#[doc(inline)]
pub use self::payload::{
    ParsePriorityError, Priority, ReminderTriggered, TaskChanges, TaskCompleted, TaskCreated,
    TaskDeleted, TaskExtra, TaskUpdated,
};
#[doc(inline)]
pub use self::topic::{Profile, TOPICS, Topic, TopicSpec};

/// The `source` attribute of events written by the task service (API and MCP tools).
///
/// ```
/// assert_eq!(todo_events::SOURCE_BACKEND, "todo-backend");
/// ```
pub const SOURCE_BACKEND: &str = "todo-backend";
/// The `source` attribute of events written by the reminder scheduler.
///
/// ```
/// assert_eq!(todo_events::SOURCE_SCHEDULER, "todo-reminder-scheduler");
/// ```
pub const SOURCE_SCHEDULER: &str = "todo-reminder-scheduler";
/// The `source` attribute of events written by the recurrence consumer (it uses the backend's name, as the
/// design's producer table lists the recurrence service inside `todo-backend`).
///
/// ```
/// assert_eq!(todo_events::SOURCE_RECURRENCE, todo_events::SOURCE_BACKEND);
/// ```
pub const SOURCE_RECURRENCE: &str = SOURCE_BACKEND;
