//! The shipped JSON Schemas accept every fixture and every event the encoder writes, and reject invalid ones.

mod common;

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::Validator;
use proptest::prelude::*;
use serde_json::{Value, json};
use todo_events::{Event, EventType, schema};

use common::{fixture_value, structured_fixtures};

/// Built once per test binary: compiling the schemas dominates a single validation.
static VALIDATORS: LazyLock<HashMap<EventType, Validator>> = LazyLock::new(build_validators);

fn validators() -> &'static HashMap<EventType, Validator> {
    &VALIDATORS
}

fn build_validators() -> HashMap<EventType, Validator> {
    EventType::ALL
        .into_iter()
        .map(|ty| {
            let schema: Value =
                serde_json::from_str(schema::json_schema(ty)).expect("schema is JSON");
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{ty}: invalid schema: {e}"));
            (ty, validator)
        })
        .collect()
}

/// Validates `instance` against the schema of its own `type`, returning the error messages.
fn check(
    validators: &HashMap<EventType, Validator>,
    ty: EventType,
    instance: &Value,
) -> Vec<String> {
    validators[&ty]
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn schemas_are_valid_draft_2020_12_and_match_the_files() {
    let meta = validators();
    assert_eq!(meta.len(), EventType::ALL.len());
    for ty in EventType::ALL {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(schema::file_name(ty));
        let on_disk = std::fs::read_to_string(&path).expect("schema file");
        assert_eq!(on_disk, schema::json_schema(ty), "{ty}");
        let v: Value = serde_json::from_str(&on_disk).expect("JSON");
        assert_eq!(v["properties"]["type"]["const"], ty.as_str());
        assert!(jsonschema::meta::is_valid(&v), "{ty} is not a valid schema");
    }
}

#[test]
fn every_fixture_is_valid_against_its_schema() {
    let validators = validators();
    for (name, bytes) in structured_fixtures() {
        let v: Value = serde_json::from_slice(&bytes).expect("JSON");
        let ty: EventType = v["type"]
            .as_str()
            .expect("type")
            .parse()
            .expect("known type");
        assert_eq!(check(validators, ty, &v), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn every_re_encoded_fixture_is_valid_against_its_schema() {
    let validators = validators();
    for (name, bytes) in structured_fixtures() {
        let event = Event::from_slice(&bytes).expect("decodes");
        let v: Value = serde_json::from_str(&event.to_json()).expect("JSON");
        assert_eq!(
            check(validators, event.event_type(), &v),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

#[test]
fn a_fixture_is_invalid_against_the_other_types_schemas() {
    let validators = validators();
    let v = fixture_value("task.created.json");
    for ty in EventType::ALL
        .into_iter()
        .filter(|t| *t != EventType::TaskCreated)
    {
        assert!(
            !validators[&ty].is_valid(&v),
            "task.created passed the {ty} schema"
        );
    }
}

/// Applies `edit` to a fixture and returns the schema errors.
fn errors_after(fixture: &str, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let validators = validators();
    let mut v = fixture_value(fixture);
    let ty: EventType = v["type"]
        .as_str()
        .expect("type")
        .parse()
        .expect("known type");
    edit(&mut v);
    check(validators, ty, &v)
}

#[test]
fn unknown_priority_fails_the_schema() {
    let errors = errors_after("task.created.json", |v| {
        v["data"]["priority"] = json!("soon")
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with("at /data/priority"), "{errors:?}");
    let errors = errors_after("task.updated.json", |v| {
        v["data"]["changes"]["priority"] = json!("soon")
    });
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("at /data/changes/priority")),
        "{errors:?}"
    );
}

#[test]
fn missing_user_id_fails_the_schema() {
    for fixture in [
        "task.created.json",
        "task.updated.json",
        "task.completed.json",
        "task.deleted.json",
        "reminder.triggered.json",
    ] {
        let errors = errors_after(fixture, |v| {
            v["data"].as_object_mut().expect("data").remove("user_id");
        });
        assert_eq!(errors.len(), 1, "{fixture}: {errors:?}");
        assert!(
            errors[0].contains("\"user_id\" is a required property"),
            "{errors:?}"
        );
    }
}

#[test]
fn malformed_values_fail_the_schema() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 9] = [
        ("placeholder id", |v| v["id"] = json!("uuid-v4")),
        ("no time", |v| {
            v.as_object_mut().expect("object").remove("time");
        }),
        ("bad time", |v| v["time"] = json!("yesterday")),
        ("bad due date", |v| {
            v["data"]["due_date"] = json!("10/02/2026")
        }),
        ("empty title", |v| v["data"]["title"] = json!("")),
        ("tags not strings", |v| v["data"]["tags"] = json!([1])),
        ("other specversion", |v| v["specversion"] = json!("0.3")),
        ("binary data", |v| v["data_base64"] = json!("AAAA")),
        ("object extension", |v| v["trace"] = json!({"a": 1})),
    ];
    for (what, edit) in cases {
        let errors = errors_after("task.created.json", edit);
        assert!(!errors.is_empty(), "{what} passed the schema");
    }
}

#[test]
fn extension_attributes_and_unknown_payload_fields_pass_the_schema() {
    let errors = errors_after("task.created.json", |v| {
        v["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        v["attempt"] = json!(3);
        v["data"]["colour"] = json!("green");
    });
    assert_eq!(errors, Vec::<String>::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn generated_events_are_valid_against_their_schema(event in common::event()) {
        let validators = validators();
        let v: Value = serde_json::from_str(&event.to_json()).expect("JSON");
        prop_assert_eq!(check(validators, event.event_type(), &v), Vec::<String>::new());
    }

    #[test]
    fn generated_events_with_scalar_extensions_are_valid(
        event in common::event(),
        name in common::extension_name(),
        value in common::scalar_extension_value(),
    ) {
        let validators = validators();
        let event = event.with_extension(name, value);
        let v: Value = serde_json::from_str(&event.to_json()).expect("JSON");
        prop_assert_eq!(check(validators, event.event_type(), &v), Vec::<String>::new());
    }
}
