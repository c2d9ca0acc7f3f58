//! Conversions between domain values and row columns, shared by both backends.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use todo_domain::{
    Description, Due, LeadTime, Priority, Recurrence, Reminder, ReminderId, ReminderStatus, Series,
    Tags, Task, TaskId, TaskStatus, TimeZone, Title, UserId,
};
use uuid::Uuid;

use crate::{Error, Result, TaskSort};

/// A task as columns.
pub(crate) struct TaskColumns {
    pub(crate) id: Uuid,
    pub(crate) owner: Uuid,
    pub(crate) title: String,
    pub(crate) title_key: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: i32,
    pub(crate) tags: String,
    pub(crate) due_date: Option<NaiveDate>,
    pub(crate) due_time: Option<NaiveTime>,
    pub(crate) time_zone: String,
    pub(crate) due_ms: i64,
    pub(crate) recurrence: Option<String>,
    pub(crate) series_id: Option<Uuid>,
    pub(crate) series_index: Option<i32>,
    pub(crate) reminder_leads: String,
    pub(crate) status: &'static str,
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) created_ms: i64,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) version: i64,
}

pub(crate) fn task_columns(t: &Task) -> TaskColumns {
    let leads: Vec<i64> = t.reminder_leads.iter().map(LeadTime::seconds).collect();
    TaskColumns {
        id: t.id.as_uuid(),
        owner: t.owner.as_uuid(),
        title: t.title.as_str().to_owned(),
        title_key: t.title.as_str().to_lowercase(),
        description: t.description.as_ref().map(|d| d.as_str().to_owned()),
        priority: i32::from(t.priority.rank()),
        tags: serde_json::to_string(t.tags.as_slice()).unwrap_or_else(|_| "[]".into()),
        due_date: t.due.as_ref().map(|d| d.date),
        due_time: t.due.as_ref().and_then(|d| d.time),
        time_zone: t
            .due
            .as_ref()
            .map_or_else(|| "UTC".to_owned(), |d| d.zone.name().to_owned()),
        due_ms: t
            .due
            .as_ref()
            .map_or(i64::MAX, |d| d.instant().timestamp_millis()),
        recurrence: t.recurrence.as_ref().map(ToString::to_string),
        series_id: t.series.as_ref().map(|s| s.id.as_uuid()),
        series_index: t
            .series
            .as_ref()
            .map(|s| i32::try_from(s.index).unwrap_or(i32::MAX)),
        reminder_leads: serde_json::to_string(&leads).unwrap_or_else(|_| "[]".into()),
        status: t.status.as_str(),
        completed_at: t.completed_at,
        created_at: t.created_at,
        created_ms: t.created_at.timestamp_millis(),
        updated_at: t.updated_at,
        version: t.version,
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

/// Rebuilds a task from its columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn task_from(c: TaskColumns) -> Result<Task> {
    let tags: Vec<String> = serde_json::from_str(&c.tags).map_err(|e| corrupt("tags", e))?;
    let leads: Vec<i64> =
        serde_json::from_str(&c.reminder_leads).map_err(|e| corrupt("reminder_leads", e))?;
    let zone = TimeZone::parse(&c.time_zone).map_err(|e| corrupt("time_zone", e))?;
    Ok(Task {
        id: TaskId::from_uuid(c.id),
        owner: UserId::from_uuid(c.owner),
        title: Title::parse(&c.title).map_err(|e| corrupt("title", e))?,
        description: c
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| corrupt("description", e))?,
        priority: priority_from_rank(c.priority)?,
        tags: Tags::parse(&tags).map_err(|e| corrupt("tags", e))?,
        due: c.due_date.map(|date| Due {
            date,
            time: c.due_time,
            zone,
        }),
        recurrence: c
            .recurrence
            .as_deref()
            .map(Recurrence::parse)
            .transpose()
            .map_err(|e| corrupt("recurrence", e))?,
        series: match (c.series_id, c.series_index) {
            (Some(id), Some(index)) => Some(Series {
                id: TaskId::from_uuid(id),
                index: u32::try_from(index).unwrap_or(0),
            }),
            _ => None,
        },
        reminder_leads: leads
            .into_iter()
            .map(LeadTime::from_seconds)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| corrupt("reminder_leads", e))?,
        status: c.status.parse().map_err(|e| corrupt("status", e))?,
        completed_at: c.completed_at,
        created_at: c.created_at,
        updated_at: c.updated_at,
        version: c.version,
    })
}

pub(crate) fn status_from(s: &str) -> Result<&'static str> {
    match s {
        "active" => Ok(TaskStatus::Active.as_str()),
        "completed" => Ok(TaskStatus::Completed.as_str()),
        other => Err(corrupt("status", other)),
    }
}

pub(crate) fn priority_from_rank(rank: i32) -> Result<Priority> {
    Priority::ALL
        .into_iter()
        .find(|p| i32::from(p.rank()) == rank)
        .ok_or_else(|| corrupt("priority", rank))
}

/// A reminder as columns.
pub(crate) struct ReminderColumns {
    pub(crate) id: Uuid,
    pub(crate) task_id: Uuid,
    pub(crate) owner: Uuid,
    pub(crate) lead_seconds: Option<i64>,
    pub(crate) remind_at: DateTime<Utc>,
    pub(crate) status: String,
    pub(crate) fired_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
}

pub(crate) fn reminder_from(c: ReminderColumns) -> Result<Reminder> {
    Ok(Reminder {
        id: ReminderId::from_uuid(c.id),
        task_id: TaskId::from_uuid(c.task_id),
        owner: UserId::from_uuid(c.owner),
        lead: c
            .lead_seconds
            .map(LeadTime::from_seconds)
            .transpose()
            .map_err(|e| corrupt("lead_seconds", e))?,
        remind_at: c.remind_at,
        status: c
            .status
            .parse::<ReminderStatus>()
            .map_err(|e| corrupt("status", e))?,
        fired_at: c.fired_at,
        created_at: c.created_at,
    })
}

/// Headers as a JSON array of `[name, hex value]`.
pub(crate) fn headers_to_json(headers: &[(String, Vec<u8>)]) -> String {
    let pairs: Vec<(&str, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(|b| format!("{b:02x}")).collect()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn headers_from_json(json: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let pairs: Vec<(String, String)> =
        serde_json::from_str(json).map_err(|e| corrupt("headers", e))?;
    pairs
        .into_iter()
        .map(|(k, hex)| {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| corrupt("headers", &k))?;
            Ok((k, bytes))
        })
        .collect()
}

/// The keyset position of a task in a sort: the sort column's value and the id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cursor {
    /// Sort name, so a cursor of one sort is rejected by another.
    pub(crate) s: String,
    /// Numeric key (due, priority, created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) n: Option<i64>,
    /// Text key (title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) t: Option<String>,
    /// Tie-breaker.
    pub(crate) id: Uuid,
}

pub(crate) fn sort_name(sort: TaskSort, descending: bool) -> String {
    let key = match sort {
        TaskSort::Due => "due",
        TaskSort::Priority => "priority",
        TaskSort::Created => "created",
        TaskSort::Title => "title",
    };
    format!("{key}:{}", if descending { "desc" } else { "asc" })
}

pub(crate) fn encode_cursor(c: &Cursor) -> String {
    serde_json::to_vec(c)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn decode_cursor(s: &str, expected_sort: &str) -> Result<Cursor> {
    if !s.len().is_multiple_of(2) || s.len() > 2048 {
        return Err(Error::InvalidCursor);
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or(Error::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| Error::InvalidCursor)?;
    if c.s != expected_sort {
        return Err(Error::InvalidCursor);
    }
    Ok(c)
}

/// The cursor for the last task of a page.
pub(crate) fn cursor_of(task: &Task, sort: TaskSort, descending: bool) -> String {
    let c = task_columns(task);
    let (n, t) = match sort {
        TaskSort::Due => (Some(c.due_ms), None),
        TaskSort::Priority => (Some(i64::from(c.priority)), None),
        TaskSort::Created => (Some(c.created_ms), None),
        TaskSort::Title => (None, Some(c.title_key)),
    };
    encode_cursor(&Cursor {
        s: sort_name(sort, descending),
        n,
        t,
        id: c.id,
    })
}

/// Words of a search, for FTS5 MATCH (each quoted, so user text is never query syntax) or tsquery.
pub(crate) fn search_terms(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}
