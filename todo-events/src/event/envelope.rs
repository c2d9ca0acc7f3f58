//! The one-pass decoder of structured-mode events.
//!
//! [`Event::from_slice`] tries this decoder first. It reads the envelope's attributes straight into their types
//! and the payload straight into its struct, where the general decoder parses the whole event into a
//! `serde_json::Value` (a map, a string per key and per value) and then converts that; a consumer decodes every
//! event it reads, so this is the cost the pipeline pays per event and per consumer.
//!
//! It takes only the common shape, the one this crate writes: attribute names and the text attributes without
//! escapes, `type` before `data`, no attribute twice. On anything else it gives up, without an error of its own, and
//! the general decoder decides, so errors keep their field paths and messages and every input decodes to the same
//! event either way (a property test feeds both decoders the fixtures, mutated).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use uuid::Uuid;

use super::{
    Event, EventData, EventType, SPEC_VERSION, is_extension_name, is_extension_value,
    is_json_content_type,
};
use crate::payload::{ReminderTriggered, TaskCompleted, TaskCreated, TaskDeleted, TaskUpdated};

/// The event in `bytes`, or `None` where the general decoder must decide.
pub(crate) fn decode(bytes: &[u8]) -> Option<Event> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let event = (&mut de).deserialize_map(Envelope).ok()?;
    de.end().ok()?;
    Some(event)
}

/// Giving up: the error's text is never shown.
fn give_up<E: serde::de::Error>() -> E {
    E::custom("left to the general decoder")
}

struct Envelope;

impl<'de> Visitor<'de> for Envelope {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a structured CloudEvent")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut ty: Option<EventType> = None;
        let mut id = None;
        let mut source = None;
        let mut time = None;
        let mut subject = None;
        let mut data = None;
        let mut extensions = BTreeMap::new();
        // Every name seen: the general decoder keeps the last of repeated members, which this one does not try.
        let mut seen: Vec<&'de str> = Vec::with_capacity(12);
        // A name with escapes is not a borrowed `&str`: the general decoder reads it.
        while let Some(name) = map.next_key::<&'de str>()? {
            if seen.contains(&name) {
                return Err(give_up());
            }
            seen.push(name);
            match name {
                "specversion" => match map.next_value::<Option<&str>>()? {
                    None => {}
                    Some(v) if v == SPEC_VERSION => {}
                    Some(_) => return Err(give_up()),
                },
                "type" => {
                    let text: &str = map.next_value()?;
                    ty = Some(text.parse::<EventType>().map_err(|_| give_up())?);
                }
                "id" => {
                    let text: &str = map.next_value()?;
                    id = Some(Uuid::parse_str(text).map_err(|_| give_up())?);
                }
                "source" => {
                    let text: String = map.next_value()?;
                    if text.is_empty() {
                        return Err(give_up());
                    }
                    source = Some(text);
                }
                "time" => {
                    let text: &str = map.next_value()?;
                    let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| give_up())?;
                    time = Some(parsed.with_timezone(&Utc));
                }
                "datacontenttype" => match map.next_value::<Option<&str>>()? {
                    None => {}
                    Some(ct) if is_json_content_type(ct) => {}
                    Some(_) => return Err(give_up()),
                },
                "subject" => subject = map.next_value::<Option<String>>()?,
                "data" => {
                    let ty = ty.ok_or_else(give_up)?;
                    data = Some(map.next_value_seed(Data(ty))?);
                }
                "dataschema" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "data_base64" => return Err(give_up()),
                _ => {
                    let value: Value = map.next_value()?;
                    if is_extension_name(name) && is_extension_value(&value) {
                        extensions.insert(name.to_owned(), value);
                    }
                }
            }
        }
        match (id, source, time, data) {
            (Some(id), Some(source), Some(time), Some(data)) => Ok(Event {
                id,
                source,
                time,
                subject,
                data,
                extensions,
            }),
            _ => Err(give_up()),
        }
    }
}

/// The payload of an event of type `.0`, read from a JSON object only (a struct would also read from an array).
struct Data(EventType);

impl<'de> DeserializeSeed<'de> for Data {
    type Value = EventData;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EventData, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Data {
    type Value = EventData;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the data of a {} event", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EventData, A::Error> {
        let object = MapAccessDeserializer::new(map);
        Ok(match self.0 {
            EventType::TaskCreated => EventData::TaskCreated(TaskCreated::deserialize(object)?),
            EventType::TaskUpdated => EventData::TaskUpdated(TaskUpdated::deserialize(object)?),
            EventType::TaskCompleted => {
                EventData::TaskCompleted(TaskCompleted::deserialize(object)?)
            }
            EventType::TaskDeleted => EventData::TaskDeleted(TaskDeleted::deserialize(object)?),
            EventType::ReminderTriggered => {
                EventData::ReminderTriggered(ReminderTriggered::deserialize(object)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The design's examples and the richer fixtures, as stored (attributes before `data`).
    const FIXTURES: [&[u8]; 8] = [
        include_bytes!("../../tests/fixtures/task.created.json"),
        include_bytes!("../../tests/fixtures/task.created.extended.json"),
        include_bytes!("../../tests/fixtures/task.updated.json"),
        include_bytes!("../../tests/fixtures/task.updated.cleared.json"),
        include_bytes!("../../tests/fixtures/task.completed.json"),
        include_bytes!("../../tests/fixtures/task.deleted.json"),
        include_bytes!("../../tests/fixtures/reminder.triggered.json"),
        include_bytes!("../../tests/fixtures/reminder.triggered.extended.json"),
    ];

    fn general(bytes: &[u8]) -> Event {
        let value: Value = serde_json::from_slice(bytes).expect("JSON");
        Event::from_value(value).expect("a valid event")
    }

    #[test]
    fn reads_every_fixture_and_what_the_encoder_writes_as_the_general_decoder_does() {
        for bytes in FIXTURES {
            let event = general(bytes);
            assert_eq!(decode(bytes).as_ref(), Some(&event));
            assert_eq!(decode(&event.to_vec()), Some(event));
        }
    }

    #[test]
    fn leaves_every_other_shape_to_the_general_decoder() {
        let created = std::str::from_utf8(FIXTURES[1]).expect("UTF-8");
        let data_at = created.find(r#""data""#).expect("data member");
        let (attributes, data) = created.split_at(data_at);
        let data = data.trim_end().trim_end_matches('}').trim_end();
        let shapes = [
            // `data` before `type`: its type is not known when it is read.
            format!(
                "{{{data},{}}}",
                &attributes[1..].trim_end().trim_end_matches(',')
            ),
            // A name with an escape.
            created.replacen(r#""source""#, r#""sourc\u0065""#, 1),
            // A text attribute with an escape.
            created.replacen(
                r#""type": "task.created""#,
                r#""type": "task\u002ecreated""#,
                1,
            ),
            // A member twice.
            created.replacen(r#""subject""#, r#""traceparent": "x", "subject""#, 1),
        ];
        for shape in shapes {
            assert_eq!(decode(shape.as_bytes()), None, "{shape}");
            // The general decoder reads each of them, as the same event.
            assert_eq!(
                Event::from_slice(shape.as_bytes()).as_ref(),
                Ok(&general(shape.as_bytes())),
                "{shape}"
            );
        }
        // `data` as an array: the payload struct would read its fields in order from one, the contract does not.
        let deleted = std::str::from_utf8(FIXTURES[5]).expect("UTF-8");
        let attributes = &deleted[..deleted.find(r#""data""#).expect("data member")];
        let array = format!(
            r#"{attributes}"data": ["3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "7c9e6679-7425-40de-944b-e07fc1f90ae7", "Buy groceries", "2026-02-09T17:00:00Z"]}}"#
        );
        let payload = serde_json::from_str::<TaskDeleted>(
            &array[array.find('[').unwrap_or(0)..array.len() - 1],
        );
        assert!(payload.is_ok(), "{payload:?}");
        assert_eq!(decode(array.as_bytes()), None);
        assert!(Event::from_slice(array.as_bytes()).is_err());
    }
}
