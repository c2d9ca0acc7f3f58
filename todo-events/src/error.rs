//! Decode errors.

/// A convenient alias for results of this crate.
///
/// ```
/// fn parse(bytes: &[u8]) -> todo_events::Result<todo_events::Event> {
///     todo_events::Event::from_slice(bytes)
/// }
/// assert!(parse(b"{}").is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why bytes could not be read as an [`Event`](crate::Event).
///
/// Every variant names what is wrong and, where it can, where: a JSON syntax error has its line and column, a
/// schema error has the dotted path of the field (`data.user_id`, `data.priority`, `data.changes.priority`,
/// `data.tags[1]`).
///
/// ```
/// use todo_events::{Error, Event};
/// let json = br#"{"id":"550e8400-e29b-41d4-a716-446655440000","source":"todo-backend","type":"task.deleted",
///     "time":"2026-02-09T17:00:00Z","data":{"task_id":"550e8400-e29b-41d4-a716-446655440000",
///     "title":"Buy groceries","deleted_at":"2026-02-09T17:00:00Z"}}"#;
/// let err = Event::from_slice(json).unwrap_err();
/// assert_eq!(err, Error::MissingField { field: "data.user_id".into() });
/// assert_eq!(err.to_string(), "missing field `data.user_id`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is valid but the envelope is not a JSON object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// A required attribute or payload field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// Dotted path of the field, for example `data.user_id`.
        field: String,
    },
    /// A field is present but has the wrong type or an invalid value.
    #[error("invalid value for `{field}`: {message}")]
    InvalidField {
        /// Dotted path of the field, for example `data.priority`.
        field: String,
        /// What was wrong with it.
        message: String,
    },
    /// The `type` attribute names no event of this contract.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The `specversion` attribute is not `1.0`.
    #[error("unsupported CloudEvents specversion `{0}` (expected 1.0)")]
    UnsupportedSpecVersion(String),
    /// A Kafka message could not be read in either CloudEvents binding mode.
    #[error("invalid CloudEvents Kafka message: {0}")]
    Binding(String),
}

impl Error {
    /// Translates a serde_json error found while reading the field at `path` (empty for the root).
    pub(crate) fn from_serde(path: &str, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => Error::Syntax {
                line: err.line(),
                column: err.column(),
                message: strip_position(&err.to_string()),
            },
            Category::Data => {
                let message = strip_position(&err.to_string());
                if let Some(name) = missing_field_name(&message) {
                    Error::MissingField {
                        field: join(path, name),
                    }
                } else {
                    Error::InvalidField {
                        field: if path.is_empty() {
                            "<root>".into()
                        } else {
                            path.to_owned()
                        },
                        message,
                    }
                }
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// serde_json appends " at line L column C"; the variants carry the position in fields instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
