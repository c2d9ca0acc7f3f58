//! Broker abstraction of the todo pipeline.
//!
//! Publisher and subscriber traits over transport records, a `KafkaBroker` over rdkafka, an in-memory broker with
//! the same semantics, topic administration from the [`todo_events::TOPICS`] registry, and a consumer runtime with
//! per-partition ordering, retries, a circuit breaker and dead-letter topics. Depends on [`todo_events`] only;
//! `todo-bin` composes it with `todo-store`.
//!
//! - Ports (object-safe, held as `Arc<dyn ..>`): [`Publisher`], [`Subscriber`] / [`Subscription`] (one consumer
//!   group member), [`LogReader`] (reads a partition outside any group), [`TopicAdmin`].
//! - Records: [`OutgoingRecord`] (topic, key, headers, bytes; [`OutgoingRecord::from_event`] writes a
//!   structured-mode CloudEvent keyed by user id) and [`Delivery`] ([`Delivery::event`] reads either mode).
//! - Brokers: [`MemoryBroker`] (always compiled) and `KafkaBroker` (feature `rdkafka`). Both partition keys with
//!   [`murmur2`], as Java clients and librdkafka's `murmur2_random` do.
//! - [`ConsumerRuntime`]: runs a [`Handler`] with one task per partition, retries ([`RetryPolicy`]: 1 s, 2 s,
//!   4 s by default, configurable, with optional jitter), a circuit breaker for [`HandlerError::DependencyDown`]
//!   that pauses the partition and probes with backoff ([`BreakerPolicy`]) so an outage dead-letters nothing,
//!   dead letters to `<topic>.dlq` ([`dlq`] lists the headers and has list, inspect and replay tools), graceful
//!   shutdown and [`Metrics`] (processed, retried, dead-lettered, consumer lag). A handler may also take the events
//!   already waiting in a partition as one batch ([`Handler::handle_batch`]); a batch that fails is handled again
//!   event by event, so retries and dead letters stay per event.
//!
//! # Tests
//!
//! The `contract` suite runs against the memory broker, `KafkaBroker` on rdkafka's `MockCluster`, and
//! `KafkaBroker` on a real broker process when `TODO_TEST_KAFKA_BROKERS` names one. Its dependency-outage behaviour
//! uses a 2-second real outage; the issue's 30-second outage runs with the default breaker policy on the memory
//! broker under tokio's paused clock (the same runtime and breaker code, virtual time).
//!
//! # Feature flags
//!
//! - `rdkafka` (default): `KafkaBroker`, `KafkaConfig` over rdkafka with a bundled librdkafka (a C build).
//! - `testing`: the [`contract`] module, the behaviour suite every broker passes, for other crates' tests.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use todo_events::{Event, Profile, TaskDeleted};
//! use todo_kafka::{
//!     ConsumerConfig, ConsumerRuntime, Delivery, Handler, HandlerError, MemoryBroker, OutgoingRecord, Publisher,
//! };
//! use tokio_util::sync::CancellationToken;
//!
//! struct Print;
//!
//! #[async_trait::async_trait]
//! impl Handler for Print {
//!     async fn handle(&self, event: Event, delivery: &Delivery) -> Result<(), HandlerError> {
//!         println!("{} at {}[{}]@{}", event.event_type(), delivery.topic, delivery.partition, delivery.offset);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> todo_kafka::Result<()> {
//! let broker = Arc::new(MemoryBroker::with_registry_topics(Profile::Local));
//! let now = chrono::Utc::now();
//! let event = Event::new("todo-backend", now, TaskDeleted {
//!     task_id: uuid::Uuid::new_v4(), user_id: uuid::Uuid::new_v4(), title: "Buy groceries".into(), deleted_at: now,
//! });
//! broker.publish(OutgoingRecord::from_event(&event)).await?;
//!
//! let runtime = ConsumerRuntime::new(
//!     ConsumerConfig::new("audit-consumer", ["todo.task-events"]),
//!     Arc::new(Print),
//!     broker.clone(),
//! );
//! let shutdown = CancellationToken::new();
//! let metrics = runtime.metrics();
//! let stop = shutdown.clone();
//! tokio::spawn(async move {
//!     while metrics.snapshot().processed < 1 {
//!         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//!     }
//!     stop.cancel();
//! });
//! runtime.run(broker.as_ref(), shutdown).await?;
//! assert_eq!(broker.committed_offset("audit-consumer", "todo.task-events",
//!     todo_kafka::partition_for_key(event.partition_key().as_bytes(), 3)), Some(1));
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod broker;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod dlq;
mod error;
#[cfg(feature = "rdkafka")]
mod kafka;
mod memory;
mod murmur2;
mod record;
mod runtime;

#[doc(inline)]
pub use self::admin::{
    Drift, TopicConfig, TopicOutcome, TopicReport, TopicState, TopicStatus, drift, registry_topics,
};
#[doc(inline)]
pub use self::broker::{
    LogReader, PartitionOffsets, Publisher, Subscriber, Subscription, TopicAdmin,
};
#[doc(inline)]
pub use self::error::{BoxError, Error, Result};
#[cfg(feature = "rdkafka")]
#[doc(inline)]
pub use self::kafka::{KafkaBroker, KafkaConfig, SaslMechanism, Security};
#[doc(inline)]
pub use self::memory::MemoryBroker;
#[doc(inline)]
pub use self::murmur2::{murmur2, partition_for_key};
#[doc(inline)]
pub use self::record::{Ack, Delivery, Headers, OutgoingRecord, TopicPartition};
#[doc(inline)]
pub use self::runtime::{
    BreakerPolicy, ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Metrics,
    MetricsSnapshot, RetryPolicy,
};
