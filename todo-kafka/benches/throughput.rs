//! Throughput of `KafkaBroker` and the consumer runtime against bare rdkafka loops, same broker, same run.
//!
//! ```text
//! cargo bench -p todo-kafka --bench throughput                 # rdkafka MockCluster, in process
//! TODO_BENCH_KAFKA_BROKERS=127.0.0.1:9092 cargo bench -p todo-kafka --bench throughput
//! TODO_BENCH_RECORDS=50000 cargo bench -p todo-kafka --bench throughput
//! ```
//!
//! Prints records per second for: publish through `KafkaBroker::publish_batch` (batches of 1000) vs a bare
//! `FutureProducer` with the same producer settings; consume+ack through `ConsumerRuntime` with a no-op handler
//! vs a bare `StreamConsumer` loop that stores each offset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use todo_events::{Event, TaskCreated};
use todo_kafka::{
    ConsumerConfig, ConsumerRuntime, Delivery, Handler, HandlerError, KafkaBroker, KafkaConfig,
    OutgoingRecord, Publisher, TopicAdmin, TopicConfig,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CHUNK: usize = 1000;

struct Noop;

#[async_trait::async_trait]
impl Handler for Noop {
    async fn handle(&self, _event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn records(topic: &str, n: usize) -> Vec<OutgoingRecord> {
    let users: Vec<Uuid> = (0..64).map(|_| Uuid::new_v4()).collect();
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let event = Event::new(
                "todo-backend",
                now,
                TaskCreated {
                    task_id: Uuid::new_v4(),
                    user_id: users[i % users.len()],
                    title: format!("task {i}"),
                    description: Some("Milk, eggs, bread".into()),
                    priority: Default::default(),
                    tags: vec!["personal".into()],
                    due_date: None,
                    recurrence: None,
                    created_at: now,
                    extra: Default::default(),
                },
            );
            OutgoingRecord::from_event_to(topic, &event)
        })
        .collect()
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>9.0} records/s ({n} in {:.3} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n: usize = std::env::var("TODO_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (servers, mock) = match std::env::var("TODO_BENCH_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => (b, None),
        _ => {
            let m = MockCluster::new(3)?;
            (m.bootstrap_servers(), Some(m))
        }
    };
    println!(
        "broker: {}",
        if mock.is_some() {
            "rdkafka MockCluster (3 brokers)".to_string()
        } else {
            servers.clone()
        }
    );
    let config = KafkaConfig::new(&servers);
    let broker = Arc::new(KafkaBroker::new(&config)?);
    let topic_a = format!("bench-a-{}", Uuid::new_v4().simple());
    let topic_b = format!("bench-b-{}", Uuid::new_v4().simple());
    for t in [&topic_a, &topic_b] {
        match &mock {
            Some(m) => m.create_topic(t, 3, 1)?,
            None => {
                broker
                    .create_topic(&TopicConfig::new(t.as_str(), 3))
                    .await?
            }
        }
    }

    // Publish: KafkaBroker.
    let data_a = records(&topic_a, n);
    let started = Instant::now();
    for chunk in data_a.chunks(CHUNK) {
        for r in broker.publish_batch(chunk.to_vec()).await {
            r?;
        }
    }
    let ours = started.elapsed();

    // Publish: bare FutureProducer, same settings.
    let bare: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()?;
    let data_b = records(&topic_b, n);
    let started = Instant::now();
    for chunk in data_b.chunks(CHUNK) {
        let mut futures = Vec::with_capacity(chunk.len());
        for r in chunk {
            let mut rec = FutureRecord::to(&r.topic).payload(r.value.as_slice());
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            futures.push(bare.send_result(rec).map_err(|(e, _)| e)?);
        }
        for f in futures {
            f.await?.map_err(|(e, _)| e)?;
        }
    }
    let baseline = started.elapsed();
    println!("publish  KafkaBroker::publish_batch   {}", rate(n, ours));
    println!(
        "publish  bare FutureProducer loop     {}",
        rate(n, baseline)
    );

    // Consume + ack: the runtime with a no-op handler.
    let runtime = ConsumerRuntime::new(
        ConsumerConfig::new(
            format!("bench-{}", Uuid::new_v4().simple()),
            [topic_a.clone()],
        ),
        Arc::new(Noop),
        broker.clone(),
    );
    let metrics = runtime.metrics();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let sub_broker = broker.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move { runtime.run(sub_broker.as_ref(), token).await });
    let mut first: Option<Instant> = None;
    while metrics.snapshot().processed < n as u64 {
        if first.is_none() && metrics.snapshot().processed > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = started.elapsed();
    let steady = first.map(|f| f.elapsed()).unwrap_or(total);
    stop.cancel();
    task.await??;

    // Consume + ack: bare StreamConsumer storing each offset.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set(
            "group.id",
            format!("bench-bare-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic_a.as_str()])?;
    let started = Instant::now();
    let mut bare_first: Option<Instant> = None;
    for _ in 0..n {
        let m = consumer.recv().await?;
        bare_first.get_or_insert_with(Instant::now);
        consumer.store_offset_from_message(&m)?;
    }
    let bare_total = started.elapsed();
    let bare_steady = bare_first.map(|f| f.elapsed()).unwrap_or(bare_total);
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    println!(
        "consume  ConsumerRuntime (no-op)       {}  | after first record: {}",
        rate(n, total),
        rate(n, steady)
    );
    println!(
        "consume  bare StreamConsumer loop      {}  | after first record: {}",
        rate(n, bare_total),
        rate(n, bare_steady)
    );
    drop(mock);
    Ok(())
}
