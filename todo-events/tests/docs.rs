//! docs/events.md and docs/asyncapi.yaml agree with the topic registry and the event types.

use std::path::PathBuf;

use serde_json::Value;
use todo_events::{Event, EventType, Profile, TOPICS, Topic, schema};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn asyncapi() -> Value {
    serde_yaml::from_str(&read("docs/asyncapi.yaml")).expect("docs/asyncapi.yaml is YAML")
}

/// The topic table of docs/events.md as the registry says it must read.
fn expected_topic_table() -> String {
    let mut out = String::from(
        "| Topic | Partitions | Replication (local / cloud) | Retention | Dead-letter topic | Purpose |\n\
         |-------|-----------:|-----------------------------|-----------|-------------------|---------|\n",
    );
    for t in &TOPICS {
        out.push_str(&format!(
            "| `{}` | {} | {} / {} | {} days | {} | {} |\n",
            t.name,
            t.partitions,
            t.replication(Profile::Local),
            t.replication(Profile::Cloud),
            t.retention_days,
            t.dlq.map_or("-".to_owned(), |d| format!("`{d}`")),
            t.purpose,
        ));
    }
    out
}

#[test]
fn docs_topic_table_matches_the_registry() {
    let doc = read("docs/events.md");
    let start = doc.find("<!-- topics:begin").expect("topics:begin marker");
    let start = start + doc[start..].find("-->\n").expect("end of begin marker") + 4;
    let end = doc.find("<!-- topics:end -->").expect("topics:end marker");
    let expected = expected_topic_table();
    assert_eq!(
        &doc[start..end],
        expected,
        "docs/events.md's topic table disagrees with todo_events::TOPICS; it should read:\n{expected}"
    );
}

#[test]
fn docs_json_examples_decode_and_cover_every_event_type() {
    let doc = read("docs/events.md");
    let mut seen = Vec::new();
    for block in doc.split("```json\n").skip(1) {
        let json = block.split("```").next().expect("closed code block");
        let event = Event::from_json(json).unwrap_or_else(|e| panic!("{e} in example:\n{json}"));
        let reencoded: Value = serde_json::from_str(&event.to_json()).expect("JSON");
        let example: Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(
            reencoded, example,
            "the example is not what the encoder writes"
        );
        seen.push(event.event_type());
    }
    for ty in EventType::ALL {
        assert!(
            seen.contains(&ty),
            "docs/events.md has no JSON example of {ty}"
        );
        assert!(
            doc.contains(&format!("### `{ty}`")),
            "docs/events.md has no section for {ty}"
        );
    }
}

#[test]
fn docs_name_every_consumer_group() {
    let doc = read("docs/events.md");
    let spec = asyncapi();
    let mut groups: Vec<&str> = spec["operations"]
        .as_object()
        .expect("operations")
        .values()
        .filter_map(|op| op["bindings"]["kafka"]["groupId"]["enum"][0].as_str())
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(
        groups,
        [
            "audit-consumer",
            "recurrence-consumer",
            "reminder-consumer",
            "reminder-suppression"
        ]
    );
    for g in groups {
        assert!(
            doc.contains(&format!("| `{g}` |")),
            "{g} missing from the consumer group table"
        );
    }
}

fn channel_of<'a>(spec: &'a Value, topic: &str) -> (&'a str, &'a Value) {
    let matches: Vec<_> = spec["channels"]
        .as_object()
        .expect("channels")
        .iter()
        .filter(|(_, c)| c["address"] == topic)
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "exactly one channel must have address {topic}"
    );
    (matches[0].0.as_str(), matches[0].1)
}

/// Follows a local `$ref` such as `#/components/messages/taskCreated`.
fn resolve<'a>(spec: &'a Value, reference: &Value) -> &'a Value {
    let r = reference["$ref"].as_str().expect("a $ref");
    let pointer = r.strip_prefix('#').expect("a local $ref");
    spec.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {r}"))
}

/// The event types a channel carries, by the `name` of its messages.
fn channel_event_types(spec: &Value, channel: &Value) -> Vec<EventType> {
    let mut types: Vec<EventType> = channel["messages"]
        .as_object()
        .expect("channel messages")
        .values()
        .map(|m| {
            resolve(spec, m)["name"]
                .as_str()
                .expect("message name")
                .parse()
                .expect("message name is an event type")
        })
        .collect();
    types.sort();
    types
}

#[test]
fn asyncapi_channels_match_the_registry() {
    let spec = asyncapi();
    assert_eq!(spec["asyncapi"], "3.0.0");
    assert_eq!(
        spec["channels"].as_object().expect("channels").len(),
        TOPICS.len()
    );
    for t in &TOPICS {
        let (_, channel) = channel_of(&spec, t.name);
        let kafka = &channel["bindings"]["kafka"];
        assert_eq!(kafka["topic"], t.name);
        assert_eq!(kafka["partitions"], t.partitions, "{}", t.name);
        assert_eq!(
            kafka["replicas"],
            t.replication(Profile::Cloud),
            "{}",
            t.name
        );
        assert_eq!(
            kafka["topicConfiguration"]["retention.ms"],
            t.retention_ms(),
            "{}",
            t.name
        );
        assert_eq!(
            channel["x-replication"]["local"],
            t.replication(Profile::Local),
            "{}",
            t.name
        );
        assert_eq!(
            channel["x-replication"]["cloud"],
            t.replication(Profile::Cloud),
            "{}",
            t.name
        );
    }
}

#[test]
fn asyncapi_puts_every_event_type_on_its_topic_and_its_dead_letter_topic() {
    let spec = asyncapi();
    for topic in Topic::ALL {
        let mut expected: Vec<EventType> = EventType::ALL
            .into_iter()
            .filter(|ty| ty.topic() == topic)
            .collect();
        expected.sort();
        for name in [topic.name(), topic.dlq_name()] {
            let (_, channel) = channel_of(&spec, name);
            assert_eq!(channel_event_types(&spec, channel), expected, "{name}");
        }
    }
}

#[test]
fn asyncapi_messages_use_the_crate_schemas() {
    let spec = asyncapi();
    let messages = spec["components"]["messages"]
        .as_object()
        .expect("messages");
    assert_eq!(messages.len(), EventType::ALL.len());
    for ty in EventType::ALL {
        let message = messages
            .values()
            .find(|m| m["name"] == ty.as_str())
            .unwrap_or_else(|| panic!("no message named {ty}"));
        let r = message["payload"]["schema"]["$ref"]
            .as_str()
            .expect("payload schema $ref");
        assert_eq!(
            r,
            format!("../todo-events/schemas/{}", schema::file_name(ty))
        );
        let on_disk =
            std::fs::read_to_string(repo_file("docs").join(r)).expect("schema file exists");
        assert_eq!(on_disk, schema::json_schema(ty));
    }
}

#[test]
fn asyncapi_operations_reference_messages_of_their_channel() {
    let spec = asyncapi();
    let ops = spec["operations"].as_object().expect("operations");
    assert!(!ops.is_empty());
    for (name, op) in ops {
        let channel_ref = op["channel"]["$ref"].as_str().expect("channel $ref");
        resolve(&spec, &op["channel"]);
        for m in op["messages"].as_array().expect("operation messages") {
            let r = m["$ref"].as_str().expect("message $ref");
            assert!(
                r.starts_with(&format!("{channel_ref}/messages/")),
                "{name}: {r}"
            );
            resolve(&spec, m);
        }
    }
    // Every primary topic has a producer.
    for topic in Topic::ALL {
        let (id, _) = channel_of(&spec, topic.name());
        assert!(
            ops.values()
                .any(|op| op["action"] == "send"
                    && op["channel"]["$ref"] == format!("#/channels/{id}")),
            "nobody sends to {topic}"
        );
    }
}
