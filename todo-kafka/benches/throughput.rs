//! Throughput of `KafkaBroker` and the consumer runtime against bare rdkafka loops, same broker, same run.
//!
//! ```text
//! cargo bench -p todo-kafka --bench throughput                 # rdkafka MockCluster, in process
//! TODO_BENCH_KAFKA_BROKERS=127.0.0.1:9092 cargo bench -p todo-kafka --bench throughput
//! TODO_BENCH_RECORDS=50000 TODO_BENCH_ROUNDS=6 cargo bench -p todo-kafka --bench throughput
//! ```
//!
//! Both sides send the same records (a `task.created` CloudEvent of about 450 bytes, keyed by one of 64 user ids,
//! with its `content-type` header) to their own 3-partition topic, in rounds (default 4) that alternate which side
//! goes first, so load changes on a shared machine hit both alike. Each side is warmed up (connection, metadata)
//! with one record before timing.
//!
//! - publish: `KafkaBroker::publish_batch` in batches of 1000 vs a bare `FutureProducer` with the same producer
//!   settings (idempotent, `acks=all`, lz4, `murmur2_random`, `linger.ms=5`), each batch sent and then every
//!   delivery future awaited.
//! - consume: `ConsumerRuntime` with a no-op handler (decode, per-partition task, store offset) vs a bare
//!   `StreamConsumer` loop that stores each offset, each in a new consumer group reading the whole publish topic
//!   of our side. The rate counts from the first record received, so the group join (seconds on some brokers) is
//!   left out on both sides; the rate including the join is printed too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
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
/// A consumer that receives nothing for this long has stalled: the bench fails instead of hanging.
const STALL: Duration = Duration::from_secs(60);

struct Noop;

#[async_trait::async_trait]
impl Handler for Noop {
    async fn handle(&self, _event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
        Ok(())
    }
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

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

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn publish_ours(broker: &KafkaBroker, data: &[OutgoingRecord]) -> BoxResult<Duration> {
    let started = Instant::now();
    for chunk in data.chunks(CHUNK) {
        for r in broker.publish_batch(chunk.to_vec()).await {
            r?;
        }
    }
    Ok(started.elapsed())
}

async fn publish_bare(producer: &FutureProducer, data: &[OutgoingRecord]) -> BoxResult<Duration> {
    let started = Instant::now();
    for chunk in data.chunks(CHUNK) {
        let mut futures = Vec::with_capacity(chunk.len());
        for r in chunk {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                });
            }
            let mut rec = FutureRecord::to(&r.topic)
                .payload(r.value.as_slice())
                .headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            futures.push(producer.send_result(rec).map_err(|(e, _)| e)?);
        }
        for f in futures {
            f.await?.map_err(|(e, _)| e)?;
        }
    }
    Ok(started.elapsed())
}

/// (rate from the first record, rate including the group join)
async fn consume_ours(broker: &Arc<KafkaBroker>, topic: &str, n: usize) -> BoxResult<(f64, f64)> {
    let runtime = ConsumerRuntime::new(
        ConsumerConfig::new(format!("bench-{}", Uuid::new_v4().simple()), [topic]),
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
    let mut progress = (0, Instant::now());
    loop {
        let done = metrics.snapshot().processed;
        if done >= n as u64 {
            break;
        }
        if first.is_none() && done > 0 {
            first = Some(Instant::now());
        }
        if done != progress.0 {
            progress = (done, Instant::now());
        } else if progress.1.elapsed() > STALL {
            return Err(format!(
                "runtime stalled at {done} of {n} records: {:?}",
                metrics.snapshot()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = started.elapsed();
    let steady = first.map(|f| f.elapsed()).unwrap_or(total);
    stop.cancel();
    task.await??;
    Ok((per_sec(n, steady), per_sec(n, total)))
}

async fn consume_bare(servers: &str, topic: &str, n: usize) -> BoxResult<(f64, f64)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set(
            "group.id",
            format!("bench-bare-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    for i in 0..n {
        let m = tokio::time::timeout(STALL, consumer.recv())
            .await
            .map_err(|_| format!("bare consumer stalled at {i} of {n} records"))??;
        first.get_or_insert_with(Instant::now);
        consumer.store_offset_from_message(&m)?;
    }
    let total = started.elapsed();
    let steady = first.map(|f| f.elapsed()).unwrap_or(total);
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)?;
    Ok((per_sec(n, steady), per_sec(n, total)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn summary(what: &str, ours: &[f64], bare: &[f64], target: f64) {
    let ratios: Vec<f64> = ours.iter().zip(bare).map(|(o, b)| o / b).collect();
    let (o, b, r) = (
        median(ours.to_vec()),
        median(bare.to_vec()),
        median(ratios.clone()),
    );
    println!(
        "{what:<8} median: ours {o:>9.0}/s  bare {b:>9.0}/s  ratio {r:.2} (per round {}) target >= {target} {}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        if r >= target { "met" } else { "MISSED" }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> BoxResult<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = env("TODO_BENCH_RECORDS", 20_000);
    let rounds = env("TODO_BENCH_ROUNDS", 4).max(1);
    let (servers, mock) = match std::env::var("TODO_BENCH_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => (b, None),
        _ => {
            let m = MockCluster::new(3)?;
            (m.bootstrap_servers(), Some(m))
        }
    };
    println!(
        "broker: {}; {n} records per round, {rounds} rounds",
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
    let bare: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()?;
    // Warm-up: connections and topic metadata, one record each (they count towards the consume total).
    publish_ours(&broker, &records(&topic_a, 1)).await?;
    publish_bare(&bare, &records(&topic_b, 1)).await?;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (data_a, data_b) = (records(&topic_a, n), records(&topic_b, n));
        let (o, b) = if round % 2 == 0 {
            let o = publish_ours(&broker, &data_a).await?;
            (o, publish_bare(&bare, &data_b).await?)
        } else {
            let b = publish_bare(&bare, &data_b).await?;
            (publish_ours(&broker, &data_a).await?, b)
        };
        let (o, b) = (per_sec(n, o), per_sec(n, b));
        println!(
            "publish round {}: KafkaBroker::publish_batch {o:>9.0}/s  bare FutureProducer {b:>9.0}/s  ratio {:.2}",
            round + 1,
            o / b
        );
        ours.push(o);
        theirs.push(b);
    }
    summary("publish", &ours, &theirs, 0.8);

    let total = rounds * n + 1;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (o, b) = if round % 2 == 0 {
            let o = consume_ours(&broker, &topic_a, total).await?;
            (o, consume_bare(&servers, &topic_a, total).await?)
        } else {
            let b = consume_bare(&servers, &topic_a, total).await?;
            (consume_ours(&broker, &topic_a, total).await?, b)
        };
        println!(
            "consume round {}: ConsumerRuntime (no-op) {:>9.0}/s  bare StreamConsumer {:>9.0}/s  ratio {:.2}  \
             (with group join: {:.0}/s vs {:.0}/s)",
            round + 1,
            o.0,
            b.0,
            o.0 / b.0,
            o.1,
            b.1
        );
        ours.push(o.0);
        theirs.push(b.0);
    }
    summary("consume", &ours, &theirs, 0.7);
    drop(mock);
    Ok(())
}
