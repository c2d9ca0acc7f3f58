//! Consumes `todo.task-events` with the consumer runtime and prints every event, until Ctrl-C.
//!
//! ```text
//! cargo run -p todo-kafka --example consume_task_events -- 127.0.0.1:9092 [group-id]
//! ```
//!
//! The first argument is the broker address, the second the consumer group (default `example-printer`). Run
//! `publish_event` in another terminal to see events arrive. Failed events would go to `todo.task-events.dlq`.

use std::sync::Arc;

use todo_events::{Event, Profile};
use todo_kafka::{
    ConsumerConfig, ConsumerRuntime, Delivery, Handler, HandlerError, KafkaBroker, KafkaConfig,
    TopicAdmin,
};
use tokio_util::sync::CancellationToken;

struct Print;

#[async_trait::async_trait]
impl Handler for Print {
    async fn handle(&self, event: Event, delivery: &Delivery) -> Result<(), HandlerError> {
        println!(
            "{}[{}]@{} {} {} {}",
            delivery.topic,
            delivery.partition,
            delivery.offset,
            event.event_type(),
            event.id(),
            event.to_json()
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args
        .next()
        .ok_or("usage: consume_task_events <broker-address> [group-id]")?;
    let group = args.next().unwrap_or_else(|| "example-printer".into());
    let broker = Arc::new(KafkaBroker::new(&KafkaConfig::new(brokers))?);
    broker.ensure_topics(Profile::Local).await?;

    let runtime = ConsumerRuntime::new(
        ConsumerConfig::new(group, ["todo.task-events"]),
        Arc::new(Print),
        broker.clone(),
    );
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    eprintln!("consuming todo.task-events; Ctrl-C to stop");
    runtime.run(broker.as_ref(), shutdown).await?;
    eprintln!("stopped: {:?}", runtime.metrics().snapshot());
    Ok(())
}
