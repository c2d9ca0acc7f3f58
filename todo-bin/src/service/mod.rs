//! The use cases (the design's "task service layer"), shared by the REST API and the MCP tools.
//!
//! Each use case validates its input through `todo-domain`, then commits its state change together with the
//! events it causes through the store's unit of work (the transactional outbox). Nothing is published from here:
//! the relay (or, embedded, the in-process consumers) reads the committed outbox.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use todo_domain::{Due, Reminder, ReminderId, ReminderStatus, Task, TaskId, UserId};
use todo_events::{Event, SOURCE_BACKEND};

use crate::http::problem::{ApiError, FieldError};

mod input;
mod list;
mod view;

pub use self::input::{CreateTask, ReminderSpec, SetReminder, UpdateTask};
pub use self::list::{ListTasks, Order, SortKey, TagMode};
pub use self::view::{AuditView, Page, ReminderView, TaskView};

/// The source of the current time (a fixed clock in tests).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Invalid input, one entry per field.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The task or reminder does not exist for this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A concurrent change won (stale version).
    #[error("{0}")]
    Conflict(String),
    /// The database is unreachable.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ServiceError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<todo_domain::ValidationError> for ServiceError {
    fn from(e: todo_domain::ValidationError) -> Self {
        ServiceError::field(e.field, e.message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => ApiError::fields(errors),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Conflict(m) => ApiError::conflict(m),
            ServiceError::Unavailable(m) => ApiError::unavailable(m),
            ServiceError::Internal(source) => ApiError::internal(source.as_ref()),
        }
    }
}

/// The result of completing a task.
#[derive(Debug, Clone)]
pub struct Completed {
    /// The task after the request.
    pub task: Task,
    /// Whether this request completed it; false when it already was (nothing changed, no event).
    pub completed_now: bool,
    /// The due date of the next instance the recurrence consumer creates, for a recurring task.
    pub next_due: Option<Due>,
}

/// The use cases over a store.
#[derive(Clone)]
pub struct TaskService {
    store: Arc<dyn todo_store::Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskService")
    }
}

fn event(now: DateTime<Utc>, task: TaskId, data: impl Into<todo_events::EventData>) -> Event {
    let event = Event::new(SOURCE_BACKEND, now, data).with_subject(task.to_string());
    match crate::trace::current_traceparent() {
        Some(tp) => event.with_extension("traceparent", tp),
        None => event,
    }
}

impl TaskService {
    /// Use cases over `store`, reading time from `clock`.
    pub fn new(store: Arc<dyn todo_store::Store>, clock: Arc<dyn Clock>) -> Self {
        TaskService { store, clock }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn todo_store::Store> {
        &self.store
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates a task (and its reminders); emits `task.created`.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] with every invalid field; store errors.
    pub async fn create_task(&self, user: UserId, input: CreateTask) -> Result<Task, ServiceError> {
        let new = input.validate().map_err(ServiceError::Invalid)?;
        let now = self.now();
        let task = Task::create(TaskId::new(), user, new, now);
        let reminders = reminders_for(&task, now)?;
        let events = [event(now, task.id, task.created_payload())];
        self.store
            .create_task(&task, &reminders, &events)
            .await
            .map_err(store_error)?;
        Ok(task)
    }

    /// One task of the user.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when the user has no such task.
    pub async fn get_task(&self, user: UserId, id: TaskId) -> Result<Task, ServiceError> {
        self.store.get_task(user, id).await.map_err(store_error)
    }

    /// A page of the user's tasks.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for a bad cursor; store errors.
    pub async fn list_tasks(
        &self,
        user: UserId,
        query: ListTasks,
    ) -> Result<todo_store::TaskPage, ServiceError> {
        let query = to_store_query(query);
        match self.store.list_tasks(user, &query).await {
            Err(todo_store::Error::InvalidCursor) => Err(ServiceError::field(
                "query.cursor",
                "not a cursor of this listing",
            )),
            other => other.map_err(store_error),
        }
    }

    /// Changes fields of a task; emits `task.updated` with only the fields that changed (nothing when none did).
    ///
    /// When the due date, time or time zone of an active task changes, its pending lead-time reminders follow in
    /// the same transaction (see [`follow_due`]); reminders set at an absolute time stay where they are.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when `input.version` is stale or a concurrent update won.
    pub async fn update_task(
        &self,
        user: UserId,
        id: TaskId,
        input: UpdateTask,
    ) -> Result<Task, ServiceError> {
        let mut task = self.get_task(user, id).await?;
        if let Some(v) = input.version
            && v != task.version
        {
            return Err(ServiceError::Conflict(format!(
                "the task is at version {}, not {v}: reload it and apply the change again",
                task.version
            )));
        }
        let patch = input
            .validate(task.due.as_ref())
            .map_err(ServiceError::Invalid)?;
        let expected = task.version;
        let old_due = task.due;
        let now = self.now();
        let changes = task.apply(patch, now);
        if changes.is_empty() {
            return Ok(task);
        }
        let reminder_changes =
            if task.due != old_due && task.status == todo_domain::TaskStatus::Active {
                let reminders = self
                    .store
                    .list_reminders(user, id)
                    .await
                    .map_err(store_error)?;
                follow_due(&reminders, task.due.as_ref(), now)
            } else {
                Vec::new()
            };
        let events = [event(
            now,
            task.id,
            todo_events::TaskUpdated {
                task_id: task.id.as_uuid(),
                user_id: user.as_uuid(),
                changes,
                updated_at: now,
            },
        )];
        if reminder_changes.is_empty() {
            self.store.update_task(&task, expected, &events).await
        } else {
            self.store
                .update_task_with_reminders(&task, expected, &events, &reminder_changes)
                .await
                .map(drop)
        }
        .map_err(store_error)?;
        Ok(task)
    }

    /// Completes a task; emits `task.completed`. Completing a completed task changes nothing and emits nothing.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::Conflict`] when a concurrent change won.
    pub async fn complete_task(&self, user: UserId, id: TaskId) -> Result<Completed, ServiceError> {
        let mut task = self.get_task(user, id).await?;
        let expected = task.version;
        let now = self.now();
        if !task.complete(now) {
            return Ok(Completed {
                task,
                completed_now: false,
                next_due: None,
            });
        }
        let next_due = task.recurrence.as_ref().and_then(|rule| {
            todo_domain::next_due(
                rule,
                task.due.as_ref(),
                task.series.map_or(0, |s| s.index),
                now,
            )
        });
        let events = [event(now, task.id, task.completed_payload())];
        match self.store.update_task(&task, expected, &events).await {
            Ok(()) => Ok(Completed {
                task,
                completed_now: true,
                next_due,
            }),
            Err(todo_store::Error::Conflict) => {
                // A concurrent request changed the task first; if it completed it, this request is a no-op.
                let current = self.get_task(user, id).await?;
                if current.status == todo_domain::TaskStatus::Completed {
                    Ok(Completed {
                        task: current,
                        completed_now: false,
                        next_due: None,
                    })
                } else {
                    Err(ServiceError::Conflict(
                        "the task changed concurrently; try again".into(),
                    ))
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Deletes a task; emits `task.deleted`.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn delete_task(&self, user: UserId, id: TaskId) -> Result<(), ServiceError> {
        let task = self.get_task(user, id).await?;
        let now = self.now();
        let events = [event(now, task.id, task.deleted_payload(now))];
        self.store
            .delete_task(user, id, &events)
            .await
            .map_err(store_error)
    }

    /// Sets a reminder on a task, by lead time before its due time or at an absolute time.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] when the task has no due date for a lead time, or the reminder would fire in the
    /// past; [`ServiceError::NotFound`].
    pub async fn set_reminder(
        &self,
        user: UserId,
        task: TaskId,
        input: SetReminder,
    ) -> Result<Reminder, ServiceError> {
        let spec = input.validate().map_err(ServiceError::Invalid)?;
        let task = self.get_task(user, task).await?;
        if task.status != todo_domain::TaskStatus::Active {
            return Err(ServiceError::field(
                "task",
                "the task is completed: reminders are for active tasks",
            ));
        }
        let now = self.now();
        let (lead, remind_at) = match spec {
            ReminderSpec::Lead(lead) => {
                let due = task.due.as_ref().ok_or_else(|| {
                    ServiceError::field(
                        "lead_time",
                        "the task has no due date to count back from; set one or use remind_at",
                    )
                })?;
                let at = todo_domain::remind_at(due, &lead, now)?;
                (Some(lead), at)
            }
            ReminderSpec::At(at) => {
                if at <= now {
                    return Err(ServiceError::field(
                        "remind_at",
                        format!("{at} is in the past"),
                    ));
                }
                (None, at)
            }
        };
        let reminder = Reminder {
            id: ReminderId::new(),
            task_id: task.id,
            owner: user,
            lead,
            remind_at,
            status: ReminderStatus::Pending,
            fired_at: None,
            created_at: now,
        };
        self.store
            .create_reminder(&reminder)
            .await
            .map_err(store_error)?;
        Ok(reminder)
    }

    /// The reminders of a task.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn list_reminders(
        &self,
        user: UserId,
        task: TaskId,
    ) -> Result<Vec<Reminder>, ServiceError> {
        self.get_task(user, task).await?;
        self.store
            .list_reminders(user, task)
            .await
            .map_err(store_error)
    }

    /// Cancels a pending reminder (a triggered or cancelled one stays as it is).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn cancel_reminder(
        &self,
        user: UserId,
        id: ReminderId,
    ) -> Result<Reminder, ServiceError> {
        self.store
            .cancel_reminder(user, id)
            .await
            .map_err(store_error)
    }

    /// A page of the user's audit log, newest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit(
        &self,
        user: UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditView>, ServiceError> {
        let page = self
            .store
            .list_audit(user, limit, cursor)
            .await
            .map_err(store_error)?;
        Ok(Page {
            items: page.items.iter().map(AuditView::from).collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// The reminders a task's lead times give, each at least one second in the future.
fn reminders_for(task: &Task, now: DateTime<Utc>) -> Result<Vec<Reminder>, ServiceError> {
    let Some(due) = task.due.as_ref() else {
        return Ok(Vec::new());
    };
    task.reminder_leads
        .iter()
        .map(|lead| {
            let at = todo_domain::remind_at(due, lead, now)
                .map_err(|e| ServiceError::field("reminders", format!("{lead}: {}", e.message)))?;
            Ok(Reminder {
                id: ReminderId::new(),
                task_id: task.id,
                owner: task.owner,
                lead: Some(*lead),
                remind_at: at,
                status: ReminderStatus::Pending,
                fired_at: None,
                created_at: now,
            })
        })
        .collect()
}

/// What a new due date (`None`: removed) does to a task's reminders, decided at `now`.
///
/// Only PENDING reminders set by lead time that have not fired yet change; absolute ones keep their time.
/// - A lead-time reminder moves to the new due instant minus its lead time.
/// - If that instant has already passed but the task is not yet due, it moves to `now`: the scheduler fires it
///   at once (the task is due sooner than the lead time asked for, which is worth a reminder).
/// - If the new due instant itself has passed, or the due date was removed, it is cancelled: there is nothing
///   left to count back from. Cancelling is final; a later due date does not bring it back (set a new one).
pub(crate) fn follow_due(
    reminders: &[Reminder],
    due: Option<&Due>,
    now: DateTime<Utc>,
) -> Vec<todo_store::ReminderChange> {
    use todo_store::ReminderChange;
    reminders
        .iter()
        .filter(|r| r.status == ReminderStatus::Pending && r.fired_at.is_none())
        .filter_map(|r| {
            let lead = r.lead?;
            let Some(instant) = due.map(Due::instant).filter(|at| *at > now) else {
                return Some(ReminderChange::Cancel { id: r.id });
            };
            let at = (instant - lead.duration()).max(now);
            (at != r.remind_at).then_some(ReminderChange::Reschedule {
                id: r.id,
                remind_at: at,
            })
        })
        .collect()
}

/// Maps a store error to a service error.
pub(crate) fn store_error(e: todo_store::Error) -> ServiceError {
    match e {
        todo_store::Error::NotFound => ServiceError::NotFound("task"),
        todo_store::Error::Conflict => ServiceError::Conflict(
            "the task changed concurrently: reload it and apply the change again".into(),
        ),
        todo_store::Error::Unavailable(source) => ServiceError::Unavailable(source.to_string()),
        todo_store::Error::InvalidCursor => {
            ServiceError::field("query.cursor", "not a cursor of this listing")
        }
        other => ServiceError::Internal(Box::new(other)),
    }
}

fn to_store_query(q: ListTasks) -> todo_store::TaskQuery {
    let sort = match q.sort {
        SortKey::Due => todo_store::TaskSort::Due,
        SortKey::Priority => todo_store::TaskSort::Priority,
        SortKey::Created => todo_store::TaskSort::Created,
        SortKey::Title => todo_store::TaskSort::Title,
    };
    // Default directions: soonest due and A-Z first; most urgent and newest first.
    let descending = match q.order {
        Some(Order::Desc) => true,
        Some(Order::Asc) => false,
        None => matches!(q.sort, SortKey::Priority | SortKey::Created),
    };
    todo_store::TaskQuery {
        status: q.status,
        priorities: q.priorities,
        tags: q.tags,
        tag_match: match q.tag_mode {
            TagMode::Any => todo_store::TagMatch::Any,
            TagMode::All => todo_store::TagMatch::All,
        },
        due_from: q.due_from,
        due_to: q.due_to,
        search: q.search,
        sort,
        descending,
        limit: q.limit,
        cursor: q.cursor,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone as _};
    use todo_domain::{LeadTime, TaskId, UserId};
    use todo_store::ReminderChange;
    use uuid::Uuid;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, day, hour, 0, 0)
            .single()
            .expect("instant")
    }

    fn reminder(lead: Option<&str>, remind_at: DateTime<Utc>) -> Reminder {
        Reminder {
            id: ReminderId::new(),
            task_id: TaskId::from_uuid(Uuid::nil()),
            owner: UserId::from_uuid(Uuid::nil()),
            lead: lead.map(|l| LeadTime::parse(l).expect("lead")),
            remind_at,
            status: ReminderStatus::Pending,
            fired_at: None,
            created_at: at(1, 0),
        }
    }

    fn due(day: u32) -> Due {
        Due::on(NaiveDate::from_ymd_opt(2030, 1, day).expect("date"))
    }

    #[test]
    fn lead_time_reminders_follow_the_due_date_and_absolute_ones_stay() {
        let now = at(1, 12);
        let lead = reminder(Some("1h"), at(9, 23));
        let absolute = reminder(None, at(9, 20));
        let mut fired = reminder(Some("2h"), at(9, 22));
        fired.fired_at = Some(at(1, 11));
        let mut cancelled = reminder(Some("3h"), at(9, 21));
        cancelled.status = ReminderStatus::Cancelled;
        let all = [lead.clone(), absolute, fired, cancelled];
        assert_eq!(
            follow_due(&all, Some(&due(20)), now),
            [ReminderChange::Reschedule {
                id: lead.id,
                remind_at: at(19, 23)
            }]
        );
        // Unchanged instant: nothing to write.
        assert_eq!(follow_due(&all, Some(&due(10)), now), []);
    }

    #[test]
    fn a_reminder_overtaken_by_the_new_due_date_fires_now_or_is_cancelled() {
        let now = at(1, 12);
        let week = reminder(Some("1 week"), at(9, 0));
        // Due on the 3rd: a week before is past, the task is not due yet: fire now.
        assert_eq!(
            follow_due(std::slice::from_ref(&week), Some(&due(3)), now),
            [ReminderChange::Reschedule {
                id: week.id,
                remind_at: now
            }]
        );
        // Due today at 00:00, already passed: cancelled; likewise without a due date.
        for new_due in [Some(due(1)), None] {
            assert_eq!(
                follow_due(std::slice::from_ref(&week), new_due.as_ref(), now),
                [ReminderChange::Cancel { id: week.id }]
            );
        }
    }
}
