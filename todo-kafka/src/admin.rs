//! Topic administration from the [`todo_events::TOPICS`] registry, with drift detection.

use todo_events::{Profile, TOPICS};

use crate::broker::TopicAdmin;
use crate::{Error, Result};

/// A topic to create: name, partitions, replication factor and `retention.ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// `retention.ms`; `None` keeps the broker default.
    pub retention_ms: Option<u64>,
}

impl TopicConfig {
    /// A topic with replication 1 and the broker's default retention (tests, tools).
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicConfig {
            name: name.into(),
            partitions,
            replication: 1,
            retention_ms: None,
        }
    }

    /// Sets `retention.ms`.
    pub fn with_retention_ms(mut self, retention_ms: u64) -> Self {
        self.retention_ms = Some(retention_ms);
        self
    }
}

/// The registry's six topics for a profile: partitions and `retention.ms` from the design, replication 1 (local)
/// or 3 (cloud).
pub fn registry_topics(profile: Profile) -> Vec<TopicConfig> {
    TOPICS
        .iter()
        .map(|spec| TopicConfig {
            name: spec.name.to_owned(),
            partitions: spec.partitions as i32,
            replication: i32::from(spec.replication(profile)),
            retention_ms: Some(spec.retention_ms()),
        })
        .collect()
}

/// What a broker says about an existing topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (of partition 0), when known.
    pub replication: Option<i32>,
    /// `retention.ms`, when the broker reports topic configs.
    pub retention_ms: Option<u64>,
}

/// How an existing topic differs from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The topic has fewer partitions than configured: keys map to other partitions than producers expect and
    /// consumers get less parallelism. Add partitions with the Kafka tools (this crate never does it, as it
    /// remaps keys).
    FewerPartitions {
        /// Configured.
        expected: i32,
        /// On the broker.
        actual: i32,
    },
    /// `retention.ms` differs from the configuration.
    Retention {
        /// Configured.
        expected_ms: u64,
        /// On the broker.
        actual_ms: u64,
    },
    /// The replication factor differs from the configuration.
    Replication {
        /// Configured.
        expected: i32,
        /// On the broker.
        actual: i32,
    },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::FewerPartitions { expected, actual } => {
                write!(f, "{actual} partitions, expected {expected}")
            }
            Drift::Retention {
                expected_ms,
                actual_ms,
            } => write!(f, "retention.ms {actual_ms}, expected {expected_ms}"),
            Drift::Replication { expected, actual } => {
                write!(f, "replication factor {actual}, expected {expected}")
            }
        }
    }
}

/// What [`TopicAdmin::ensure`] did with one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// The topic was missing and has been created.
    Created,
    /// The topic exists and matches (fields the broker does not report are not compared).
    Unchanged,
    /// The topic exists and differs; nothing was changed.
    Drifted(Vec<Drift>),
}

/// One line of a [`TopicReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    /// Topic name.
    pub name: String,
    /// Outcome.
    pub outcome: TopicOutcome,
    /// Whether `retention.ms` could be compared (some brokers do not answer config requests).
    pub retention_checked: bool,
}

/// The result of ensuring a set of topics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicReport {
    /// One status per topic, in the order given.
    pub topics: Vec<TopicStatus>,
}

impl TopicReport {
    /// The topics that drifted.
    pub fn drifted(&self) -> impl Iterator<Item = &TopicStatus> {
        self.topics
            .iter()
            .filter(|t| matches!(t.outcome, TopicOutcome::Drifted(_)))
    }

    /// The names of the topics created.
    pub fn created(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|t| t.outcome == TopicOutcome::Created)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The report itself when nothing drifted.
    ///
    /// # Errors
    /// [`Error::TopicDrift`] listing every drifted topic and how it differs.
    pub fn into_result(self) -> Result<Self> {
        let drifted: Vec<_> = self.drifted().cloned().collect();
        if drifted.is_empty() {
            Ok(self)
        } else {
            Err(Error::TopicDrift(drifted))
        }
    }
}

pub(crate) fn describe_drift(items: &[TopicStatus]) -> String {
    items
        .iter()
        .filter_map(|t| match &t.outcome {
            TopicOutcome::Drifted(d) => Some(format!(
                "`{}` has {}",
                t.name,
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compares an existing topic with its configuration.
pub fn drift(config: &TopicConfig, state: &TopicState) -> Vec<Drift> {
    let mut out = Vec::new();
    if state.partitions < config.partitions {
        out.push(Drift::FewerPartitions {
            expected: config.partitions,
            actual: state.partitions,
        });
    }
    if let (Some(expected_ms), Some(actual_ms)) = (config.retention_ms, state.retention_ms)
        && expected_ms != actual_ms
    {
        out.push(Drift::Retention {
            expected_ms,
            actual_ms,
        });
    }
    if let Some(actual) = state.replication
        && actual != config.replication
    {
        out.push(Drift::Replication {
            expected: config.replication,
            actual,
        });
    }
    out
}

pub(crate) async fn ensure_with<A: TopicAdmin + ?Sized>(
    admin: &A,
    topics: &[TopicConfig],
) -> Result<TopicReport> {
    let mut report = TopicReport::default();
    for config in topics {
        let (outcome, retention_checked) = match admin.describe_topic(&config.name).await? {
            None => {
                admin.create_topic(config).await?;
                (TopicOutcome::Created, true)
            }
            Some(state) => {
                let checked = config.retention_ms.is_none() || state.retention_ms.is_some();
                let d = drift(config, &state);
                if d.is_empty() {
                    (TopicOutcome::Unchanged, checked)
                } else {
                    (TopicOutcome::Drifted(d), checked)
                }
            }
        };
        report.topics.push(TopicStatus {
            name: config.name.clone(),
            outcome,
            retention_checked,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_topics_follow_the_design_tables() {
        let local = registry_topics(Profile::Local);
        assert_eq!(local.len(), 6);
        assert_eq!(local[0].name, "todo.task-events");
        assert_eq!(local[0].partitions, 3);
        assert_eq!(local[0].retention_ms, Some(7 * 86_400_000));
        assert!(local.iter().all(|t| t.replication == 1));
        assert!(
            registry_topics(Profile::Cloud)
                .iter()
                .all(|t| t.replication == 3)
        );
    }

    #[test]
    fn drift_names_fewer_partitions_and_other_retention() {
        let config = TopicConfig::new("t", 3).with_retention_ms(1000);
        let state = TopicState {
            partitions: 1,
            replication: Some(1),
            retention_ms: Some(5),
        };
        let d = drift(&config, &state);
        assert_eq!(
            d,
            vec![
                Drift::FewerPartitions {
                    expected: 3,
                    actual: 1
                },
                Drift::Retention {
                    expected_ms: 1000,
                    actual_ms: 5
                }
            ]
        );
        let more = TopicState {
            partitions: 6,
            replication: Some(1),
            retention_ms: Some(1000),
        };
        assert!(drift(&config, &more).is_empty());
        let err = TopicReport {
            topics: vec![TopicStatus {
                name: "t".into(),
                outcome: TopicOutcome::Drifted(d),
                retention_checked: true,
            }],
        }
        .into_result()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic drift: `t` has 1 partitions, expected 3 and retention.ms 5, expected 1000"
        );
    }
}
