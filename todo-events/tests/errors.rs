//! Decode errors say what is wrong and where; tolerant-reader rules (missing specversion, unknown fields,
//! extension attributes) hold.

mod common;

use serde_json::{Value, json};
use todo_events::{Error, Event, EventData, Priority};

use common::fixture_value;

fn decode(v: &Value) -> Result<Event, Error> {
    Event::from_slice(&serde_json::to_vec(v).expect("test JSON"))
}

fn created() -> Value {
    fixture_value("task.created.json")
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = Event::from_slice(b"{\n  \"id\": \"550e8400\",\n  \"source\" \"todo-backend\"\n}")
        .unwrap_err();
    assert_eq!(
        err,
        Error::Syntax {
            line: 3,
            column: 12,
            message: "expected `:`".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid JSON at line 3, column 12: expected `:`"
    );
}

#[test]
fn truncated_json_reports_end_of_input() {
    let err = Event::from_slice(br#"{"id": "#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid JSON at line 1, column 7: EOF while parsing a value"
    );
}

#[test]
fn a_json_array_is_not_an_event() {
    assert_eq!(Event::from_slice(b"[1, 2]"), Err(Error::NotAnObject));
    assert_eq!(
        Error::NotAnObject.to_string(),
        "an event must be a JSON object"
    );
}

#[test]
fn unknown_type_is_named() {
    let mut v = created();
    v["type"] = json!("x");
    let err = decode(&v).unwrap_err();
    assert_eq!(err, Error::UnknownType("x".into()));
    assert_eq!(err.to_string(), "unknown event type `x`");
}

#[test]
fn missing_user_id_names_the_field_path() {
    let mut v = created();
    v["data"].as_object_mut().expect("data").remove("user_id");
    let err = decode(&v).unwrap_err();
    assert_eq!(
        err,
        Error::MissingField {
            field: "data.user_id".into()
        }
    );
    assert_eq!(err.to_string(), "missing field `data.user_id`");
}

#[test]
fn missing_envelope_attribute_names_it() {
    for attr in ["id", "source", "type", "time", "data"] {
        let mut v = created();
        v.as_object_mut().expect("object").remove(attr);
        assert_eq!(
            decode(&v),
            Err(Error::MissingField { field: attr.into() }),
            "{attr}"
        );
    }
}

#[test]
fn wrong_type_for_priority_names_data_priority() {
    let mut v = created();
    v["data"]["priority"] = json!(5);
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "data.priority"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid value for `data.priority`: invalid type: integer `5`, expected one of \"low\", \"medium\", \"high\", \"urgent\""
    );
}

#[test]
fn unknown_priority_word_names_the_allowed_values() {
    let mut v = created();
    v["data"]["priority"] = json!("soon");
    assert_eq!(
        decode(&v).unwrap_err().to_string(),
        "invalid value for `data.priority`: unknown priority `soon` (expected one of low, medium, high, urgent)"
    );
}

#[test]
fn nested_change_error_names_the_full_path() {
    let mut v = fixture_value("task.updated.json");
    v["data"]["changes"]["priority"] = json!("soon");
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "data.changes.priority"),
        "{err:?}"
    );
    v["data"]["changes"]["priority"] = json!("low");
    v["data"]["changes"]["due_date"] = json!("tomorrow");
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "data.changes.due_date"),
        "{err:?}"
    );
}

#[test]
fn missing_changes_object_names_data_changes() {
    let mut v = fixture_value("task.updated.json");
    v["data"].as_object_mut().expect("data").remove("changes");
    assert_eq!(
        decode(&v),
        Err(Error::MissingField {
            field: "data.changes".into()
        })
    );
}

#[test]
fn error_in_a_tag_names_its_index() {
    let mut v = created();
    v["data"]["tags"] = json!(["ok", 7]);
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "data.tags[1]"),
        "{err:?}"
    );
}

#[test]
fn error_in_an_extra_task_field_names_its_path() {
    let mut v = created();
    v["data"]["series_index"] = json!("first");
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field == "data.series_index"),
        "{err:?}"
    );
    let mut v = created();
    v["data"]["reminder_leads"] = json!([60, "soon"]);
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidField { field, .. } if field.starts_with("data.reminder_leads")),
        "{err:?}"
    );
}

#[test]
fn bad_envelope_attributes_say_what_was_expected() {
    let mut v = created();
    v["id"] = json!("uuid-v4");
    let err = decode(&v).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid value for `id`: expected a UUID"),
        "{err}"
    );

    let mut v = created();
    v["time"] = json!("yesterday");
    let err = decode(&v).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid value for `time`: expected an RFC 3339 timestamp"),
        "{err}"
    );

    let mut v = created();
    v["source"] = json!(42);
    assert_eq!(
        decode(&v).unwrap_err().to_string(),
        "invalid value for `source`: expected a string, found a number"
    );

    let mut v = created();
    v["data"] = json!("text");
    assert_eq!(
        decode(&v).unwrap_err().to_string(),
        "invalid value for `data`: expected an object, found a string"
    );
}

#[test]
fn other_specversions_are_rejected() {
    let mut v = created();
    v["specversion"] = json!("0.3");
    let err = decode(&v).unwrap_err();
    assert_eq!(err, Error::UnsupportedSpecVersion("0.3".into()));
    assert_eq!(
        err.to_string(),
        "unsupported CloudEvents specversion `0.3` (expected 1.0)"
    );
}

#[test]
fn missing_specversion_means_1_0() {
    let v = created();
    assert!(v.get("specversion").is_none());
    let event = decode(&v).expect("decodes");
    let written: Value = serde_json::from_str(&event.to_json()).expect("JSON");
    assert_eq!(written["specversion"], "1.0");
    let mut explicit = v.clone();
    explicit["specversion"] = json!("1.0");
    assert_eq!(decode(&explicit), Ok(event));
}

#[test]
fn unknown_fields_are_ignored() {
    let base = decode(&created()).expect("decodes");
    let mut v = created();
    v["data"]["colour"] = json!("green");
    v["data"]["nested"] = json!({"a": [1, 2]});
    v["Not-An-Attribute"] = json!(1);
    let event = decode(&v).expect("unknown fields are tolerated");
    assert_eq!(event, base);
    let EventData::TaskCreated(d) = event.data() else {
        panic!("{:?}", event.data());
    };
    assert_eq!(d.priority, Priority::High);
}

#[test]
fn extension_attributes_are_kept_and_re_emitted() {
    let mut v = created();
    v["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    v["tracestate"] = json!("rojo=00f067aa0ba902b7");
    v["attempt"] = json!(2);
    let event = decode(&v).expect("decodes");
    assert_eq!(
        event.extension_str("traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(event.extensions().get("attempt"), Some(&json!(2)));
    let written: Value = serde_json::from_str(&event.to_json()).expect("JSON");
    assert_eq!(written["traceparent"], v["traceparent"]);
    assert_eq!(written["tracestate"], v["tracestate"]);
    assert_eq!(written["attempt"], 2);
}

#[test]
fn binary_mode_data_errors_name_the_data_path() {
    let headers = vec![
        ("content-type".to_owned(), b"application/json".to_vec()),
        ("ce_specversion".to_owned(), b"1.0".to_vec()),
        (
            "ce_id".to_owned(),
            b"550e8400-e29b-41d4-a716-446655440000".to_vec(),
        ),
        ("ce_source".to_owned(), b"todo-backend".to_vec()),
        ("ce_type".to_owned(), b"task.deleted".to_vec()),
        ("ce_time".to_owned(), b"2026-02-09T17:00:00Z".to_vec()),
    ];
    let err = todo_events::binding::decode(
        &headers,
        br#"{"task_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "missing field `data.user_id`");
    let err = todo_events::binding::decode(&headers, b"{").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Syntax {
                line: 1,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let mut xml = headers.clone();
    xml[0].1 = b"application/xml".to_vec();
    assert_eq!(
        todo_events::binding::decode(&xml, b"<x/>")
            .unwrap_err()
            .to_string(),
        "invalid CloudEvents Kafka message: unsupported data content type `application/xml` (expected application/json)"
    );
}
