//! Golden files: the design document's JSON examples (and a few richer events) decode and re-encode to the same
//! JSON, in structured mode and in the binary mode of the Kafka binding.

mod common;

use serde_json::{Value, json};
use todo_events::binding::{self, Mode};
use todo_events::{CONTENT_TYPE_JSON, Event, EventData, EventType, Priority, SPEC_VERSION};

use common::{fixture_event, fixture_value, fixtures_dir, structured_fixtures};

/// The design's examples, one per event type, with their `uuid-v4` placeholders replaced.
const DESIGN_EXAMPLES: [(&str, EventType); 5] = [
    ("task.created.json", EventType::TaskCreated),
    ("task.updated.json", EventType::TaskUpdated),
    ("task.completed.json", EventType::TaskCompleted),
    ("task.deleted.json", EventType::TaskDeleted),
    ("reminder.triggered.json", EventType::ReminderTriggered),
];

/// What the encoder writes for a fixture: the fixture plus the attributes it always adds.
fn with_added_attributes(mut fixture: Value) -> Value {
    let map = fixture.as_object_mut().expect("fixture is an object");
    map.entry("specversion").or_insert(json!(SPEC_VERSION));
    map.entry("datacontenttype")
        .or_insert(json!(CONTENT_TYPE_JSON));
    fixture
}

#[test]
fn every_design_example_has_a_fixture_of_its_type() {
    for (name, ty) in DESIGN_EXAMPLES {
        let event = fixture_event(name);
        assert_eq!(event.event_type(), ty, "{name}");
        assert_eq!(fixture_value(name)["type"], ty.as_str(), "{name}");
    }
}

#[test]
fn every_fixture_round_trips_through_structured_json() {
    let fixtures = structured_fixtures();
    assert!(fixtures.len() >= DESIGN_EXAMPLES.len());
    for (name, bytes) in fixtures {
        let event = Event::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reencoded: Value = serde_json::from_str(&event.to_json()).expect("encoder writes JSON");
        let original: Value = serde_json::from_slice(&bytes).expect("fixture is JSON");
        assert_eq!(reencoded, with_added_attributes(original), "{name}");
        // Decoding what we wrote gives the same event back.
        assert_eq!(Event::from_json(&event.to_json()), Ok(event), "{name}");
    }
}

#[test]
fn every_fixture_round_trips_through_both_binding_modes() {
    for (name, bytes) in structured_fixtures() {
        let event = Event::from_slice(&bytes).expect("fixture decodes");
        for mode in [Mode::Structured, Mode::Binary] {
            let record = binding::encode(&event, mode);
            assert_eq!(
                record.key.as_deref(),
                Some(event.partition_key().as_bytes())
            );
            assert_eq!(
                binding::decode_record(&record).as_ref(),
                Ok(&event),
                "{name} {mode:?}"
            );
        }
    }
}

#[test]
fn design_example_values_are_kept_exactly() {
    let created = fixture_event("task.created.json");
    let EventData::TaskCreated(d) = created.data() else {
        panic!("task.created decodes to {:?}", created.data());
    };
    assert_eq!(created.source(), "todo-backend");
    assert_eq!(d.title, "Buy groceries");
    assert_eq!(d.description.as_deref(), Some("Milk, eggs, bread"));
    assert_eq!(d.priority, Priority::High);
    assert_eq!(d.tags, ["personal", "errands"]);
    assert_eq!(
        d.due_date.map(|d| d.to_string()).as_deref(),
        Some("2026-02-10")
    );
    assert_eq!(d.recurrence.as_deref(), Some("weekly"));

    let updated = fixture_event("task.updated.json");
    let EventData::TaskUpdated(u) = updated.data() else {
        panic!("task.updated decodes to {:?}", updated.data());
    };
    assert_eq!(
        u.changes.title.as_deref(),
        Some("Buy groceries and supplies")
    );
    assert_eq!(u.changes.priority, Some(Priority::Medium));
    assert_eq!(u.changes.description, None, "absent means unchanged");

    let reminder = fixture_event("reminder.triggered.json");
    assert_eq!(reminder.source(), "todo-reminder-scheduler");
    assert_eq!(reminder.topic().name(), "todo.reminders");
}

#[test]
fn cleared_fields_of_an_update_are_null_and_unchanged_fields_absent() {
    let event = fixture_event("task.updated.cleared.json");
    let EventData::TaskUpdated(u) = event.data() else {
        panic!("task.updated decodes to {:?}", event.data());
    };
    assert_eq!(u.changes.description, Some(None));
    assert_eq!(u.changes.due_date, Some(None));
    assert_eq!(u.changes.time_zone, Some(None));
    assert_eq!(u.changes.title, None);
    assert_eq!(u.changes.priority, None);
    assert_eq!(u.changes.recurrence, Some(Some("FREQ=DAILY".into())));
}

#[test]
fn extended_fixture_keeps_subject_extension_and_task_extra() {
    let event = fixture_event("task.created.extended.json");
    assert_eq!(
        event.subject(),
        Some("5a8d3b2c-1e4f-4a6b-9c7d-8e9f0a1b2c3d")
    );
    assert_eq!(
        event.extension_str("traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    let EventData::TaskCreated(d) = event.data() else {
        panic!("task.created decodes to {:?}", event.data());
    };
    assert_eq!(d.extra.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(d.extra.series_index, Some(1));
    assert_eq!(d.extra.reminder_leads, [1800, 86400]);
}

/// A binary-mode record fixture: headers, key and data value, plus the structured fixture it must equal.
struct BinaryFixture {
    name: String,
    structured: String,
    key: String,
    headers: Vec<(String, Vec<u8>)>,
    value: Vec<u8>,
}

fn binary_fixtures() -> Vec<BinaryFixture> {
    let dir = fixtures_dir().join("binary");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("binary fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let v: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).expect("read"))
                .expect("binary fixture is JSON");
            let headers = v["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().expect("header name").to_owned(),
                        h[1].as_str().expect("header value").as_bytes().to_vec(),
                    )
                })
                .collect();
            BinaryFixture {
                structured: v["structured"].as_str().expect("structured").to_owned(),
                key: v["key"].as_str().expect("key").to_owned(),
                value: serde_json::to_vec(&v["value"]).expect("value"),
                headers,
                name,
            }
        })
        .collect()
}

#[test]
fn binary_mode_fixtures_decode_to_their_structured_twin() {
    let fixtures = binary_fixtures();
    assert!(!fixtures.is_empty());
    for f in fixtures {
        let decoded =
            binding::decode(&f.headers, &f.value).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(decoded, fixture_event(&f.structured), "{}", f.name);
        assert_eq!(decoded.partition_key(), f.key, "{}", f.name);
    }
}

#[test]
fn binary_mode_encoding_matches_the_fixtures() {
    for f in binary_fixtures() {
        let record = binding::encode(&fixture_event(&f.structured), Mode::Binary);
        let mut got = record.headers.clone();
        let mut want = f.headers.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", f.name);
        assert_eq!(record.key.as_deref(), Some(f.key.as_bytes()), "{}", f.name);
        let got: Value = serde_json::from_slice(&record.value).expect("value is JSON");
        let want: Value = serde_json::from_slice(&f.value).expect("fixture value");
        assert_eq!(got, want, "{}", f.name);
    }
}
