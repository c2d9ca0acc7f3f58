//! What the API and the MCP tools answer: tasks, reminders and audit entries as JSON, with the event payloads'
//! field names.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use todo_domain::{Reminder, Task};
use utoipa::ToSchema;
use uuid::Uuid;

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Due date, `YYYY-MM-DD`.
    pub due_date: Option<NaiveDate>,
    /// Due time of day in `time_zone`.
    pub due_time: Option<NaiveTime>,
    /// IANA time zone of the due date.
    pub time_zone: String,
    /// The instant the task is due, UTC.
    pub due_at: Option<DateTime<Utc>>,
    /// Recurrence rule (canonical RRULE), if recurring.
    pub recurrence: Option<String>,
    /// The series this instance belongs to.
    pub series_id: Option<Uuid>,
    /// Position in the series, 0 for the first instance.
    pub series_index: Option<u32>,
    /// Reminder lead times re-created on each instance.
    pub reminders: Vec<String>,
    /// `active` or `completed`.
    pub status: String,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Version for optimistic concurrency (`If-Match` or `version` on PATCH).
    pub version: i64,
}

impl From<&Task> for TaskView {
    fn from(t: &Task) -> Self {
        TaskView {
            id: t.id.as_uuid(),
            user_id: t.owner.as_uuid(),
            title: t.title.as_str().to_owned(),
            description: t.description.as_ref().map(|d| d.as_str().to_owned()),
            priority: t.priority.as_str().to_owned(),
            tags: t.tags.as_slice().to_vec(),
            due_date: t.due.as_ref().map(|d| d.date),
            due_time: t.due.as_ref().and_then(|d| d.time),
            time_zone: t
                .due
                .as_ref()
                .map_or_else(|| "UTC".to_owned(), |d| d.zone.name().to_owned()),
            due_at: t.due.as_ref().map(todo_domain::Due::instant),
            recurrence: t.recurrence.as_ref().map(ToString::to_string),
            series_id: t.series.as_ref().map(|s| s.id.as_uuid()),
            series_index: t.series.as_ref().map(|s| s.index),
            reminders: t.reminder_leads.iter().map(ToString::to_string).collect(),
            status: t.status.as_str().to_owned(),
            completed_at: t.completed_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
            version: t.version,
        }
    }
}

/// A reminder.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReminderView {
    /// Reminder id.
    pub id: Uuid,
    /// The task.
    pub task_id: Uuid,
    /// Lead time before the due time, if set relative to it.
    pub lead_time: Option<String>,
    /// When it fires, UTC.
    pub remind_at: DateTime<Utc>,
    /// `PENDING`, `TRIGGERED` or `CANCELLED`.
    pub status: String,
    /// When it fired.
    pub fired_at: Option<DateTime<Utc>>,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

impl From<&Reminder> for ReminderView {
    fn from(r: &Reminder) -> Self {
        ReminderView {
            id: r.id.as_uuid(),
            task_id: r.task_id.as_uuid(),
            lead_time: r.lead.as_ref().map(ToString::to_string),
            remind_at: r.remind_at,
            status: r.status.as_str().to_owned(),
            fired_at: r.fired_at,
            created_at: r.created_at,
        }
    }
}

/// A page of results.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditView {
    /// The event id.
    pub event_id: Uuid,
    /// The event type, such as `task.created`.
    pub event_type: String,
    /// The task the event is about.
    pub task_id: Option<Uuid>,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the audit consumer recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The full CloudEvents JSON.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&todo_store::AuditEntry> for AuditView {
    fn from(e: &todo_store::AuditEntry) -> Self {
        AuditView {
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            task_id: e.task_id,
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
            payload: e.payload.clone(),
        }
    }
}
