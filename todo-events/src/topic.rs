//! The topic registry: the design's topic tables as data.

use std::time::Duration;

/// Where the topics are deployed: decides the replication factor.
///
/// ```
/// use todo_events::Profile;
/// assert_eq!("Cloud".parse::<Profile>(), Ok(Profile::Cloud));
/// assert_eq!(Profile::Local.to_string(), "local");
/// assert!("prod".parse::<Profile>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// One broker (Minikube, a laptop, tests): replication factor 1.
    Local,
    /// A managed cluster such as Redpanda Cloud: replication factor 3.
    Cloud,
}

impl Profile {
    /// `local` or `cloud`.
    ///
    /// ```
    /// assert_eq!(todo_events::Profile::Cloud.as_str(), "cloud");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Local => "local",
            Profile::Cloud => "cloud",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Profile::Local),
            "cloud" => Ok(Profile::Cloud),
            other => Err(format!(
                "unknown profile `{other}` (expected local or cloud)"
            )),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the three primary topics that events are routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// `todo.task-events`: created, completed, deleted.
    TaskEvents,
    /// `todo.task-updates`: field-level updates.
    TaskUpdates,
    /// `todo.reminders`: reminder triggers.
    Reminders,
}

impl Topic {
    /// The three primary topics.
    ///
    /// ```
    /// let names: Vec<_> = todo_events::Topic::ALL.iter().map(|t| t.name()).collect();
    /// assert_eq!(names, ["todo.task-events", "todo.task-updates", "todo.reminders"]);
    /// ```
    pub const ALL: [Topic; 3] = [Topic::TaskEvents, Topic::TaskUpdates, Topic::Reminders];

    /// The topic's name, such as `todo.task-events`.
    ///
    /// ```
    /// assert_eq!(todo_events::Topic::TaskUpdates.name(), "todo.task-updates");
    /// ```
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The name of the topic's dead-letter topic, such as `todo.task-events.dlq`.
    ///
    /// ```
    /// assert_eq!(todo_events::Topic::Reminders.dlq_name(), "todo.reminders.dlq");
    /// ```
    pub fn dlq_name(self) -> &'static str {
        self.spec().dlq.unwrap_or_default()
    }

    /// The registry entry of this topic.
    ///
    /// ```
    /// let spec = todo_events::Topic::TaskEvents.spec();
    /// assert_eq!((spec.partitions, spec.retention_days), (3, 7));
    /// ```
    pub fn spec(self) -> &'static TopicSpec {
        let i = match self {
            Topic::TaskEvents => 0,
            Topic::TaskUpdates => 1,
            Topic::Reminders => 2,
        };
        &TOPICS[i]
    }

    /// The primary topic with this name, if any.
    ///
    /// ```
    /// use todo_events::Topic;
    /// assert_eq!(Topic::from_name("todo.reminders"), Some(Topic::Reminders));
    /// assert_eq!(Topic::from_name("todo.reminders.dlq"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One topic of the registry.
///
/// ```
/// use todo_events::{Profile, TOPICS};
/// for spec in &TOPICS {
///     println!("{} partitions={} rf={} retention.ms={}", spec.name, spec.partitions,
///         spec.replication(Profile::Cloud), spec.retention_ms());
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: &'static str,
    /// Number of partitions.
    pub partitions: u32,
    /// Retention in days.
    pub retention_days: u32,
    /// The dead-letter topic of a primary topic; `None` for a dead-letter topic itself.
    pub dlq: Option<&'static str>,
    /// What the topic carries, as the design states it.
    pub purpose: &'static str,
}

impl TopicSpec {
    /// Replication factor for a deployment profile (local 1, cloud 3).
    ///
    /// ```
    /// use todo_events::{Profile, Topic};
    /// assert_eq!(Topic::TaskEvents.spec().replication(Profile::Cloud), 3);
    /// ```
    pub fn replication(&self, profile: Profile) -> u16 {
        match profile {
            Profile::Local => 1,
            Profile::Cloud => 3,
        }
    }

    /// Retention as a duration.
    ///
    /// ```
    /// let spec = todo_events::Topic::Reminders.spec();
    /// assert_eq!(spec.retention(), std::time::Duration::from_secs(3 * 86_400));
    /// ```
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    /// Retention in milliseconds, the unit of Kafka's `retention.ms`.
    ///
    /// ```
    /// assert_eq!(todo_events::Topic::TaskEvents.spec().retention_ms(), 604_800_000);
    /// ```
    pub fn retention_ms(&self) -> u64 {
        u64::from(self.retention_days) * 86_400_000
    }

    /// Whether this is a dead-letter topic.
    ///
    /// ```
    /// use todo_events::TOPICS;
    /// assert_eq!(TOPICS.iter().filter(|t| t.is_dlq()).count(), 3);
    /// ```
    pub fn is_dlq(&self) -> bool {
        self.dlq.is_none()
    }

    /// The registry entry with this name, if any.
    ///
    /// ```
    /// let spec = todo_events::TopicSpec::by_name("todo.reminders.dlq").unwrap();
    /// assert_eq!((spec.partitions, spec.retention_days), (1, 30));
    /// ```
    pub fn by_name(name: &str) -> Option<&'static TopicSpec> {
        TOPICS.iter().find(|t| t.name == name)
    }
}

/// The six topics of the design: three primary topics, then their dead-letter topics.
///
/// ```
/// assert_eq!(todo_events::TOPICS[3].name, "todo.task-events.dlq");
/// ```
pub const TOPICS: [TopicSpec; 6] = [
    TopicSpec {
        name: "todo.task-events",
        partitions: 3,
        retention_days: 7,
        dlq: Some("todo.task-events.dlq"),
        purpose: "Task lifecycle events: created, completed, deleted",
    },
    TopicSpec {
        name: "todo.task-updates",
        partitions: 3,
        retention_days: 7,
        dlq: Some("todo.task-updates.dlq"),
        purpose: "Task field-level updates",
    },
    TopicSpec {
        name: "todo.reminders",
        partitions: 1,
        retention_days: 3,
        dlq: Some("todo.reminders.dlq"),
        purpose: "Reminder trigger events",
    },
    TopicSpec {
        name: "todo.task-events.dlq",
        partitions: 1,
        retention_days: 30,
        dlq: None,
        purpose: "Unprocessable task events after retry exhaustion",
    },
    TopicSpec {
        name: "todo.task-updates.dlq",
        partitions: 1,
        retention_days: 30,
        dlq: None,
        purpose: "Unprocessable task update events",
    },
    TopicSpec {
        name: "todo.reminders.dlq",
        partitions: 1,
        retention_days: 30,
        dlq: None,
        purpose: "Unprocessable reminder events",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_primary_topic_has_a_registered_dead_letter_topic() {
        for t in Topic::ALL {
            let dlq = TopicSpec::by_name(t.dlq_name()).expect("dlq registered");
            assert!(dlq.is_dlq());
            assert_eq!(t.dlq_name(), format!("{}.dlq", t.name()));
        }
    }

    #[test]
    fn registry_matches_the_design_tables() {
        let rows: Vec<_> = TOPICS
            .iter()
            .map(|t| (t.name, t.partitions, t.retention_days))
            .collect();
        assert_eq!(
            rows,
            [
                ("todo.task-events", 3, 7),
                ("todo.task-updates", 3, 7),
                ("todo.reminders", 1, 3),
                ("todo.task-events.dlq", 1, 30),
                ("todo.task-updates.dlq", 1, 30),
                ("todo.reminders.dlq", 1, 30),
            ]
        );
        assert!(
            TOPICS
                .iter()
                .all(|t| t.replication(Profile::Local) == 1 && t.replication(Profile::Cloud) == 3)
        );
    }
}
