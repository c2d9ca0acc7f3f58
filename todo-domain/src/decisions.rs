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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Description, Due, LeadTime, NewTask, Recurrence, Tags, Title, UserId};
    use chrono::{NaiveDate, TimeZone as _};
    use todo_events::Priority;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn recurring(rule: &str, due: Option<NaiveDate>) -> Task {
        let new = NewTask {
            title: Title::parse("Pay rent").unwrap(),
            description: Some(Description::parse("flat 3").unwrap()),
            priority: Priority::Urgent,
            tags: Tags::parse(["home"]).unwrap(),
            due: due.map(Due::on),
            recurrence: Some(Recurrence::parse(rule).unwrap()),
            reminder_leads: vec![
                LeadTime::parse("1d").unwrap(),
                LeadTime::parse("1h").unwrap(),
            ],
        };
        Task::create(
            TaskId::new(),
            UserId::new(),
            new,
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )
    }

    #[test]
    fn next_instance_carries_the_task_forward() {
        let mut t = recurring("monthly", Some(date(2026, 1, 31)));
        let done = Utc.with_ymd_and_hms(2026, 1, 30, 10, 0, 0).unwrap();
        t.complete(done);
        let now = done + chrono::Duration::seconds(1);
        let id = TaskId::new();
        let n = next_instance(&t.completed_payload(), &t, id, now).unwrap();
        assert_eq!(n.id, id);
        assert_eq!(n.owner, t.owner);
        assert_eq!(
            (&n.title, &n.description, n.priority, &n.tags),
            (&t.title, &t.description, t.priority, &t.tags)
        );
        assert_eq!(n.reminder_leads, t.reminder_leads);
        assert_eq!(n.due.unwrap().date, date(2026, 2, 28));
        assert_eq!(n.series, Some(Series { id: t.id, index: 1 }));
        assert_eq!(
            n.recurrence.as_ref().map(ToString::to_string).as_deref(),
            Some("FREQ=MONTHLY;BYMONTHDAY=31;RSCALE=GREGORIAN;SKIP=BACKWARD")
        );
        assert_eq!(
            (n.status, n.version, n.created_at, n.completed_at),
            (TaskStatus::Active, 1, now, None)
        );
        // and the series goes on from there, keeping its id
        let mut n = n;
        n.complete(now);
        let m = next_instance(&n.completed_payload(), &n, TaskId::new(), now).unwrap();
        assert_eq!(m.due.unwrap().date, date(2026, 3, 31));
        assert_eq!(m.series, Some(Series { id: t.id, index: 2 }));
    }

    #[test]
    fn no_next_instance_for_one_off_tasks_other_tasks_or_exhausted_series() {
        let done = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let mut one_off = recurring("daily", Some(date(2026, 2, 1)));
        one_off.recurrence = None;
        assert!(
            next_instance(&one_off.completed_payload(), &one_off, TaskId::new(), done).is_none()
        );

        let a = recurring("daily", Some(date(2026, 2, 1)));
        let b = recurring("daily", Some(date(2026, 2, 1)));
        assert!(next_instance(&b.completed_payload(), &a, TaskId::new(), done).is_none());

        let mut last = recurring("FREQ=DAILY;COUNT=2", Some(date(2026, 2, 1)));
        last.series = Some(Series {
            id: last.id,
            index: 1,
        });
        assert!(next_instance(&last.completed_payload(), &last, TaskId::new(), done).is_none());
    }

    #[test]
    fn a_task_without_due_date_gets_one_from_its_completion() {
        let mut t = recurring("weekly", None);
        let done = Utc.with_ymd_and_hms(2026, 2, 11, 18, 0, 0).unwrap();
        t.complete(done);
        let n = next_instance(&t.completed_payload(), &t, TaskId::new(), done).unwrap();
        assert_eq!(n.due, Some(Due::on(date(2026, 2, 18))));
        assert_eq!(n.series.unwrap().index, 1);
    }

    #[test]
    fn trigger_input_reads_the_task_state() {
        let at = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let mut t = recurring("daily", None);
        assert_eq!(
            trigger_input(Some(&t), at),
            ReminderInput::Trigger {
                task_active: true,
                at
            }
        );
        t.complete(at);
        assert_eq!(
            trigger_input(Some(&t), at),
            ReminderInput::Trigger {
                task_active: false,
                at
            }
        );
        assert_eq!(
            trigger_input(None, at),
            ReminderInput::Trigger {
                task_active: false,
                at
            }
        );
    }
}
