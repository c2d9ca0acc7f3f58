//! Property tests: the decoders never panic on arbitrary or mutated input, and every valid event round-trips
//! through structured JSON and both modes of the Kafka binding.

mod common;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use todo_events::binding::{self, Mode};
use todo_events::{Error, Event};

use common::structured_fixtures;

/// The fixtures as JSON values, the seeds of the mutation tests.
fn seeds() -> Vec<Value> {
    structured_fixtures()
        .into_iter()
        .map(|(_, b)| serde_json::from_slice(&b).expect("JSON"))
        .collect()
}

/// A JSON value of any shape, to put in place of a field.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths (as object keys from the root) of every member of `v`.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            prefix.push(k.clone());
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn parent_mut<'a>(
    root: &'a mut Value,
    path: &[String],
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let mut cur = root;
    for k in &path[..path.len() - 1] {
        cur = cur.get_mut(k)?;
    }
    cur.as_object_mut()
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Replace(Value),
    RandomString(String),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Delete),
        any_json().prop_map(Mutation::Replace),
        any::<String>().prop_map(Mutation::RandomString),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// `v` as JSON with `data` the last member of the top-level object, as the encoder writes it (the other members
/// keep their sorted order): the one-pass decoder needs `type` before `data`, and serialising a `Value` sorts the
/// members, `data` before `type`.
fn in_writer_order(v: &Value) -> Vec<u8> {
    let Value::Object(map) = v else {
        return serde_json::to_vec(v).expect("JSON");
    };
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by_key(|(k, _)| *k == "data");
    let members: Vec<String> = members
        .into_iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

/// `v` with mutation `m` applied to the member at `field` (an index into all its members' paths), written by
/// `encode`; a truncation cuts the written bytes.
fn mutated(
    mut v: Value,
    field: &Index,
    m: Mutation,
    encode: impl Fn(&Value) -> Vec<u8>,
) -> Vec<u8> {
    if let Mutation::Truncate(at) = m {
        let full = encode(&v);
        return full[..at.index(full.len())].to_vec();
    }
    let mut all = Vec::new();
    paths(&v, &mut Vec::new(), &mut all);
    let path = field.get(&all).clone();
    let parent = parent_mut(&mut v, &path).expect("path exists");
    let key = path.last().expect("non-empty path").clone();
    match m {
        Mutation::Delete => {
            parent.remove(&key);
        }
        Mutation::Replace(new) => {
            parent.insert(key, new);
        }
        Mutation::RandomString(s) => {
            parent.insert(key, Value::String(s));
        }
        Mutation::Truncate(_) => unreachable!("handled above"),
    }
    encode(&v)
}

/// `Event::from_slice` (the one-pass decoder, the general one where it gives up) decides exactly as the general
/// decoder alone (`Event::from_value` of the parsed JSON): the same event, or the same error.
fn both_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let decoded = Event::from_slice(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => prop_assert_eq!(decoded, Event::from_value(value)),
        Err(_) => prop_assert!(
            matches!(decoded, Err(Error::Syntax { .. })),
            "{:?}",
            decoded
        ),
    }
    Ok(())
}

/// Decoding must return, never panic; a decoded event must re-encode and decode to itself.
fn decodes_or_errs(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Event::from_slice(bytes) {
        Ok(event) => prop_assert_eq!(Event::from_json(&event.to_json()), Ok(event)),
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        headers in proptest::collection::vec(
            (prop_oneof![
                Just("content-type".to_owned()),
                Just("ce_specversion".to_owned()),
                Just("ce_type".to_owned()),
                Just("ce_id".to_owned()),
                "ce_[a-z]{1,8}",
            ], proptest::collection::vec(any::<u8>(), 0..40)),
            0..6,
        ),
    ) {
        decodes_or_errs(&bytes)?;
        let _ = binding::decode(&headers, &bytes);
        let _ = binding::decode(&[], &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_the_decoder(v in any_json()) {
        let bytes = serde_json::to_vec(&v).expect("JSON");
        decodes_or_errs(&bytes)?;
    }

    #[test]
    fn mutated_valid_events_decode_or_return_an_error(
        seed in any::<Index>(),
        field in any::<Index>(),
        m in mutation(),
    ) {
        let truncated = matches!(m, Mutation::Truncate(_));
        let bytes = mutated(seed.get(&seeds()).clone(), &field, m, |v| {
            serde_json::to_vec(v).expect("JSON")
        });
        if truncated {
            let result = Event::from_slice(&bytes);
            // A strict prefix of a JSON object is never a complete JSON document.
            prop_assert!(matches!(result, Err(Error::Syntax { .. })), "{:?}", result);
        }
        decodes_or_errs(&bytes)?;
        let _ = binding::decode(&[], &bytes);
    }

    #[test]
    fn both_decoders_agree_on_mutated_events_in_the_writers_order(
        seed in any::<Index>(),
        field in any::<Index>(),
        m in mutation(),
        event in common::event(),
    ) {
        // Half the cases start from a generated event, with its extensions and optional fields.
        let v = if field.index(2) == 0 {
            serde_json::to_value(&event).expect("serialises")
        } else {
            seed.get(&seeds()).clone()
        };
        let bytes = mutated(v, &field, m, in_writer_order);
        both_decoders_agree(&bytes)?;
    }

    #[test]
    fn both_decoders_agree_on_arbitrary_json(v in any_json()) {
        both_decoders_agree(&in_writer_order(&v))?;
        both_decoders_agree(&serde_json::to_vec(&v).expect("JSON"))?;
    }

    #[test]
    fn mutated_binary_records_decode_or_return_an_error(
        event in common::event(),
        drop in any::<Index>(),
        replace in any::<Index>(),
        junk in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut record = binding::encode(&event, Mode::Binary);
        let i = replace.index(record.headers.len());
        record.headers[i].1 = junk;
        let j = drop.index(record.headers.len());
        record.headers.remove(j);
        if let Ok(decoded) = binding::decode_record(&record) {
            prop_assert_eq!(binding::decode_record(&binding::encode(&decoded, Mode::Binary)), Ok(decoded));
        }
    }

    #[test]
    fn valid_events_round_trip_through_structured_json(event in common::event()) {
        prop_assert_eq!(Event::from_json(&event.to_json()), Ok(event.clone()));
        prop_assert_eq!(Event::from_slice(&event.to_vec()), Ok(event.clone()));
        let value = serde_json::to_value(&event).expect("serialises");
        prop_assert_eq!(Event::from_value(value), Ok(event));
    }

    #[test]
    fn valid_events_round_trip_through_both_binding_modes(event in common::event()) {
        for mode in [Mode::Structured, Mode::Binary] {
            let record = binding::encode(&event, mode);
            let key = event.partition_key().into_bytes();
            prop_assert_eq!(record.key.clone(), Some(key));
            prop_assert_eq!(binding::decode_record(&record), Ok(event.clone()));
        }
    }

    #[test]
    fn scalar_extensions_round_trip_through_structured_json(
        event in common::event(),
        name in common::extension_name(),
        value in common::scalar_extension_value(),
    ) {
        let event = event.with_extension(name.clone(), value.clone());
        let decoded = Event::from_json(&event.to_json());
        let kept = decoded.as_ref().ok().and_then(|e| e.extensions().get(&name).cloned());
        prop_assert_eq!(kept, Some(value));
        prop_assert_eq!(decoded, Ok(event));
    }
}
