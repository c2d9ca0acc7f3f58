//! JSON Schemas (draft 2020-12) of the five events, as shipped in the crate's `schemas/` folder.
//!
//! Each schema describes the whole structured-mode envelope with its `data`, the way this crate writes it:
//! required `id`, `source`, `type`, `time` and `data`; optional `specversion` (`1.0`), `datacontenttype`,
//! `subject`; extension attributes with lower-case alphanumeric names and string, integer or boolean values.
//! Payload objects allow unknown fields, as consumers are tolerant readers. The schemas are checked in the
//! crate's tests against every golden fixture and against generated events.
//!
//! ```
//! use todo_events::EventType;
//! use todo_events::schema::json_schema;
//!
//! let schema: serde_json::Value = serde_json::from_str(json_schema(EventType::TaskCreated))?;
//! assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
//! assert_eq!(schema["properties"]["type"]["const"], "task.created");
//! # Ok::<(), serde_json::Error>(())
//! ```

use crate::EventType;

/// The JSON Schema of the envelope of events of this type, as JSON text.
///
/// ```
/// use todo_events::{EventType, schema};
/// for ty in EventType::ALL {
///     assert!(schema::json_schema(ty).contains(ty.as_str()));
/// }
/// ```
pub fn json_schema(ty: EventType) -> &'static str {
    match ty {
        EventType::TaskCreated => include_str!("../schemas/task.created.schema.json"),
        EventType::TaskUpdated => include_str!("../schemas/task.updated.schema.json"),
        EventType::TaskCompleted => include_str!("../schemas/task.completed.schema.json"),
        EventType::TaskDeleted => include_str!("../schemas/task.deleted.schema.json"),
        EventType::ReminderTriggered => include_str!("../schemas/reminder.triggered.schema.json"),
    }
}

/// The file name of the schema of this type inside `schemas/`, such as `task.created.schema.json`.
///
/// ```
/// use todo_events::{EventType, schema};
/// assert_eq!(schema::file_name(EventType::TaskUpdated), "task.updated.schema.json");
/// ```
pub fn file_name(ty: EventType) -> String {
    format!("{}.schema.json", ty.as_str())
}
