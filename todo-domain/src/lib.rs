//! Pure domain rules of the todo pipeline.
//!
//! Task values, recurrence rules and their next occurrence, reminder lead times and the reminder state machine,
//! and the decision each consumer takes. No I/O and no clock: functions take `now`. Depends only on
//! [`todo_events`] (plus chrono, chrono-tz, uuid, serde, thiserror); `todo-store` and `todo-bin` build on it.
//!
//! - values: [`Title`], [`Description`], [`Tags`], [`Priority`], [`TimeZone`], [`Due`], all validated, failing
//!   with a [`ValidationError`] that names the field and the rule;
//! - recurrence: [`Recurrence`] (friendly phrases and RFC 5545 RRULE text), [`next_due`] / [`next_occurrence`];
//! - reminders: [`LeadTime`], [`remind_at`], [`ReminderStatus::apply`];
//! - tasks: [`Task`], [`NewTask`], [`TaskPatch`] and the event payloads they produce;
//! - decisions: [`next_instance`] for the recurrence consumer, [`trigger_input`] for the reminder consumer.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone as _, Utc};
//! use todo_domain::{next_instance, Due, NewTask, Recurrence, Task, TaskId, Title, UserId};
//!
//! let now = Utc.with_ymd_and_hms(2026, 1, 20, 9, 0, 0).unwrap();
//! let mut new = NewTask::titled(Title::parse("Pay rent")?);
//! new.due = Some(Due::on(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()));
//! new.recurrence = Some(Recurrence::parse("monthly")?);
//! let mut task = Task::create(TaskId::new(), UserId::new(), new, now);
//!
//! assert!(task.complete(now));
//! let next = next_instance(&task.completed_payload(), &task, TaskId::new(), now).unwrap();
//! assert_eq!(next.due.unwrap().date, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap());
//! assert_eq!(next.series.unwrap().index, 1);
//! // the series remembers it is "on the 31st", so March gets the 31st again
//! let mut feb = next;
//! feb.complete(now);
//! let mar = next_instance(&feb.completed_payload(), &feb, TaskId::new(), now).unwrap();
//! assert_eq!(mar.due.unwrap().date, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
//! # Ok::<(), todo_domain::ValidationError>(())
//! ```

mod decisions;
mod ids;
mod recurrence;
mod reminder;
mod task;
mod values;

#[doc(inline)]
pub use self::decisions::{next_instance, trigger_input};
#[doc(inline)]
pub use self::ids::{ReminderId, TaskId, UserId};
#[doc(inline)]
pub use self::recurrence::{
    Frequency, MAX_COUNT, MAX_INTERVAL, Occurrence, Recurrence, Until, next_due, next_occurrence,
};
#[doc(inline)]
pub use self::reminder::{
    LeadTime, MAX_LEAD_SECONDS, ParseReminderStatusError, Reminder, ReminderInput, ReminderStatus,
    absolute_remind_at, remind_at,
};
#[doc(inline)]
pub use self::task::{NewTask, ParseTaskStatusError, Series, Task, TaskPatch, TaskStatus};
#[doc(inline)]
pub use self::values::{
    DESCRIPTION_MAX_CHARS, Description, Due, TAG_MAX_CHARS, TAGS_MAX, TITLE_MAX_CHARS, Tags,
    TimeZone, Title, ValidationError,
};
#[doc(inline)]
pub use todo_events::Priority;

/// The error of this crate: invalid input.
pub type Error = ValidationError;
/// A result whose error is [`ValidationError`].
pub type Result<T, E = ValidationError> = std::result::Result<T, E>;
