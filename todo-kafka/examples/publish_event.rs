//! Publishes one `task.created` event to `todo.task-events` through `KafkaBroker`.
//!
//! ```text
//! cargo run -p todo-kafka --example publish_event -- 127.0.0.1:9092
//! ```
//!
//! The argument is the broker address (`bootstrap.servers`). The topics must exist; this example creates the six
//! registry topics (local profile) first, which is a no-op when they already exist.

use chrono::Utc;
use todo_events::{Event, Priority, Profile, SOURCE_BACKEND, TaskCreated};
use todo_kafka::{KafkaBroker, KafkaConfig, OutgoingRecord, Publisher, TopicAdmin};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers = std::env::args()
        .nth(1)
        .ok_or("usage: publish_event <broker-address>")?;
    let broker = KafkaBroker::new(&KafkaConfig::new(brokers))?;
    let report = broker.ensure_topics(Profile::Local).await?;
    for drifted in report.drifted() {
        eprintln!(
            "warning: topic {} differs from the registry: {:?}",
            drifted.name, drifted.outcome
        );
    }

    let now = Utc::now();
    let event = Event::new(
        SOURCE_BACKEND,
        now,
        TaskCreated {
            task_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            title: "Buy groceries".into(),
            description: Some("Milk, eggs, bread".into()),
            priority: Priority::High,
            tags: vec!["personal".into()],
            due_date: None,
            recurrence: None,
            created_at: now,
            extra: Default::default(),
        },
    );
    let ack = broker.publish(OutgoingRecord::from_event(&event)).await?;
    println!(
        "published {} {} to {} partition {} offset {}",
        event.event_type(),
        event.id(),
        event.topic(),
        ack.partition,
        ack.offset
    );
    Ok(())
}
