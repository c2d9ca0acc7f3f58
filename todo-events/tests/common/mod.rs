//! Helpers shared by the integration tests: fixture loading and proptest strategies for every payload.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;
use todo_events::{
    Event, EventData, Priority, ReminderTriggered, TaskChanges, TaskCompleted, TaskCreated,
    TaskDeleted, TaskExtra, TaskUpdated,
};
use uuid::Uuid;

/// The folder of the golden files.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every structured-mode fixture: (file name, raw bytes), sorted by name.
pub fn structured_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read fixture"))
        })
        .collect();
    out.sort();
    out
}

/// One fixture parsed as JSON.
pub fn fixture_value(name: &str) -> Value {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("read fixture");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}

/// A fixture decoded as an event.
pub fn fixture_event(name: &str) -> Event {
    let bytes = std::fs::read(fixtures_dir().join(name)).expect("read fixture");
    Event::from_slice(&bytes).expect("fixture decodes")
}

pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Instants between 1970 and 2100 with nanosecond precision.
pub fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range"))
}

pub fn date() -> impl Strategy<Value = NaiveDate> {
    (1i32..=3_652_059).prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).expect("in range"))
}

pub fn time_of_day() -> impl Strategy<Value = NaiveTime> {
    (0u32..86_400, 0u32..1_000_000_000)
        .prop_map(|(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n).expect("in range"))
}

pub fn priority() -> impl Strategy<Value = Priority> {
    proptest::sample::select(Priority::ALL.to_vec())
}

/// Any text, including control characters, quotes and non-ASCII.
pub fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

/// Text with at least one character (titles, sources).
pub fn non_empty_text() -> impl Strategy<Value = String> {
    "\\PC{1,40}"
}

pub fn tags() -> impl Strategy<Value = Vec<String>> {
    vec("[a-z0-9-]{1,12}", 0..5)
}

/// `Option<Option<T>>` as TaskChanges uses it: unchanged, cleared or set.
pub fn double_option<T: std::fmt::Debug + Clone + 'static>(
    inner: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<Option<T>>> {
    prop_oneof![
        Just(None),
        Just(Some(None)),
        inner.prop_map(|v| Some(Some(v))),
    ]
}

pub fn task_extra() -> impl Strategy<Value = TaskExtra> {
    (
        option::of(time_of_day()),
        option::of("[A-Za-z]{1,10}/[A-Za-z_]{1,12}"),
        option::of(uuid()),
        option::of(any::<u32>()),
        vec(any::<i64>(), 0..3),
    )
        .prop_map(
            |(due_time, time_zone, series_id, series_index, reminder_leads)| TaskExtra {
                due_time,
                time_zone,
                series_id,
                series_index,
                reminder_leads,
            },
        )
}

pub fn task_created() -> impl Strategy<Value = TaskCreated> {
    (
        (uuid(), uuid(), non_empty_text(), option::of(text())),
        (priority(), tags(), option::of(date()), option::of(text())),
        (instant(), task_extra()),
    )
        .prop_map(
            |(
                (task_id, user_id, title, description),
                (priority, tags, due_date, recurrence),
                (created_at, extra),
            )| TaskCreated {
                task_id,
                user_id,
                title,
                description,
                priority,
                tags,
                due_date,
                recurrence,
                created_at,
                extra,
            },
        )
}

pub fn task_changes() -> impl Strategy<Value = TaskChanges> {
    (
        (
            option::of(non_empty_text()),
            double_option(text()),
            option::of(priority()),
            option::of(tags()),
        ),
        (
            double_option(date()),
            double_option(time_of_day()),
            double_option("[A-Za-z]{1,10}/[A-Za-z_]{1,12}"),
            double_option(text()),
        ),
    )
        .prop_map(
            |(
                (title, description, priority, tags),
                (due_date, due_time, time_zone, recurrence),
            )| {
                TaskChanges {
                    title,
                    description,
                    priority,
                    tags,
                    due_date,
                    due_time,
                    time_zone,
                    recurrence,
                }
            },
        )
}

pub fn task_updated() -> impl Strategy<Value = TaskUpdated> {
    (uuid(), uuid(), task_changes(), instant()).prop_map(
        |(task_id, user_id, changes, updated_at)| TaskUpdated {
            task_id,
            user_id,
            changes,
            updated_at,
        },
    )
}

pub fn task_completed() -> impl Strategy<Value = TaskCompleted> {
    (
        uuid(),
        uuid(),
        non_empty_text(),
        option::of(text()),
        option::of(date()),
        instant(),
    )
        .prop_map(
            |(task_id, user_id, title, recurrence, due_date, completed_at)| TaskCompleted {
                task_id,
                user_id,
                title,
                recurrence,
                due_date,
                completed_at,
            },
        )
}

pub fn task_deleted() -> impl Strategy<Value = TaskDeleted> {
    (uuid(), uuid(), non_empty_text(), instant()).prop_map(
        |(task_id, user_id, title, deleted_at)| TaskDeleted {
            task_id,
            user_id,
            title,
            deleted_at,
        },
    )
}

pub fn reminder_triggered() -> impl Strategy<Value = ReminderTriggered> {
    (
        uuid(),
        uuid(),
        uuid(),
        non_empty_text(),
        option::of(date()),
        option::of(instant()),
    )
        .prop_map(
            |(reminder_id, task_id, user_id, task_title, due_date, remind_at)| ReminderTriggered {
                reminder_id,
                task_id,
                user_id,
                task_title,
                due_date,
                remind_at,
            },
        )
}

pub fn event_data() -> impl Strategy<Value = EventData> {
    prop_oneof![
        task_created().prop_map(EventData::from),
        task_updated().prop_map(EventData::from),
        task_completed().prop_map(EventData::from),
        task_deleted().prop_map(EventData::from),
        reminder_triggered().prop_map(EventData::from),
    ]
}

/// Extension attribute names: lower-case letters and digits, never a core attribute.
pub fn extension_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,15}".prop_filter("not a core attribute", |n| {
        ![
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "subject",
            "data",
            "dataschema",
        ]
        .contains(&n.as_str())
    })
}

/// A valid event with string extensions, which both binding modes carry faithfully.
pub fn event() -> impl Strategy<Value = Event> {
    (
        uuid(),
        non_empty_text(),
        instant(),
        option::of(text()),
        btree_map(extension_name(), text(), 0..3),
        event_data(),
    )
        .prop_map(|(id, source, time, subject, extensions, data)| {
            let mut e = Event::with_id(id, source, time, data);
            if let Some(s) = subject {
                e = e.with_subject(s);
            }
            for (k, v) in extensions {
                e = e.with_extension(k, v);
            }
            e
        })
}

/// A scalar extension value of any CloudEvents type that JSON can carry: string, integer or boolean.
pub fn scalar_extension_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}
