//! The five event payloads, with exactly the design's field names.
//!
//! Fields that the design document does not list (due time, time zone, series position, reminder lead times) live
//! in [`TaskExtra`] and are written only when set, so a reader of the design's schemas sees nothing unexpected and a
//! tolerant reader of ours gets the full picture.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// How urgent a task is. Written in lower case; read case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// `low`
    Low,
    /// `medium` (the default)
    #[default]
    Medium,
    /// `high`
    High,
    /// `urgent`
    Urgent,
}

impl Priority {
    /// Every priority, least urgent first.
    ///
    /// ```
    /// use todo_events::Priority;
    /// assert!(Priority::ALL.windows(2).all(|w| w[0] < w[1]));
    /// assert_eq!(Priority::default(), Priority::Medium);
    /// ```
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    /// The wire name: `low`, `medium`, `high` or `urgent`.
    ///
    /// ```
    /// assert_eq!(todo_events::Priority::Urgent.as_str(), "urgent");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// The rank used for sorting: 0 for low up to 3 for urgent.
    ///
    /// ```
    /// use todo_events::Priority;
    /// assert_eq!((Priority::Low.rank(), Priority::Urgent.rank()), (0, 3));
    /// ```
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Priority`].
///
/// ```
/// let err = "soon".parse::<todo_events::Priority>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown priority `soon` (expected one of low, medium, high, urgent)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}` (expected one of low, medium, high, urgent)")]
pub struct ParsePriorityError(pub String);

impl std::str::FromStr for Priority {
    type Err = ParsePriorityError;

    /// Parses a priority case-insensitively, ignoring surrounding whitespace.
    ///
    /// ```
    /// use todo_events::Priority;
    /// assert_eq!(" HIGH ".parse::<Priority>(), Ok(Priority::High));
    /// assert!("soon".parse::<Priority>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParsePriorityError(s.to_owned()))
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Priority;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one of \"low\", \"medium\", \"high\", \"urgent\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Priority, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Task attributes beyond the design document's payloads, written only when set.
///
/// Flattened into [`TaskCreated`]: its fields sit next to the design's fields in `data`.
///
/// ```
/// use todo_events::TaskExtra;
/// assert_eq!(serde_json::to_string(&TaskExtra::default())?, "{}");
/// let extra = TaskExtra { series_index: Some(2), reminder_leads: vec![1800], ..Default::default() };
/// assert_eq!(serde_json::to_string(&extra)?, r#"{"series_index":2,"reminder_leads":[1800]}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskExtra {
    /// Local time of day the task is due, in `time_zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_time: Option<NaiveTime>,
    /// IANA time zone of `due_date`/`due_time` (UTC when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The recurring series this task belongs to (the id of its first instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_id: Option<Uuid>,
    /// Position of this instance in its series, 0 for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_index: Option<u32>,
    /// Reminder lead times in seconds, re-created on each instance of a recurring task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminder_leads: Vec<i64>,
}

impl TaskExtra {
    /// Whether no extra attribute is set.
    ///
    /// ```
    /// use todo_events::TaskExtra;
    /// assert!(TaskExtra::default().is_empty());
    /// assert!(!TaskExtra { time_zone: Some("Europe/Berlin".into()), ..Default::default() }.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self == &TaskExtra::default()
    }
}

/// `task.created`: a task came into being, through the API, an MCP tool or the recurrence consumer.
///
/// Topic `todo.task-events`, key `user_id`.
///
/// ```
/// use todo_events::{Priority, TaskCreated};
/// let json = r#"{"task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",
///     "title":"Buy groceries","created_at":"2026-02-09T14:30:00Z"}"#;
/// let created: TaskCreated = serde_json::from_str(json)?;
/// assert_eq!(created.priority, Priority::Medium, "an absent priority is medium");
/// assert!(created.tags.is_empty() && created.extra.is_empty());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreated {
    /// The new task.
    pub task_id: Uuid,
    /// Its owner; the partition key.
    pub user_id: Uuid,
    /// Title, trimmed and non-empty.
    pub title: String,
    /// Free text, or `null`.
    #[serde(default)]
    pub description: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Priority,
    /// Normalised tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Due date (`YYYY-MM-DD`), or `null`.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// Recurrence rule as entered or in canonical RRULE form, or `null`.
    #[serde(default)]
    pub recurrence: Option<String>,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// Attributes beyond the design's payload.
    #[serde(flatten)]
    pub extra: TaskExtra,
}

/// The changed fields of a `task.updated` event: a field is present exactly when it changed.
///
/// Clearable fields use `Option<Option<T>>`: `None` means unchanged (absent from the JSON), `Some(None)` means it
/// was cleared (`null` in the JSON).
///
/// ```
/// use todo_events::{Priority, TaskChanges};
/// let changes = TaskChanges { priority: Some(Priority::Medium), description: Some(None), ..Default::default() };
/// assert_eq!(serde_json::to_string(&changes)?, r#"{"description":null,"priority":"medium"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskChanges {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New description, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub description: Option<Option<String>>,
    /// New priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// New tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New due date, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub due_date: Option<Option<NaiveDate>>,
    /// New due time, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub due_time: Option<Option<NaiveTime>>,
    /// New time zone, or cleared (back to UTC).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub time_zone: Option<Option<String>>,
    /// New recurrence rule, or cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub recurrence: Option<Option<String>>,
}

impl TaskChanges {
    /// Whether nothing changed.
    ///
    /// ```
    /// use todo_events::TaskChanges;
    /// assert!(TaskChanges::default().is_empty());
    /// assert!(!TaskChanges { recurrence: Some(None), ..Default::default() }.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self == &TaskChanges::default()
    }
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// `task.updated`: fields of a task changed. Topic `todo.task-updates`, key `user_id`.
///
/// ```
/// use todo_events::{Priority, TaskUpdated};
/// let json = r#"{"task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",
///     "changes":{"priority":"medium","due_date":null},"updated_at":"2026-02-09T15:00:00Z"}"#;
/// let updated: TaskUpdated = serde_json::from_str(json)?;
/// assert_eq!(updated.changes.priority, Some(Priority::Medium));
/// assert_eq!(updated.changes.due_date, Some(None), "null means cleared");
/// assert_eq!(updated.changes.title, None, "absent means unchanged");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUpdated {
    /// The task.
    pub task_id: Uuid,
    /// Its owner; the partition key.
    pub user_id: Uuid,
    /// Only the fields that changed.
    pub changes: TaskChanges,
    /// When the change was made.
    pub updated_at: DateTime<Utc>,
}

/// `task.completed`: a task was completed. Topic `todo.task-events`, key `user_id`.
///
/// ```
/// use todo_events::TaskCompleted;
/// let json = r#"{"task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",
///     "title":"Buy groceries","recurrence":"weekly","due_date":"2026-02-10","completed_at":"2026-02-09T16:00:00Z"}"#;
/// let completed: TaskCompleted = serde_json::from_str(json)?;
/// assert_eq!(completed.recurrence.as_deref(), Some("weekly"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCompleted {
    /// The task.
    pub task_id: Uuid,
    /// Its owner; the partition key.
    pub user_id: Uuid,
    /// Title at completion.
    pub title: String,
    /// Recurrence rule, or `null` for a one-off task.
    #[serde(default)]
    pub recurrence: Option<String>,
    /// Due date, or `null`.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// When it was completed.
    pub completed_at: DateTime<Utc>,
}

/// `task.deleted`: a task was deleted. Topic `todo.task-events`, key `user_id`.
///
/// ```
/// use todo_events::TaskDeleted;
/// let json = r#"{"task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7",
///     "title":"Buy groceries","deleted_at":"2026-02-09T17:00:00Z"}"#;
/// let deleted: TaskDeleted = serde_json::from_str(json)?;
/// assert_eq!(deleted.title, "Buy groceries");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDeleted {
    /// The task.
    pub task_id: Uuid,
    /// Its owner; the partition key.
    pub user_id: Uuid,
    /// Title at deletion.
    pub title: String,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
}

/// `reminder.triggered`: a reminder's time arrived. Topic `todo.reminders`, key `user_id`.
///
/// ```
/// use todo_events::ReminderTriggered;
/// let json = r#"{"reminder_id":"9b2f6c1e-8d4a-4f7b-a1c3-5e6d7f8a9b0c","task_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
///     "user_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","task_title":"Buy groceries","due_date":"2026-02-10"}"#;
/// let reminder: ReminderTriggered = serde_json::from_str(json)?;
/// assert_eq!(reminder.remind_at, None, "remind_at is optional on read");
/// assert!(!serde_json::to_string(&reminder)?.contains("remind_at"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderTriggered {
    /// The reminder.
    pub reminder_id: Uuid,
    /// The task it reminds of.
    pub task_id: Uuid,
    /// The owner; the partition key.
    pub user_id: Uuid,
    /// Title of the task when the reminder fired.
    pub task_title: String,
    /// Due date of the task, or `null`.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// When the reminder was due to fire (written by this implementation; optional on read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<DateTime<Utc>>,
}
