//! `KafkaBroker`: the ports over rdkafka (librdkafka).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use crate::admin::{TopicConfig, TopicState};
use crate::broker::{LogReader, PartitionOffsets, Publisher, Subscriber, Subscription, TopicAdmin};
use crate::{Ack, Delivery, Error, OutgoingRecord, Result, TopicPartition};

/// SASL mechanism for [`Security::SaslSsl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `SCRAM-SHA-256` (Redpanda Cloud's default).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `PLAIN` (only over TLS).
    Plain,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// How clients talk to the brokers.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Security {
    /// No TLS, no authentication (local clusters, tests).
    #[default]
    Plaintext,
    /// TLS without SASL (CA and client certificates through [`KafkaConfig::extra`], such as `ssl.ca.location`).
    Ssl,
    /// SASL over TLS, as managed clusters such as Redpanda Cloud require.
    SaslSsl {
        /// Mechanism.
        mechanism: SaslMechanism,
        /// User name.
        username: String,
        /// Password; never printed by `Debug`.
        password: String,
    },
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::Plaintext => f.write_str("Plaintext"),
            Security::Ssl => f.write_str("Ssl"),
            Security::SaslSsl {
                mechanism,
                username,
                ..
            } => f
                .debug_struct("SaslSsl")
                .field("mechanism", mechanism)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Typed configuration of a [`KafkaBroker`]. Library code never reads the environment: the binary fills this.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// Transport security and authentication.
    pub security: Security,
    /// `client.id`. Default `todo-kafka`.
    pub client_id: String,
    /// `linger.ms` of the producer. Default 5 ms.
    pub linger: Duration,
    /// `message.timeout.ms`: how long a publish may take before it fails. Default 30 s.
    pub message_timeout: Duration,
    /// `session.timeout.ms` of consumers. Default 30 s.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` of consumers. Default 3 s.
    pub heartbeat_interval: Duration,
    /// `fetch.wait.max.ms` of consumers: the longest a fetch waits at the broker for new records. Default 50 ms
    /// (librdkafka's is 500 ms). A broker that answers a waiting fetch as soon as records arrive (Kafka, Redpanda)
    /// makes this only the rate of idle fetches; one that holds every fetch for its full wait (tansu) adds it to
    /// every event's delivery time.
    pub fetch_wait: Duration,
    /// Timeout of admin and metadata requests, and of a dead-letter read. Default 30 s.
    pub request_timeout: Duration,
    /// Raw librdkafka properties, applied last (they override everything above), to every client.
    pub extra: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A plaintext configuration with the defaults.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            security: Security::Plaintext,
            client_id: "todo-kafka".into(),
            linger: Duration::from_millis(5),
            message_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(3),
            fetch_wait: Duration::from_millis(50),
            request_timeout: Duration::from_secs(30),
            extra: BTreeMap::new(),
        }
    }

    /// Sets the security settings.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Adds a raw librdkafka property.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        match &self.security {
            Security::Plaintext => {
                c.set("security.protocol", "plaintext");
            }
            Security::Ssl => {
                c.set("security.protocol", "ssl");
            }
            Security::SaslSsl {
                mechanism,
                username,
                password,
            } => {
                c.set("security.protocol", "sasl_ssl")
                    .set("sasl.mechanism", mechanism.as_str())
                    .set("sasl.username", username)
                    .set("sasl.password", password);
            }
        }
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// Producer: idempotent, `acks=all`, lz4, `murmur2_random` (the Java client's partitioner).
    fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", millis(self.linger))
            .set("message.timeout.ms", millis(self.message_timeout));
        self.finish(c)
    }

    /// Group consumer: offsets are stored by the application after processing, committed in the background,
    /// on rebalance and on close.
    fn consumer(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("heartbeat.interval.ms", millis(self.heartbeat_interval))
            .set("fetch.wait.max.ms", millis(self.fetch_wait));
        self.finish(c)
    }

    /// Reader outside any group: assigned partitions, no commits.
    fn reader(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", "todo-kafka-dlq-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true");
        self.finish(c)
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// The broker ports over rdkafka: [`Publisher`], [`Subscriber`], [`LogReader`] and [`TopicAdmin`].
///
/// One idempotent producer is shared by every publish; each subscription is its own group consumer. Cloning
/// shares the producer.
#[derive(Clone)]
pub struct KafkaBroker {
    config: Arc<KafkaConfig>,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl std::fmt::Debug for KafkaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBroker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaBroker {
    /// Creates the producer and admin clients. Connections are made lazily.
    ///
    /// # Errors
    /// [`Error::Config`] when librdkafka rejects the configuration (an unknown `extra` key, for example).
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        let producer: FutureProducer = config
            .producer()
            .create()
            .map_err(|e| Error::Config(format!("producer: {e}")))?;
        let admin: AdminClient<DefaultClientContext> = config
            .finish(config.base())
            .create()
            .map_err(|e| Error::Config(format!("admin client: {e}")))?;
        Ok(KafkaBroker {
            config: Arc::new(config.clone()),
            producer,
            admin: Arc::new(admin),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Waits until every record handed to the producer is acknowledged.
    ///
    /// # Errors
    /// A backend error when the queue does not drain within `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        use rdkafka::producer::Producer as _;
        let producer = self.producer.clone();
        blocking(move || producer.flush(timeout))
            .await?
            .map_err(|e| Error::kafka("flush", e))
    }

    async fn topic_metadata(&self, name: &str) -> Result<Option<(i32, Option<i32>)>> {
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let name = name.to_owned();
        blocking(move || {
            use rdkafka::producer::Producer as _;
            // All topics: asking for one by name may auto-create it on some brokers.
            let md = producer
                .client()
                .fetch_metadata(None, timeout)
                .map_err(|e| Error::kafka("fetch metadata", e))?;
            Ok(md.topics().iter().find(|t| t.name() == name).and_then(|t| {
                if t.error().is_some() || t.partitions().is_empty() {
                    return None;
                }
                let replication = t.partitions().first().map(|p| p.replicas().len() as i32);
                Some((t.partitions().len() as i32, replication))
            }))
        })
        .await?
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::kafka("blocking task", e))
}

fn produce_error(topic: &str, e: KafkaError) -> Error {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Error::UnknownTopic(topic.to_owned())
        }
        _ => Error::kafka(format!("publish to `{topic}`"), e),
    }
}

#[async_trait]
impl Publisher for KafkaBroker {
    async fn publish_batch(&self, records: Vec<OutgoingRecord>) -> Vec<Result<Ack>> {
        let mut pending = Vec::with_capacity(records.len());
        for r in &records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic)
                .payload(r.value.as_slice())
                .headers(headers);
            if let Some(k) = &r.key {
                fr = fr.key(k.as_slice());
            }
            loop {
                match self.producer.send_result(fr) {
                    Ok(f) => {
                        pending.push(Ok(f));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        fr = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        pending.push(Err(produce_error(&r.topic, e)));
                        break;
                    }
                }
            }
        }
        let mut results = Vec::with_capacity(pending.len());
        for (p, r) in pending.into_iter().zip(&records) {
            results.push(match p {
                Err(e) => Err(e),
                Ok(f) => match f.await {
                    Ok(Ok(d)) => Ok(Ack {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Err((e, _))) => Err(produce_error(&r.topic, e)),
                    Err(_) => Err(Error::Closed),
                },
            });
        }
        results
    }
}

/// Commits stored offsets before partitions are revoked, so the next owner resumes after the processed ones.
struct GroupContext;

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::debug!(partitions = tpl.count(), "committed before revoke"),
                Err(e) if is_no_offset(&e) => {}
                Err(e) => tracing::warn!(error = %e, "commit before revoke failed"),
            }
        }
    }
}

fn is_no_offset(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset)
}

struct KafkaSubscription {
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    closed: AtomicBool,
    timeout: Duration,
}

fn to_delivery(m: &BorrowedMessage<'_>) -> Delivery {
    Delivery {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        headers: m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        payload: m.payload().map(<[u8]>::to_vec),
        timestamp: m.timestamp().to_millis(),
    }
}

#[async_trait]
impl Subscriber for KafkaBroker {
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Subscription>> {
        if group.is_empty() || topics.is_empty() {
            return Err(Error::Config(
                "a subscription needs a group id and at least one topic".into(),
            ));
        }
        let consumer: StreamConsumer<GroupContext> = self
            .config
            .consumer(group)
            .create_with_context(GroupContext)
            .map_err(|e| Error::Config(format!("consumer: {e}")))?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| Error::kafka("subscribe", e))?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            closed: AtomicBool::new(false),
            timeout: self.config.request_timeout,
        }))
    }
}

impl Drop for KafkaSubscription {
    /// Leaves the group at once (as a closing process does) instead of holding partitions until the session
    /// times out; only offsets already stored are committed, so unprocessed deliveries are redelivered.
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.consumer.unsubscribe();
        }
    }
}

fn single(tp: &TopicPartition) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&tp.topic, tp.partition);
    tpl
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&self) -> Option<Result<Delivery>> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        Some(
            self.consumer
                .recv()
                .await
                .map(|m| to_delivery(&m))
                .map_err(|e| Error::kafka("receive", e)),
        )
    }

    fn store(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.consumer
            .store_offset(topic, partition, offset)
            .map_err(|e| match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition) => {
                    Error::NotAssigned {
                        topic: topic.to_owned(),
                        partition,
                    }
                }
                _ => Error::kafka("store offset", e),
            })
    }

    async fn commit(&self) -> Result<()> {
        let consumer = self.consumer.clone();
        match blocking(move || consumer.commit_consumer_state(CommitMode::Sync)).await? {
            Ok(()) => Ok(()),
            Err(e) if is_no_offset(&e) => Ok(()),
            Err(e) => Err(Error::kafka("commit", e)),
        }
    }

    fn pause(&self, tp: &TopicPartition) -> Result<()> {
        self.consumer
            .pause(&single(tp))
            .map_err(|e| Error::kafka(format!("pause {tp}"), e))
    }

    fn resume(&self, tp: &TopicPartition) -> Result<()> {
        self.consumer
            .resume(&single(tp))
            .map_err(|e| Error::kafka(format!("resume {tp}"), e))
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| TopicPartition::new(e.topic(), e.partition()))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn high_watermarks(&self) -> Result<Vec<(TopicPartition, i64)>> {
        let assigned = self.assignment();
        let consumer = self.consumer.clone();
        let timeout = self.timeout;
        blocking(move || {
            assigned
                .into_iter()
                .map(|tp| {
                    let (_, high) = consumer
                        .fetch_watermarks(&tp.topic, tp.partition, timeout)
                        .map_err(|e| Error::kafka(format!("watermarks of {tp}"), e))?;
                    Ok((tp, high))
                })
                .collect()
        })
        .await?
    }

    fn group(&self) -> &str {
        &self.group
    }

    async fn close(&self) -> Result<()> {
        let committed = self.commit().await;
        self.closed.store(true, Ordering::SeqCst);
        self.consumer.unsubscribe();
        committed
    }
}

#[async_trait]
impl LogReader for KafkaBroker {
    async fn partitions(&self, topic: &str) -> Result<Vec<PartitionOffsets>> {
        let Some((count, _)) = self.topic_metadata(topic).await? else {
            return Err(Error::UnknownTopic(topic.to_owned()));
        };
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let topic = topic.to_owned();
        blocking(move || {
            use rdkafka::producer::Producer as _;
            (0..count)
                .map(|p| {
                    let (low, high) = producer
                        .client()
                        .fetch_watermarks(&topic, p, timeout)
                        .map_err(|e| Error::kafka(format!("watermarks of {topic}[{p}]"), e))?;
                    Ok(PartitionOffsets {
                        partition: p,
                        low,
                        high,
                    })
                })
                .collect()
        })
        .await?
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let offsets = self.partitions(topic).await?;
        let Some(p) = offsets.iter().find(|p| p.partition == partition) else {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            });
        };
        if max == 0 {
            return Ok(Vec::new());
        }
        // The end of the partition is the partition-EOF event, not the high watermark: some brokers (tansu 0.6.0)
        // report a high watermark below the last offset after a multi-record batch.
        let from = from.max(p.low);
        let consumer: StreamConsumer = self
            .config
            .reader()
            .create()
            .map_err(|e| Error::Config(format!("reader: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(|e| Error::kafka("assign", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| Error::kafka("assign", e))?;
        let wanted = max;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        while out.len() < wanted {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "reading {topic}[{partition}] from offset {from}"
                    )));
                }
                Ok(Err(KafkaError::PartitionEOF(_))) => break,
                Ok(Err(e)) => return Err(Error::kafka("read", e)),
                Ok(Ok(m)) => out.push(to_delivery(&m)),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TopicAdmin for KafkaBroker {
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicState>> {
        let Some((partitions, replication)) = self.topic_metadata(name).await? else {
            return Ok(None);
        };
        let opts = AdminOptions::new().request_timeout(Some(self.config.request_timeout));
        let resource = ResourceSpecifier::Topic(name);
        let retention_ms = match self.admin.describe_configs([&resource], &opts).await {
            Ok(results) => results
                .into_iter()
                .filter_map(std::result::Result::ok)
                .find_map(|r| r.get("retention.ms").and_then(|e| e.value.clone()))
                .and_then(|v| v.parse().ok()),
            Err(e) => {
                tracing::debug!(topic = name, error = %e, "describe configs failed; retention not compared");
                None
            }
        };
        Ok(Some(TopicState {
            partitions,
            replication,
            retention_ms,
        }))
    }

    async fn create_topic(&self, topic: &TopicConfig) -> Result<()> {
        let retention = topic.retention_ms.map(|ms| ms.to_string());
        let mut new = NewTopic::new(
            &topic.name,
            topic.partitions,
            TopicReplication::Fixed(topic.replication),
        );
        if let Some(ms) = &retention {
            new = new.set("retention.ms", ms);
        }
        let opts = AdminOptions::new()
            .operation_timeout(Some(self.config.request_timeout))
            .request_timeout(Some(self.config.request_timeout));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| Error::kafka(format!("create topic `{}`", topic.name), e))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(Error::kafka(
                        format!("create topic `{name}`"),
                        KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_is_idempotent_acks_all_compressed_with_the_java_partitioner() {
        let c = KafkaConfig::new("b:9092").producer();
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("lz4"));
        assert_eq!(c.get("partitioner"), Some("murmur2_random"));
        assert_eq!(c.get("linger.ms"), Some("5"));
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
    }

    #[test]
    fn consumer_stores_offsets_only_when_told_and_starts_at_the_earliest() {
        let c = KafkaConfig::new("b:9092").consumer("audit-consumer");
        assert_eq!(c.get("group.id"), Some("audit-consumer"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("enable.auto.commit"), Some("true"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("50"));
        let r = KafkaConfig::new("b:9092").reader();
        assert_eq!(r.get("enable.auto.commit"), Some("false"));
        assert_eq!(r.get("enable.partition.eof"), Some("true"));
    }

    #[test]
    fn sasl_scram_over_tls_and_plain_tls_set_the_librdkafka_keys() {
        for (mechanism, name) in [
            (SaslMechanism::ScramSha256, "SCRAM-SHA-256"),
            (SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
            (SaslMechanism::Plain, "PLAIN"),
        ] {
            let config = KafkaConfig::new("b:9093").with_security(Security::SaslSsl {
                mechanism,
                username: "svc".into(),
                password: "s3cret".into(),
            });
            for c in [config.producer(), config.consumer("g"), config.reader()] {
                assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
                assert_eq!(c.get("sasl.mechanism"), Some(name));
                assert_eq!(c.get("sasl.username"), Some("svc"));
                assert_eq!(c.get("sasl.password"), Some("s3cret"));
            }
            let shown = format!("{config:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        let tls = KafkaConfig::new("b:9093").with_security(Security::Ssl);
        assert_eq!(tls.producer().get("security.protocol"), Some("ssl"));
        assert_eq!(tls.producer().get("sasl.mechanism"), None);
    }

    #[test]
    fn raw_librdkafka_keys_reach_every_client_and_override_the_defaults() {
        let config = KafkaConfig::new("b:9092")
            .with_extra("linger.ms", "50")
            .with_extra("ssl.ca.location", "/etc/ca.pem")
            .with_extra("enable.auto.commit", "false");
        assert_eq!(config.producer().get("linger.ms"), Some("50"));
        for c in [config.producer(), config.consumer("g"), config.reader()] {
            assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        }
        assert_eq!(
            config.consumer("g").get("enable.auto.commit"),
            Some("false")
        );
    }

    #[test]
    fn an_unknown_raw_key_is_a_config_error() {
        let err = KafkaBroker::new(&KafkaConfig::new("b:9092").with_extra("no.such.key", "1"))
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}
