//! Broker abstraction of the todo pipeline.
//!
//! Publisher and subscriber traits over transport records, a `KafkaBroker` over rdkafka, an in-memory broker with
//! the same semantics, topic administration from the [`todo_events::TOPICS`] registry, and a consumer runtime with
//! per-partition ordering, retries and dead-letter topics. Depends on [`todo_events`] only; `todo-bin` composes it
//! with `todo-store`.
