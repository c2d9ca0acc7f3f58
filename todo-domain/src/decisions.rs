//! The consumers' decisions, as pure functions.

use chrono::{DateTime, Utc};
use todo_events::TaskCompleted;

use crate::ids::TaskId;
use crate::recurrence::next_occurrence;
use crate::reminder::ReminderInput;
use crate::task::{Series, Task, TaskStatus};

/// The recurrence consumer's decision on a `task.completed` event: the next instance of the series, or `None`.
///
/// `task` is the completed task's stored state (authoritative for the rule, due date and series position); the
/// event supplies the completion time. The new instance carries the title, description, priority, tags, rule
/// (with its month-day anchor written in, see [`crate::Occurrence::rule`]), series id and reminder lead times;
/// its index is the next occurrence's index in the series (the current index plus one, plus any occurrences a late
/// completion skipped). It is active, at version 1, created at `now`.
///
/// `None` when the task does not recur, the event is about another task, or the series is exhausted (COUNT,
/// UNTIL). Consumers stay idempotent by keying the new instance on (series id, index).
pub fn next_instance(
    completed: &TaskCompleted,
    task: &Task,
    new_id: TaskId,
    now: DateTime<Utc>,
) -> Option<Task> {
    if completed.task_id != task.id.as_uuid() {
        return None;
    }
    let rule = task.recurrence.as_ref()?;
    let series = task.series.unwrap_or(Series {
        id: task.id,
        index: 0,
    });
    let next = next_occurrence(
        rule,
        task.due.as_ref(),
        series.index,
        completed.completed_at,
    )?;
    Some(Task {
        id: new_id,
        owner: task.owner,
        title: task.title.clone(),
        description: task.description.clone(),
        priority: task.priority,
        tags: task.tags.clone(),
        due: Some(next.due),
        recurrence: Some(next.rule),
        series: Some(Series {
            id: series.id,
            index: next.index,
        }),
        reminder_leads: task.reminder_leads.clone(),
        status: TaskStatus::Active,
        completed_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

/// The reminder consumer's input for a `reminder.triggered` event that fired at `at`, given the task's current
/// state (`None` when it was deleted).
pub fn trigger_input(task: Option<&Task>, at: DateTime<Utc>) -> ReminderInput {
    ReminderInput::Trigger {
        task_active: task.is_some_and(Task::is_active),
        at,
    }
}
