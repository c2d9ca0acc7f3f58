//! Requests to the use cases, as REST bodies and MCP tool arguments carry them, and their validation.
//!
//! Inputs hold raw strings so that every invalid field is reported at once with its own message, rather than the
//! first serde error.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Deserializer};
use todo_domain::{
    Description, Due, LeadTime, NewTask, Priority, Recurrence, Tags, TaskPatch, TimeZone, Title,
};
use utoipa::ToSchema;

use crate::http::problem::FieldError;

/// Collects field errors while parsing an input.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Keeps the value of a result, or records its error.
    pub(crate) fn take<T>(&mut self, r: Result<T, todo_domain::ValidationError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e.field, e.message);
                None
            }
        }
    }

    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}

/// A new task.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Title (required; trimmed; at most 500 characters).
    pub title: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `low`, `medium` (default), `high` or `urgent`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Tags (lower-cased, deduplicated; at most 20 of at most 50 characters).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Due date, `YYYY-MM-DD`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Due time of day, `HH:MM` or `HH:MM:SS`, in `time_zone` (needs `due_date`).
    #[serde(default)]
    pub due_time: Option<String>,
    /// IANA time zone of the due date and time (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `daily`, `weekly`, `monthly`, `yearly`, `weekdays`, `every 2 weeks`, `every monday and thursday`, or an
    /// RFC 5545 RRULE such as `FREQ=MONTHLY;BYDAY=-1FR`.
    #[serde(default)]
    pub recurrence: Option<String>,
    /// Reminder lead times before the due time (`30min`, `1h`, `1d`, `PT30M`), re-created on each instance of a
    /// recurring task (needs `due_date`).
    #[serde(default)]
    pub reminders: Option<Vec<String>>,
}

/// Changes to a task: absent fields stay as they are; `null` clears a clearable field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New priority.
    #[serde(default)]
    pub priority: Option<String>,
    /// New tags (replaces the set).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New due date; `null` clears the due date, time and zone. Pending lead-time reminders follow the due
    /// instant; clearing it cancels them.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub due_date: Option<Option<String>>,
    /// New due time; `null` clears it.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub due_time: Option<Option<String>>,
    /// New time zone; `null` resets it to UTC.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    /// New recurrence rule; `null` makes the task one-off.
    #[serde(default, deserialize_with = "double")]
    #[schema(value_type = Option<String>)]
    pub recurrence: Option<Option<String>>,
    /// The version the client last saw; a stale version is a 409 conflict. Also accepted as `If-Match`.
    #[serde(default)]
    pub version: Option<i64>,
}

/// When a reminder fires: a lead time before the task is due, or an absolute time.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetReminder {
    /// Lead time before the due time: `30min`, `1h`, `2 hours`, `1d`, `1 week`, `PT30M`, `P1D`.
    #[serde(default)]
    pub lead_time: Option<String>,
    /// Absolute time, RFC 3339 (`2026-02-10T09:30:00Z`).
    #[serde(default)]
    pub remind_at: Option<String>,
}

/// What a reminder request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReminderSpec {
    /// Relative to the task's due instant.
    Lead(LeadTime),
    /// An absolute instant.
    At(DateTime<Utc>),
}

fn double<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub(crate) fn parse_date(field: &str, s: &str, errors: &mut Errors) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(field, format!("`{s}` is not a date; expected YYYY-MM-DD"));
            None
        }
    }
}

pub(crate) fn parse_time(field: &str, s: &str, errors: &mut Errors) -> Option<NaiveTime> {
    let t = s.trim();
    match NaiveTime::parse_from_str(t, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
    {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(
                field,
                format!("`{s}` is not a time of day; expected HH:MM or HH:MM:SS"),
            );
            None
        }
    }
}

fn parse_description(s: &str, errors: &mut Errors) -> Option<Option<Description>> {
    if s.trim().is_empty() {
        Some(None)
    } else {
        errors.take(Description::parse(s)).map(Some)
    }
}

fn parse_priority(s: &str, errors: &mut Errors) -> Option<Priority> {
    match s.parse::<Priority>() {
        Ok(p) => Some(p),
        Err(_) => {
            errors.push(
                "priority",
                format!("`{s}` is not a priority; expected low, medium, high or urgent"),
            );
            None
        }
    }
}

impl CreateTask {
    /// Validates every field, reporting all invalid ones.
    ///
    /// # Errors
    /// One [`FieldError`] per invalid field.
    pub fn validate(&self) -> Result<NewTask, Vec<FieldError>> {
        let mut e = Errors::default();
        let title = e.take(Title::parse(&self.title));
        let description = self
            .description
            .as_deref()
            .map_or(Some(None), |d| parse_description(d, &mut e));
        let priority = self
            .priority
            .as_deref()
            .map_or(Some(Priority::default()), |p| parse_priority(p, &mut e));
        let tags = e.take(Tags::parse(self.tags.as_deref().unwrap_or_default()));
        let zone = self
            .time_zone
            .as_deref()
            .map_or(Some(TimeZone::utc()), |z| e.take(TimeZone::parse(z)));
        let date = self
            .due_date
            .as_deref()
            .map(|d| parse_date("due_date", d, &mut e));
        let time = self
            .due_time
            .as_deref()
            .map(|t| parse_time("due_time", t, &mut e));
        if date.is_none() && time.is_some() {
            e.push("due_time", "needs a due_date");
        }
        let recurrence = self
            .recurrence
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(|r| e.take(Recurrence::parse(r)));
        let leads: Vec<Option<LeadTime>> = self
            .reminders
            .iter()
            .flatten()
            .map(|l| e.take(LeadTime::parse(l)))
            .collect();
        if !leads.is_empty() && date.is_none() {
            e.push("reminders", "reminders need a due_date to count back from");
        }
        if !e.0.is_empty() {
            return Err(e.0);
        }
        let (Some(title), Some(description), Some(priority), Some(tags), Some(zone)) =
            (title, description, priority, tags, zone)
        else {
            // Every parser above records an error whenever it yields `None`.
            return Err(vec![FieldError {
                field: "body".into(),
                message: "invalid task".into(),
            }]);
        };
        let due = match date {
            Some(Some(date)) => Some(Due {
                date,
                time: time.flatten(),
                zone,
            }),
            _ => None,
        };
        Ok(NewTask {
            title,
            description,
            priority,
            tags,
            due,
            recurrence: recurrence.flatten(),
            reminder_leads: leads.into_iter().flatten().collect(),
        })
    }
}

impl UpdateTask {
    /// Validates every present field against the task's current due date, reporting all invalid ones.
    ///
    /// # Errors
    /// One [`FieldError`] per invalid field.
    pub fn validate(&self, current_due: Option<&Due>) -> Result<TaskPatch, Vec<FieldError>> {
        let mut e = Errors::default();
        let mut patch = TaskPatch::default();
        if let Some(t) = &self.title {
            patch.title = e.take(Title::parse(t));
        }
        if let Some(d) = &self.description {
            patch.description = match d.as_deref() {
                None => Some(None),
                Some(s) => parse_description(s, &mut e),
            };
        }
        if let Some(p) = &self.priority {
            patch.priority = parse_priority(p, &mut e);
        }
        if let Some(tags) = &self.tags {
            patch.tags = e.take(Tags::parse(tags));
        }
        if let Some(r) = &self.recurrence {
            patch.recurrence = match r.as_deref().map(str::trim) {
                None | Some("") => Some(None),
                Some(s) => e.take(Recurrence::parse(s)).map(Some),
            };
        }
        let touches_due =
            self.due_date.is_some() || self.due_time.is_some() || self.time_zone.is_some();
        if touches_due {
            let date = match &self.due_date {
                None => current_due.map(|d| Some(d.date)),
                Some(None) => Some(None),
                Some(Some(s)) => parse_date("due_date", s, &mut e).map(Some),
            };
            let time = match &self.due_time {
                None => current_due.map(|d| d.time),
                Some(None) => Some(None),
                Some(Some(s)) => parse_time("due_time", s, &mut e).map(Some),
            };
            let zone = match &self.time_zone {
                None => Some(current_due.map_or_else(TimeZone::utc, |d| d.zone)),
                Some(None) => Some(TimeZone::utc()),
                Some(Some(s)) => e.take(TimeZone::parse(s)),
            };
            match (date, time, zone) {
                (Some(Some(date)), time, Some(zone)) => {
                    patch.due = Some(Some(Due {
                        date,
                        time: time.flatten(),
                        zone,
                    }));
                }
                (Some(None), _, _) | (None, _, _)
                    if (matches!(self.due_date, Some(None)) || current_due.is_none()) =>
                {
                    if self.due_time.as_ref().is_some_and(Option::is_some) {
                        e.push("due_time", "needs a due_date");
                    } else if self.time_zone.as_ref().is_some_and(Option::is_some)
                        && current_due.is_none()
                    {
                        e.push("time_zone", "needs a due_date");
                    } else {
                        patch.due = Some(None);
                    }
                }
                _ => {}
            }
        }
        e.finish(|| patch)
    }
}

impl SetReminder {
    /// Resolves the request to a lead time or an absolute instant.
    ///
    /// # Errors
    /// A [`FieldError`] when neither or both are given, or the given one is invalid.
    pub fn validate(&self) -> Result<ReminderSpec, Vec<FieldError>> {
        let mut e = Errors::default();
        let spec = match (&self.lead_time, &self.remind_at) {
            (Some(l), None) => e.take(LeadTime::parse(l)).map(ReminderSpec::Lead),
            (None, Some(at)) => match DateTime::parse_from_rfc3339(at.trim()) {
                Ok(t) => Some(ReminderSpec::At(t.with_timezone(&Utc))),
                Err(_) => {
                    e.push(
                        "remind_at",
                        format!("`{at}` is not an RFC 3339 time such as 2026-02-10T09:30:00Z"),
                    );
                    None
                }
            },
            (Some(_), Some(_)) => {
                e.push("lead_time", "give either lead_time or remind_at, not both");
                None
            }
            (None, None) => {
                e.push(
                    "lead_time",
                    "give a lead_time such as \"30min\" or a remind_at time",
                );
                None
            }
        };
        match spec {
            Some(s) if e.0.is_empty() => Ok(s),
            _ => Err(e.0),
        }
    }
}
