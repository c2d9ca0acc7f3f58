//! Structured results of the tools (`structuredContent`), with output schemas. Tasks and reminders have the REST
//! API's shape ([`TaskView`], [`ReminderView`]); each result also carries the sentence a model can relay.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use crate::service::{ReminderView, TaskView};

/// A task, as the REST API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskOut {
    /// Task id: pass it as `task_id` to the other tools.
    pub(crate) id: Uuid,
    /// Title.
    pub(crate) title: String,
    /// Notes.
    pub(crate) description: Option<String>,
    /// `low`, `medium`, `high` or `urgent`.
    pub(crate) priority: String,
    /// Tags.
    pub(crate) tags: Vec<String>,
    /// Due date, YYYY-MM-DD.
    pub(crate) due_date: Option<NaiveDate>,
    /// Due time of day in `time_zone`.
    pub(crate) due_time: Option<NaiveTime>,
    /// IANA time zone of the due date.
    pub(crate) time_zone: String,
    /// The instant the task is due, UTC.
    pub(crate) due_at: Option<DateTime<Utc>>,
    /// Recurrence rule (RRULE), when the task repeats.
    pub(crate) recurrence: Option<String>,
    /// The recurring series this task belongs to.
    pub(crate) series_id: Option<Uuid>,
    /// Position in the series, 0 for the first instance.
    pub(crate) series_index: Option<u32>,
    /// Reminder lead times re-created on each instance.
    pub(crate) reminders: Vec<String>,
    /// `active` or `completed`.
    pub(crate) status: String,
    /// When it was completed.
    pub(crate) completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub(crate) created_at: DateTime<Utc>,
    /// When it last changed.
    pub(crate) updated_at: DateTime<Utc>,
    /// Version, for `update_task`'s `version`.
    pub(crate) version: i64,
}

impl From<TaskView> for TaskOut {
    fn from(v: TaskView) -> Self {
        TaskOut {
            id: v.id,
            title: v.title,
            description: v.description,
            priority: v.priority,
            tags: v.tags,
            due_date: v.due_date,
            due_time: v.due_time,
            time_zone: v.time_zone,
            due_at: v.due_at,
            recurrence: v.recurrence,
            series_id: v.series_id,
            series_index: v.series_index,
            reminders: v.reminders,
            status: v.status,
            completed_at: v.completed_at,
            created_at: v.created_at,
            updated_at: v.updated_at,
            version: v.version,
        }
    }
}

impl From<&todo_domain::Task> for TaskOut {
    fn from(t: &todo_domain::Task) -> Self {
        TaskView::from(t).into()
    }
}

/// A reminder, as the REST API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReminderOut {
    /// Reminder id: pass it to `cancel_reminder`.
    pub(crate) id: Uuid,
    /// The task.
    pub(crate) task_id: Uuid,
    /// Lead time before the due time, when set relative to it.
    pub(crate) lead_time: Option<String>,
    /// When it fires, UTC.
    pub(crate) remind_at: DateTime<Utc>,
    /// `PENDING`, `TRIGGERED` or `CANCELLED`.
    pub(crate) status: String,
    /// When it fired.
    pub(crate) fired_at: Option<DateTime<Utc>>,
    /// When it was set.
    pub(crate) created_at: DateTime<Utc>,
}

impl From<&todo_domain::Reminder> for ReminderOut {
    fn from(r: &todo_domain::Reminder) -> Self {
        let v = ReminderView::from(r);
        ReminderOut {
            id: v.id,
            task_id: v.task_id,
            lead_time: v.lead_time,
            remind_at: v.remind_at,
            status: v.status,
            fired_at: v.fired_at,
            created_at: v.created_at,
        }
    }
}

/// Result of `add_task`, `get_task` and `update_task`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskResult {
    /// What happened, in one sentence.
    pub(crate) message: String,
    /// The task.
    pub(crate) task: TaskOut,
}

/// Result of `list_tasks`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskListResult {
    /// Summary.
    pub(crate) message: String,
    /// The tasks of this page.
    pub(crate) tasks: Vec<TaskOut>,
    /// Pass as `cursor` to get more; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

/// Result of `complete_task`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CompleteResult {
    /// What happened, in one sentence.
    pub(crate) message: String,
    /// The task, now completed.
    pub(crate) task: TaskOut,
    /// False when the task was already completed (nothing changed).
    pub(crate) completed_now: bool,
    /// For a recurring task: the due date of the next instance, which is created in the background shortly after.
    pub(crate) next_due_date: Option<NaiveDate>,
}

/// Result of `delete_task`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DeleteResult {
    /// What happened, in one sentence.
    pub(crate) message: String,
    /// The deleted task's id.
    pub(crate) task_id: Uuid,
    /// Its title.
    pub(crate) title: String,
}

/// Result of `set_reminder` and `cancel_reminder`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReminderResult {
    /// What happened, in one sentence.
    pub(crate) message: String,
    /// The reminder.
    pub(crate) reminder: ReminderOut,
}

/// Result of `list_reminders`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReminderListResult {
    /// Summary.
    pub(crate) message: String,
    /// The task's reminders.
    pub(crate) reminders: Vec<ReminderOut>,
}
