//! Identifier newtypes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUID v7) identifier.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// Identifies a task (one instance of a series for recurring tasks).
    TaskId
);
id_type!(
    /// Identifies a user, the owner of tasks; the Kafka partition key.
    UserId
);
id_type!(
    /// Identifies a reminder.
    ReminderId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_display_and_from_str() {
        let id = TaskId::new();
        assert_eq!(id.to_string().parse::<TaskId>(), Ok(id));
        let u = Uuid::new_v4();
        assert_eq!(UserId::from_uuid(u).as_uuid(), u);
        assert!("nope".parse::<ReminderId>().is_err());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let u = Uuid::nil();
        let json = serde_json::to_string(&TaskId::from_uuid(u)).unwrap();
        assert_eq!(json, format!("\"{u}\""));
        assert_eq!(
            serde_json::from_str::<TaskId>(&json).unwrap(),
            TaskId::from_uuid(u)
        );
    }

    #[test]
    fn new_ids_are_time_ordered_versions() {
        assert_eq!(TaskId::new().as_uuid().get_version_num(), 7);
    }
}
