//! Tasks: creation, updates, completion, and the event payloads they produce.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use todo_events::{Priority, TaskChanges, TaskCompleted, TaskCreated, TaskDeleted, TaskExtra};

use crate::ids::{TaskId, UserId};
use crate::recurrence::Recurrence;
use crate::reminder::LeadTime;
use crate::values::{Description, Due, Tags, Title};

/// Whether a task is still to be done. Deleted tasks are removed, so they have no status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// To be done.
    #[default]
    Active,
    /// Done.
    Completed,
}

impl TaskStatus {
    /// The stored name: `active` or `completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Active => "active",
            TaskStatus::Completed => "completed",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`TaskStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task status `{0}` (expected active or completed)")]
pub struct ParseTaskStatusError(pub String);

impl std::str::FromStr for TaskStatus {
    type Err = ParseTaskStatusError;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        [TaskStatus::Active, TaskStatus::Completed]
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseTaskStatusError(s.to_owned()))
    }
}

/// A task's place in a recurring series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Series {
    /// The series: the id of its first instance.
    pub id: TaskId,
    /// This instance's index in the series, 0 for the first (it counts occurrences, so it jumps over the ones a
    /// late completion skipped; COUNT is checked against it).
    pub index: u32,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Its owner.
    pub owner: UserId,
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Option<Description>,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Tags,
    /// When it is due.
    pub due: Option<Due>,
    /// How it recurs.
    pub recurrence: Option<Recurrence>,
    /// Its series, for recurring tasks.
    pub series: Option<Series>,
    /// Reminder lead times, re-created on each instance of a recurring task.
    pub reminder_leads: Vec<LeadTime>,
    /// Active or completed.
    pub status: TaskStatus,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, plus one per change (optimistic concurrency).
    pub version: i64,
}

/// The validated input of a new task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Option<Description>,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Tags,
    /// When it is due.
    pub due: Option<Due>,
    /// How it recurs.
    pub recurrence: Option<Recurrence>,
    /// Reminder lead times.
    pub reminder_leads: Vec<LeadTime>,
}

impl NewTask {
    /// A task with just a title: medium priority, no tags, no due date, not recurring.
    pub fn titled(title: Title) -> Self {
        Self {
            title,
            description: None,
            priority: Priority::default(),
            tags: Tags::empty(),
            due: None,
            recurrence: None,
            reminder_leads: Vec::new(),
        }
    }
}

/// A change to a task: `None` leaves a field alone; `Some(None)` clears a clearable one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskPatch {
    /// New title.
    pub title: Option<Title>,
    /// New or cleared description.
    pub description: Option<Option<Description>>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New tags.
    pub tags: Option<Tags>,
    /// New or cleared due date.
    pub due: Option<Option<Due>>,
    /// New or cleared recurrence.
    pub recurrence: Option<Option<Recurrence>>,
}

fn set<T: PartialEq>(field: &mut T, value: Option<T>) -> Option<()> {
    match value {
        Some(v) if *field != v => {
            *field = v;
            Some(())
        }
        _ => None,
    }
}

impl Task {
    /// A new active task at version 1. A recurring task starts its own series at index 0.
    ///
    /// ```
    /// use chrono::Utc;
    /// use todo_domain::{NewTask, Recurrence, Task, TaskId, Title, UserId};
    /// let mut new = NewTask::titled(Title::parse("Water plants")?);
    /// new.recurrence = Some(Recurrence::parse("weekly")?);
    /// let id = TaskId::new();
    /// let task = Task::create(id, UserId::new(), new, Utc::now());
    /// assert_eq!(task.series.map(|s| (s.id, s.index)), Some((id, 0)));
    /// assert_eq!(task.created_payload().recurrence.as_deref(), Some("FREQ=WEEKLY"));
    /// # Ok::<(), todo_domain::ValidationError>(())
    /// ```
    pub fn create(id: TaskId, owner: UserId, new: NewTask, now: DateTime<Utc>) -> Task {
        let series = new.recurrence.as_ref().map(|_| Series { id, index: 0 });
        Task {
            id,
            owner,
            title: new.title,
            description: new.description,
            priority: new.priority,
            tags: new.tags,
            due: new.due,
            recurrence: new.recurrence,
            series,
            reminder_leads: new.reminder_leads,
            status: TaskStatus::Active,
            completed_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Applies a patch and returns the fields that really changed (as the `task.updated` payload writes them).
    /// `version` and `updated_at` move only when something changed. Giving a non-recurring task a rule starts a
    /// series at index 0; clearing the rule keeps the series position.
    pub fn apply(&mut self, patch: TaskPatch, now: DateTime<Utc>) -> TaskChanges {
        let mut changes = TaskChanges::default();
        if set(&mut self.title, patch.title).is_some() {
            changes.title = Some(self.title.as_str().to_owned());
        }
        if set(&mut self.description, patch.description).is_some() {
            changes.description = Some(self.description.as_ref().map(|d| d.as_str().to_owned()));
        }
        if set(&mut self.priority, patch.priority).is_some() {
            changes.priority = Some(self.priority);
        }
        if set(&mut self.tags, patch.tags).is_some() {
            changes.tags = Some(self.tags.as_slice().to_vec());
        }
        if let Some(due) = patch.due {
            let old = self.due;
            if old != due {
                let date = |d: Option<Due>| d.map(|d| d.date);
                let time = |d: Option<Due>| d.and_then(|d| d.time);
                let zone = |d: Option<Due>| d.filter(|d| !d.zone.is_utc()).map(|d| d.zone);
                if date(old) != date(due) {
                    changes.due_date = Some(date(due));
                }
                if time(old) != time(due) {
                    changes.due_time = Some(time(due));
                }
                if zone(old) != zone(due) {
                    changes.time_zone = Some(zone(due).map(|z| z.name().to_owned()));
                }
                self.due = due;
            }
        }
        if set(&mut self.recurrence, patch.recurrence).is_some() {
            changes.recurrence = Some(self.recurrence.as_ref().map(ToString::to_string));
            if self.recurrence.is_some() && self.series.is_none() {
                self.series = Some(Series {
                    id: self.id,
                    index: 0,
                });
            }
        }
        if !changes.is_empty() {
            self.version += 1;
            self.updated_at = now;
        }
        changes
    }

    /// Marks the task completed. Returns `false`, changing nothing, when it already was.
    pub fn complete(&mut self, now: DateTime<Utc>) -> bool {
        if self.status == TaskStatus::Completed {
            return false;
        }
        self.status = TaskStatus::Completed;
        self.completed_at = Some(now);
        self.updated_at = now;
        self.version += 1;
        true
    }

    fn extra(&self) -> TaskExtra {
        TaskExtra {
            due_time: self.due.and_then(|d| d.time),
            time_zone: self
                .due
                .filter(|d| !d.zone.is_utc())
                .map(|d| d.zone.name().to_owned()),
            series_id: self.series.map(|s| s.id.as_uuid()),
            series_index: self.series.map(|s| s.index),
            reminder_leads: self.reminder_leads.iter().map(LeadTime::seconds).collect(),
        }
    }

    /// The `task.created` payload (recurrence in canonical RRULE form; due time, zone, series and lead times in
    /// [`TaskExtra`]).
    pub fn created_payload(&self) -> TaskCreated {
        TaskCreated {
            task_id: self.id.as_uuid(),
            user_id: self.owner.as_uuid(),
            title: self.title.as_str().to_owned(),
            description: self.description.as_ref().map(|d| d.as_str().to_owned()),
            priority: self.priority,
            tags: self.tags.as_slice().to_vec(),
            due_date: self.due.map(|d| d.date),
            recurrence: self.recurrence.as_ref().map(ToString::to_string),
            created_at: self.created_at,
            extra: self.extra(),
        }
    }

    /// The `task.completed` payload; `completed_at` falls back to `updated_at` for a task not marked completed.
    pub fn completed_payload(&self) -> TaskCompleted {
        TaskCompleted {
            task_id: self.id.as_uuid(),
            user_id: self.owner.as_uuid(),
            title: self.title.as_str().to_owned(),
            recurrence: self.recurrence.as_ref().map(ToString::to_string),
            due_date: self.due.map(|d| d.date),
            completed_at: self.completed_at.unwrap_or(self.updated_at),
        }
    }

    /// The `task.deleted` payload.
    pub fn deleted_payload(&self, now: DateTime<Utc>) -> TaskDeleted {
        TaskDeleted {
            task_id: self.id.as_uuid(),
            user_id: self.owner.as_uuid(),
            title: self.title.as_str().to_owned(),
            deleted_at: now,
        }
    }

    /// Whether the task is active (not completed).
    pub fn is_active(&self) -> bool {
        self.status == TaskStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime, TimeZone as _};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap()
    }

    fn sample() -> Task {
        let new = NewTask {
            title: Title::parse("Buy groceries").unwrap(),
            description: Some(Description::parse("Milk, eggs, bread").unwrap()),
            priority: Priority::High,
            tags: Tags::parse(["personal", "errands"]).unwrap(),
            due: Some(Due::on(NaiveDate::from_ymd_opt(2026, 2, 10).unwrap())),
            recurrence: Some(Recurrence::parse("weekly").unwrap()),
            reminder_leads: vec![LeadTime::parse("30min").unwrap()],
        };
        Task::create(TaskId::new(), UserId::new(), new, now())
    }

    #[test]
    fn create_starts_at_version_one_with_a_series() {
        let t = sample();
        assert_eq!(t.version, 1);
        assert_eq!(t.status, TaskStatus::Active);
        assert_eq!(t.series, Some(Series { id: t.id, index: 0 }));
        assert_eq!(
            (t.created_at, t.updated_at, t.completed_at),
            (now(), now(), None)
        );
        let plain = Task::create(
            TaskId::new(),
            UserId::new(),
            NewTask::titled(t.title.clone()),
            now(),
        );
        assert_eq!(plain.series, None);
    }

    #[test]
    fn created_payload_matches_the_design_example() {
        let t = sample();
        let p = t.created_payload();
        assert_eq!(p.task_id, t.id.as_uuid());
        assert_eq!(p.user_id, t.owner.as_uuid());
        assert_eq!(p.title, "Buy groceries");
        assert_eq!(p.description.as_deref(), Some("Milk, eggs, bread"));
        assert_eq!(p.priority, Priority::High);
        assert_eq!(p.tags, ["personal", "errands"]);
        assert_eq!(p.due_date, NaiveDate::from_ymd_opt(2026, 2, 10));
        assert_eq!(p.recurrence.as_deref(), Some("FREQ=WEEKLY"));
        assert_eq!(p.extra.series_index, Some(0));
        assert_eq!(p.extra.series_id, Some(t.id.as_uuid()));
        assert_eq!(p.extra.reminder_leads, [1800]);
        assert_eq!(p.extra.time_zone, None);
    }

    #[test]
    fn apply_reports_only_real_changes() {
        let mut t = sample();
        let same = TaskPatch {
            title: Some(Title::parse(" Buy groceries ").unwrap()),
            priority: Some(Priority::High),
            ..Default::default()
        };
        assert!(t.apply(same, now()).is_empty());
        assert_eq!(t.version, 1);

        let later = now() + chrono::Duration::minutes(30);
        let zone = crate::TimeZone::parse("Europe/Berlin").unwrap();
        let patch = TaskPatch {
            priority: Some(Priority::Medium),
            description: Some(None),
            due: Some(Some(Due {
                date: NaiveDate::from_ymd_opt(2026, 2, 10).unwrap(),
                time: NaiveTime::from_hms_opt(9, 0, 0),
                zone,
            })),
            recurrence: Some(None),
            ..Default::default()
        };
        let c = t.apply(patch, later);
        assert_eq!(c.priority, Some(Priority::Medium));
        assert_eq!(c.description, Some(None));
        assert_eq!(c.due_date, None, "the date did not change");
        assert_eq!(c.due_time, Some(NaiveTime::from_hms_opt(9, 0, 0)));
        assert_eq!(c.time_zone, Some(Some("Europe/Berlin".to_owned())));
        assert_eq!(c.recurrence, Some(None));
        assert_eq!(c.title, None);
        assert_eq!((t.version, t.updated_at), (2, later));

        let c = t.apply(
            TaskPatch {
                due: Some(None),
                ..Default::default()
            },
            later,
        );
        assert_eq!(
            (c.due_date, c.due_time, c.time_zone.clone()),
            (Some(None), Some(None), Some(None))
        );
        assert_eq!(t.version, 3);
    }

    #[test]
    fn giving_a_task_a_rule_starts_its_series() {
        let mut t = Task::create(
            TaskId::new(),
            UserId::new(),
            NewTask::titled(Title::parse("x").unwrap()),
            now(),
        );
        let c = t.apply(
            TaskPatch {
                recurrence: Some(Some(Recurrence::parse("daily").unwrap())),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(c.recurrence, Some(Some("FREQ=DAILY".to_owned())));
        assert_eq!(t.series, Some(Series { id: t.id, index: 0 }));
    }

    #[test]
    fn complete_is_idempotent() {
        let mut t = sample();
        let at = now() + chrono::Duration::hours(2);
        assert!(t.complete(at));
        assert_eq!(
            (t.status, t.completed_at, t.version),
            (TaskStatus::Completed, Some(at), 2)
        );
        assert!(!t.complete(at + chrono::Duration::hours(1)));
        assert_eq!((t.completed_at, t.version), (Some(at), 2));
        let p = t.completed_payload();
        assert_eq!(
            (p.completed_at, p.recurrence.as_deref(), p.title.as_str()),
            (at, Some("FREQ=WEEKLY"), "Buy groceries")
        );
        let d = t.deleted_payload(at);
        assert_eq!((d.task_id, d.deleted_at), (t.id.as_uuid(), at));
    }

    #[test]
    fn task_status_names_round_trip() {
        for s in [TaskStatus::Active, TaskStatus::Completed] {
            assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(s));
        }
        assert!("deleted".parse::<TaskStatus>().is_err());
    }
}
