//! The consumer runtime: one task per partition, retries with backoff, a circuit breaker for dependency outages,
//! dead-letter topics, optional batches of the events waiting in a partition, graceful shutdown and counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use todo_events::Event;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broker::{Publisher, Subscriber, Subscription};
use crate::dlq::dead_letter_record;
use crate::error::BoxError;
use crate::{Delivery, Result, TopicPartition};

/// Why a handler could not process an event. The class decides what the runtime does next.
#[derive(Debug)]
pub enum HandlerError {
    /// A transient failure: retried after each delay of [`RetryPolicy::delays`], then dead-lettered.
    Retryable(BoxError),
    /// The event can never be processed: dead-lettered at once.
    Permanent(BoxError),
    /// A dependency (database, downstream service) is down: the partition is paused and the same event is
    /// retried with [`BreakerPolicy`] backoff until it succeeds. Never dead-lettered.
    DependencyDown(BoxError),
}

impl HandlerError {
    /// A [`HandlerError::Retryable`] from any error or message.
    pub fn retryable(e: impl Into<BoxError>) -> Self {
        HandlerError::Retryable(e.into())
    }
    /// A [`HandlerError::Permanent`] from any error or message.
    pub fn permanent(e: impl Into<BoxError>) -> Self {
        HandlerError::Permanent(e.into())
    }
    /// A [`HandlerError::DependencyDown`] from any error or message.
    pub fn dependency_down(e: impl Into<BoxError>) -> Self {
        HandlerError::DependencyDown(e.into())
    }
    /// `retryable`, `permanent` or `dependency-down`.
    pub fn class(&self) -> &'static str {
        match self {
            HandlerError::Retryable(_) => "retryable",
            HandlerError::Permanent(_) => "permanent",
            HandlerError::DependencyDown(_) => "dependency-down",
        }
    }
    fn source_ref(&self) -> &BoxError {
        match self {
            HandlerError::Retryable(e)
            | HandlerError::Permanent(e)
            | HandlerError::DependencyDown(e) => e,
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.class(),
            error_chain(self.source_ref().as_ref())
        )
    }
}

impl std::error::Error for HandlerError {}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

/// Processes decoded events. Must be idempotent (keyed on [`Event::id`]): delivery is at least once.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one event. `delivery` carries the record's topic, partition, offset and headers.
    ///
    /// # Errors
    /// A [`HandlerError`] whose class decides between retry, dead-letter and circuit breaking.
    async fn handle(&self, event: Event, delivery: &Delivery) -> Result<(), HandlerError>;

    /// The most consecutive events of one partition the runtime hands to [`Handler::handle_batch`] at once. The
    /// default, 1, never batches.
    fn max_batch(&self) -> usize {
        1
    }

    /// Handles consecutive events of one partition together, in offset order: the events already waiting when
    /// the runtime takes the first (it never waits for a batch to fill). A handler batches where one write for
    /// many events is much cheaper than one each (the audit log's insert-if-absent rows, say).
    ///
    /// `Ok` finishes every event of the batch. On an error the runtime handles the events again one at a time
    /// through [`Handler::handle`], with the usual retries, dead-lettering and circuit breaking, so only the
    /// events that fail on their own are retried or dead-lettered; a batch that failed half-way is repeated,
    /// which effects that are idempotent (as they must be: delivery is at least once) allow. The default handles
    /// each event through [`Handler::handle`].
    ///
    /// # Errors
    /// Any [`HandlerError`]; its class does not matter, the events are handled one by one after it.
    async fn handle_batch(&self, batch: &[(Event, &Delivery)]) -> Result<(), HandlerError> {
        for (event, delivery) in batch {
            self.handle(event.clone(), delivery).await?;
        }
        Ok(())
    }
}

/// Retries of [`HandlerError::Retryable`] failures.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before each retry; the number of retries is its length. Default: 1 s, 2 s, 4 s (four attempts).
    pub delays: Vec<Duration>,
    /// Random jitter as a fraction of each delay, 0.0 to 1.0 (0.2 means ±20 %). Default 0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            jitter: 0.0,
        }
    }
}

impl RetryPolicy {
    /// Exponential delays: `first`, `2 * first`, ... (`retries` of them).
    pub fn exponential(first: Duration, retries: u32) -> Self {
        RetryPolicy {
            delays: (0..retries)
                .map(|i| first * 2u32.saturating_pow(i))
                .collect(),
            jitter: 0.0,
        }
    }

    /// The same policy with jitter.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    fn delay(&self, retry: usize) -> Option<Duration> {
        let base = *self.delays.get(retry)?;
        if self.jitter <= 0.0 {
            return Some(base);
        }
        let factor = 1.0 + self.jitter * (rand::random::<f64>() * 2.0 - 1.0);
        Some(base.mul_f64(factor.max(0.0)))
    }
}

/// The circuit breaker for [`HandlerError::DependencyDown`]: probe delays start at `initial` and double up to
/// `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// First probe delay. Default 1 s.
    pub initial: Duration,
    /// Cap of the probe delay. Default 60 s.
    pub max: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// What the runtime consumes and how.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Consumer group id, such as `audit-consumer`.
    pub group: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
    /// Backoff while a dependency is down.
    pub breaker: BreakerPolicy,
    /// Deliveries buffered per partition. When a partition's task has this many waiting, the runtime takes no new
    /// deliveries (the client's prefetch buffer fills and fetching stops) until that task has worked its backlog
    /// down to half. Default 10 000. (Backpressure does not pause the partition: pausing drops the prefetched
    /// records and refetches them from inside a batch, which costs throughput on any broker and stalls on some.)
    pub max_queued_per_partition: usize,
    /// How often stored offsets are committed (besides rebalance and shutdown). Default 5 s.
    pub commit_interval: Duration,
    /// How often consumer lag is refreshed. Default 5 s.
    pub lag_interval: Duration,
}

impl ConsumerConfig {
    /// A configuration with the defaults.
    pub fn new(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ConsumerConfig {
            group: group.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            max_queued_per_partition: 10_000,
            commit_interval: Duration::from_secs(5),
            lag_interval: Duration::from_secs(5),
        }
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the circuit-breaker policy.
    pub fn with_breaker(mut self, breaker: BreakerPolicy) -> Self {
        self.breaker = breaker;
        self
    }
}

#[derive(Debug, Default)]
struct Counters {
    processed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    undecodable: AtomicU64,
    dependency_down: AtomicU64,
    lag: AtomicU64,
    paused_partitions: AtomicU64,
}

/// A live handle on a runtime's counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Counters>);

/// The counters of a runtime at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Events the handler processed successfully.
    pub processed: u64,
    /// Retries after retryable failures.
    pub retried: u64,
    /// Records sent to a dead-letter topic (including undecodable ones).
    pub dead_lettered: u64,
    /// Of those, records that could not be decoded.
    pub undecodable: u64,
    /// Handler results of class dependency-down (each one is a probe that failed).
    pub dependency_down: u64,
    /// Records behind the high watermark, summed over the partitions this member has consumed from, as of the
    /// last refresh ([`ConsumerConfig::lag_interval`]).
    pub lag: u64,
    /// Partitions paused right now by an open circuit.
    pub paused_partitions: u64,
}

impl Metrics {
    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.0;
        MetricsSnapshot {
            processed: c.processed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            undecodable: c.undecodable.load(Ordering::Relaxed),
            dependency_down: c.dependency_down.load(Ordering::Relaxed),
            lag: c.lag.load(Ordering::Relaxed),
            paused_partitions: c.paused_partitions.load(Ordering::Relaxed),
        }
    }
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Runs a [`Handler`] over a consumer-group subscription.
///
/// - One tokio task per partition: events of a partition (hence of a key) are handled in order, partitions in
///   parallel.
/// - An offset is stored only after its event was handled or dead-lettered; stored offsets are committed every
///   [`ConsumerConfig::commit_interval`], on rebalance and on shutdown.
/// - [`HandlerError::Retryable`]: retried after each delay of the [`RetryPolicy`] (1 s, 2 s, 4 s by default), then
///   dead-lettered. [`HandlerError::Permanent`] and undecodable records: dead-lettered at once.
/// - [`HandlerError::DependencyDown`]: the circuit opens, the partition is paused and the same event is probed
///   with exponential backoff ([`BreakerPolicy`], 1 s doubling up to a 60 s cap by default) until it succeeds.
///   Nothing is dead-lettered for an outage.
/// - Dead letters go to `<topic>.dlq` with the original key, value and headers plus the `dlq-*` headers of
///   [`crate::dlq`]. If the dead-letter publish fails it is retried with the breaker backoff; the offset is
///   stored only once it succeeded.
/// - Backpressure: while a partition has [`ConsumerConfig::max_queued_per_partition`] deliveries waiting, no new
///   deliveries are taken until its task is down to half (the partition is not paused for that).
/// - Shutdown (the token is cancelled): each partition task finishes the event in flight (a retry or probe
///   wait is cut short, leaving that event uncommitted for redelivery), then offsets are stored, committed and
///   the member leaves the group.
pub struct ConsumerRuntime {
    config: ConsumerConfig,
    handler: Arc<dyn Handler>,
    dlq: Arc<dyn Publisher>,
    metrics: Metrics,
}

impl std::fmt::Debug for ConsumerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRuntime")
            .field("config", &self.config)
            .field("metrics", &self.metrics.snapshot())
            .finish()
    }
}

/// What a partition task tells the consumer loop (rarely: per-record bookkeeping goes through [`SlotShared`]).
enum WorkerMsg {
    BreakerOpen(TopicPartition),
    BreakerClosed(TopicPartition),
    /// The backlog of a partition that reached [`ConsumerConfig::max_queued_per_partition`] fell to half of it.
    Drained(TopicPartition),
}

/// Bookkeeping of one partition shared by the consumer loop and the partition task.
#[derive(Default)]
struct SlotShared {
    /// Deliveries sent to the task and not finished yet.
    queued: AtomicUsize,
    /// The offset after the last finished delivery (for lag).
    position: AtomicI64,
    /// Set by the loop when the backlog reached the limit; the task clears it and sends
    /// [`WorkerMsg::Drained`] once the backlog is down to half.
    backlog_full: AtomicBool,
}

struct PartitionSlot {
    tp: TopicPartition,
    tx: mpsc::UnboundedSender<Delivery>,
    shared: Arc<SlotShared>,
    breaker_open: bool,
    backlog: bool,
    paused: bool,
}

/// The partitions this member has received from, looked up without allocating (a member has few partitions).
#[derive(Default)]
struct Slots(Vec<PartitionSlot>);

impl Slots {
    fn find(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionSlot> {
        self.0
            .iter_mut()
            .find(|s| s.tp.partition == partition && s.tp.topic == topic)
    }
}

struct WorkerCtx {
    handler: Arc<dyn Handler>,
    dlq: Arc<dyn Publisher>,
    subscription: Arc<dyn Subscription>,
    config: ConsumerConfig,
    max_queued: usize,
    metrics: Metrics,
    shutdown: CancellationToken,
    done: mpsc::UnboundedSender<WorkerMsg>,
}

/// A partition task stores its offset at least every this many finished deliveries, and whenever its queue is
/// empty (storing is cheap but not free; a later store covers the earlier offsets).
const STORE_EVERY: u32 = 256;

impl ConsumerRuntime {
    /// A runtime that dead-letters through `dlq` (usually the same broker).
    pub fn new(config: ConsumerConfig, handler: Arc<dyn Handler>, dlq: Arc<dyn Publisher>) -> Self {
        ConsumerRuntime {
            config,
            handler,
            dlq,
            metrics: Metrics::default(),
        }
    }

    /// The runtime's counters.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Joins the group and consumes until `shutdown` is cancelled or the subscription ends.
    ///
    /// # Errors
    /// Errors of [`Subscriber::subscribe`] and of the final commit.
    pub async fn run(
        &self,
        subscriber: &dyn Subscriber,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let subscription: Arc<dyn Subscription> = subscriber
            .subscribe(&self.config.group, &self.config.topics)
            .await?
            .into();
        self.run_subscription(subscription, shutdown).await
    }

    /// Consumes from an existing subscription until `shutdown` is cancelled or the subscription ends, then
    /// commits and closes it.
    ///
    /// # Errors
    /// Errors of the final commit.
    pub async fn run_subscription(
        &self,
        subscription: Arc<dyn Subscription>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let max_queued = self.config.max_queued_per_partition.max(1);
        let ctx = Arc::new(WorkerCtx {
            handler: self.handler.clone(),
            dlq: self.dlq.clone(),
            subscription: subscription.clone(),
            config: self.config.clone(),
            max_queued,
            metrics: self.metrics.clone(),
            shutdown: shutdown.clone(),
            done: done_tx,
        });
        let mut slots = Slots::default();
        let mut tasks = JoinSet::new();
        let mut commit_tick =
            tokio::time::interval(self.config.commit_interval.max(Duration::from_millis(1)));
        let mut lag_tick =
            tokio::time::interval(self.config.lag_interval.max(Duration::from_millis(1)));
        loop {
            // Backpressure: while a partition that is not paused has a full backlog, take no new deliveries.
            let full = slots.0.iter().any(|s| s.backlog && !s.breaker_open);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(msg) = done_rx.recv() => self.on_worker_msg(&*subscription, &mut slots, msg),
                next = subscription.next(), if !full => match next {
                    None => break,
                    Some(Err(e)) => {
                        tracing::warn!(group = %self.config.group, error = %e, "consumer error");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Some(Ok(delivery)) => {
                        if slots.find(&delivery.topic, delivery.partition).is_none() {
                            let tp = delivery.topic_partition();
                            let (tx, rx) = mpsc::unbounded_channel();
                            let shared = Arc::new(SlotShared::default());
                            shared.position.store(delivery.offset, Ordering::Relaxed);
                            tasks.spawn(partition_task(ctx.clone(), tp.clone(), shared.clone(), rx));
                            slots.0.push(PartitionSlot {
                                tp, tx, shared, breaker_open: false, backlog: false, paused: false,
                            });
                        }
                        if let Some(slot) = slots.find(&delivery.topic, delivery.partition) {
                            let queued = slot.shared.queued.fetch_add(1, Ordering::SeqCst) + 1;
                            if slot.tx.send(delivery).is_err() {
                                slot.shared.queued.fetch_sub(1, Ordering::SeqCst);
                            } else if queued >= max_queued && !slot.backlog {
                                slot.backlog = true;
                                slot.shared.backlog_full.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                },
                _ = commit_tick.tick() => {
                    if let Err(e) = subscription.commit().await {
                        tracing::warn!(group = %self.config.group, error = %e, "periodic commit failed");
                    }
                }
                _ = lag_tick.tick() => self.refresh_lag(&*subscription, &slots).await,
            }
        }
        // Shutdown: close the queues, let each task finish its event in flight and store what it finished, commit.
        for slot in &mut slots.0 {
            let (closed, _) = mpsc::unbounded_channel();
            slot.tx = closed;
        }
        drop(ctx);
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "partition task failed");
            }
        }
        while let Ok(msg) = done_rx.try_recv() {
            self.on_worker_msg(&*subscription, &mut slots, msg);
        }
        self.refresh_lag(&*subscription, &slots).await;
        let committed = subscription.commit().await;
        let closed = subscription.close().await;
        committed.and(closed)
    }

    fn on_worker_msg(&self, subscription: &dyn Subscription, slots: &mut Slots, msg: WorkerMsg) {
        let (tp, change): (TopicPartition, fn(&mut PartitionSlot)) = match msg {
            WorkerMsg::BreakerOpen(tp) => (tp, |s| s.breaker_open = true),
            WorkerMsg::BreakerClosed(tp) => (tp, |s| s.breaker_open = false),
            WorkerMsg::Drained(tp) => (tp, |s| s.backlog = false),
        };
        if let Some(slot) = slots.find(&tp.topic, tp.partition) {
            change(slot);
            self.apply_pause(subscription, slot);
        }
    }

    fn apply_pause(&self, subscription: &dyn Subscription, slot: &mut PartitionSlot) {
        let want = slot.breaker_open;
        if want == slot.paused {
            return;
        }
        let tp = &slot.tp;
        let result = if want {
            subscription.pause(tp)
        } else {
            subscription.resume(tp)
        };
        match result {
            Ok(()) => {
                slot.paused = want;
                let gauge = &self.metrics.0.paused_partitions;
                if want {
                    gauge.fetch_add(1, Ordering::Relaxed);
                } else {
                    gauge.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::debug!(%tp, error = %e, "pause/resume failed"),
        }
    }

    async fn refresh_lag(&self, subscription: &dyn Subscription, slots: &Slots) {
        let fetch =
            tokio::time::timeout(Duration::from_secs(5), subscription.high_watermarks()).await;
        let Ok(Ok(highs)) = fetch else {
            return;
        };
        let lag: i64 = highs
            .iter()
            .filter_map(|(tp, high)| {
                slots
                    .0
                    .iter()
                    .find(|s| &s.tp == tp)
                    .map(|s| (high - s.shared.position.load(Ordering::Relaxed)).max(0))
            })
            .sum();
        self.metrics.0.lag.store(lag as u64, Ordering::Relaxed);
    }
}

enum Outcome {
    Finished,
    Interrupted,
}

async fn partition_task(
    ctx: Arc<WorkerCtx>,
    tp: TopicPartition,
    shared: Arc<SlotShared>,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
) {
    let max_batch = ctx.handler.max_batch().max(1);
    let mut progress = Progress::default();
    let mut batch: Vec<Delivery> = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => None,
            d = rx.recv() => d,
        };
        let Some(delivery) = next else {
            break;
        };
        batch.push(delivery);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        if batch.len() > 1 && process_batch(&ctx, &tp, &batch).await {
            for delivery in batch.drain(..) {
                progress.finished(&ctx, &tp, &shared, delivery.offset, rx.is_empty());
            }
            continue;
        }
        let mut interrupted = false;
        for delivery in batch.drain(..) {
            match process(&ctx, &tp, &delivery).await {
                Outcome::Finished => {
                    progress.finished(&ctx, &tp, &shared, delivery.offset, rx.is_empty());
                }
                Outcome::Interrupted => {
                    interrupted = true;
                    break;
                }
            }
        }
        if interrupted {
            break;
        }
    }
    store(&ctx, &tp, progress.unstored);
}

/// What a partition task finished and has not stored yet.
#[derive(Default)]
struct Progress {
    /// The last finished offset not stored yet.
    unstored: Option<i64>,
    /// How many finished since the last store.
    since_store: u32,
}

impl Progress {
    fn finished(
        &mut self,
        ctx: &WorkerCtx,
        tp: &TopicPartition,
        shared: &SlotShared,
        offset: i64,
        idle: bool,
    ) {
        self.unstored = Some(offset);
        self.since_store += 1;
        shared.position.fetch_max(offset + 1, Ordering::Relaxed);
        let queued = shared.queued.fetch_sub(1, Ordering::SeqCst) - 1;
        if queued <= ctx.max_queued / 2 && shared.backlog_full.swap(false, Ordering::SeqCst) {
            let _ = ctx.done.send(WorkerMsg::Drained(tp.clone()));
        }
        if self.since_store >= STORE_EVERY || idle {
            store(ctx, tp, self.unstored.take());
            self.since_store = 0;
        }
    }
}

/// Hands a batch to the handler at once; `false` when it has to be handled event by event (an undecodable record
/// in it, or the handler failed).
async fn process_batch(ctx: &WorkerCtx, tp: &TopicPartition, batch: &[Delivery]) -> bool {
    let mut events = Vec::with_capacity(batch.len());
    for delivery in batch {
        match delivery.event() {
            Ok(event) => events.push((event, delivery)),
            Err(_) => return false,
        }
    }
    match ctx.handler.handle_batch(&events).await {
        Ok(()) => {
            ctx.metrics
                .0
                .processed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::debug!(%tp, events = batch.len(), error = %e, "batch failed, handling its events one by one");
            false
        }
    }
}

/// Stores a finished offset: the next commit makes the group resume after it.
fn store(ctx: &WorkerCtx, tp: &TopicPartition, offset: Option<i64>) {
    let Some(offset) = offset else {
        return;
    };
    if let Err(e) = ctx.subscription.store(&tp.topic, tp.partition, offset) {
        tracing::debug!(%tp, offset, error = %e, "offset not stored (partition moved?)");
    }
}

/// Sleeps unless shutdown comes first; `false` when interrupted.
async fn pause_for(ctx: &WorkerCtx, delay: Duration) -> bool {
    tokio::select! {
        () = ctx.shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

async fn process(ctx: &WorkerCtx, tp: &TopicPartition, delivery: &Delivery) -> Outcome {
    let event = match delivery.event() {
        Ok(event) => event,
        Err(e) => {
            inc(&ctx.metrics.0.undecodable);
            return dead_letter(ctx, delivery, "undecodable", &error_chain(&e), 0).await;
        }
    };
    let mut attempts: u32 = 0;
    let mut retries = 0usize;
    let mut probe: Option<Duration> = None;
    // The first attempt takes the decoded event; a retry (rare) decodes the record again instead of every
    // delivery paying for a clone.
    let mut first = Some(event);
    loop {
        attempts += 1;
        let event = match first.take() {
            Some(event) => event,
            None => match delivery.event() {
                Ok(event) => event,
                Err(e) => {
                    return dead_letter(ctx, delivery, "undecodable", &error_chain(&e), attempts)
                        .await;
                }
            },
        };
        match ctx.handler.handle(event, delivery).await {
            Ok(()) => {
                inc(&ctx.metrics.0.processed);
                if probe.is_some() {
                    tracing::info!(%tp, "dependency back, closing the circuit");
                    let _ = ctx.done.send(WorkerMsg::BreakerClosed(tp.clone()));
                }
                return Outcome::Finished;
            }
            Err(HandlerError::Permanent(e)) => {
                return dead_letter(
                    ctx,
                    delivery,
                    "permanent",
                    &error_chain(e.as_ref()),
                    attempts,
                )
                .await;
            }
            Err(HandlerError::Retryable(e)) => match ctx.config.retry.delay(retries) {
                Some(delay) => {
                    tracing::debug!(%tp, offset = delivery.offset, attempts, error = %e, "retrying");
                    inc(&ctx.metrics.0.retried);
                    retries += 1;
                    if !pause_for(ctx, delay).await {
                        return Outcome::Interrupted;
                    }
                }
                None => {
                    return dead_letter(
                        ctx,
                        delivery,
                        "retryable",
                        &error_chain(e.as_ref()),
                        attempts,
                    )
                    .await;
                }
            },
            Err(HandlerError::DependencyDown(e)) => {
                inc(&ctx.metrics.0.dependency_down);
                let delay = match probe {
                    None => {
                        tracing::warn!(%tp, error = %e, "dependency down, opening the circuit");
                        let _ = ctx.done.send(WorkerMsg::BreakerOpen(tp.clone()));
                        ctx.config.breaker.initial
                    }
                    Some(previous) => (previous * 2).min(ctx.config.breaker.max),
                };
                probe = Some(delay);
                if !pause_for(ctx, delay).await {
                    return Outcome::Interrupted;
                }
            }
        }
    }
}

async fn dead_letter(
    ctx: &WorkerCtx,
    delivery: &Delivery,
    class: &str,
    error: &str,
    attempts: u32,
) -> Outcome {
    let record = dead_letter_record(delivery, &ctx.config.group, class, error, attempts);
    let mut delay = ctx.config.breaker.initial;
    loop {
        match ctx.dlq.publish(record.clone()).await {
            Ok(_) => {
                inc(&ctx.metrics.0.dead_lettered);
                tracing::warn!(topic = %delivery.topic, partition = delivery.partition, offset = delivery.offset,
                    class, error, "dead-lettered");
                return Outcome::Finished;
            }
            Err(e) => {
                tracing::error!(dlq = %record.topic, error = %e, "dead-letter publish failed, retrying");
                if !pause_for(ctx, delay).await {
                    return Outcome::Interrupted;
                }
                delay = (delay * 2).min(ctx.config.breaker.max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::sample_event;
    use crate::{MemoryBroker, OutgoingRecord, TopicAdmin, TopicConfig, dlq};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;
    use tokio::sync::{Notify, Semaphore};
    use tokio::time::Instant;

    /// Fails every call retryably and records when each attempt came.
    #[derive(Default)]
    struct AlwaysRetryable {
        attempts: Mutex<Vec<Instant>>,
    }

    #[async_trait]
    impl Handler for AlwaysRetryable {
        async fn handle(&self, _event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
            if let Ok(mut a) = self.attempts.lock() {
                a.push(Instant::now());
            }
            Err(HandlerError::retryable("db timeout"))
        }
    }

    /// Succeeds, but each call waits for a permit; says when a call has started.
    struct Gated {
        entered: Notify,
        release: Semaphore,
        handled: AtomicU32,
    }

    impl Gated {
        fn new() -> Arc<Self> {
            Arc::new(Gated {
                entered: Notify::new(),
                release: Semaphore::new(0),
                handled: AtomicU32::new(0),
            })
        }
    }

    #[async_trait]
    impl Handler for Gated {
        async fn handle(&self, _event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
            self.entered.notify_one();
            let permit = self
                .release
                .acquire()
                .await
                .map_err(HandlerError::permanent)?;
            permit.forget();
            self.handled.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    async fn broker_with(topic: &str, events: usize) -> Arc<MemoryBroker> {
        let broker = Arc::new(MemoryBroker::new());
        for t in [topic.to_owned(), dlq::dlq_topic(topic)] {
            broker
                .create_topic(&TopicConfig::new(t, 1))
                .await
                .expect("create topic");
        }
        let user = uuid::Uuid::new_v4();
        let records = (0..events)
            .map(|i| OutgoingRecord::from_event_to(topic, &sample_event(user, &i.to_string())))
            .collect();
        for r in broker.publish_batch(records).await {
            r.expect("publish");
        }
        broker
    }

    struct Started {
        stop: CancellationToken,
        task: tokio::task::JoinHandle<Result<()>>,
        metrics: Metrics,
    }

    fn start(
        broker: &Arc<MemoryBroker>,
        config: ConsumerConfig,
        handler: Arc<dyn Handler>,
    ) -> Started {
        let runtime = ConsumerRuntime::new(config, handler, broker.clone());
        let metrics = runtime.metrics();
        let stop = CancellationToken::new();
        let (b, s) = (broker.clone(), stop.clone());
        let task = tokio::spawn(async move { runtime.run(b.as_ref(), s).await });
        Started {
            stop,
            task,
            metrics,
        }
    }

    async fn until(metrics: &Metrics, cond: impl Fn(&MetricsSnapshot) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cond(&metrics.snapshot()) {
            assert!(
                Instant::now() < deadline,
                "timed out: {:?}",
                metrics.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn retry_gaps(retry: Option<RetryPolicy>) -> Vec<Duration> {
        let broker = broker_with("t", 1).await;
        let handler = Arc::new(AlwaysRetryable::default());
        let mut config = ConsumerConfig::new("g", ["t"]);
        if let Some(retry) = retry {
            config = config.with_retry(retry);
        }
        let r = start(&broker, config, handler.clone());
        until(&r.metrics, |m| m.dead_lettered == 1).await;
        r.stop.cancel();
        r.task.await.expect("join").expect("run");
        assert_eq!(r.metrics.snapshot().retried, 3);
        assert_eq!(broker.committed_offset("g", "t", 0), Some(1));
        let dead = dlq::list(broker.as_ref(), "t.dlq").await.expect("list");
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].info.attempts, dead[0].info.error_class.as_str()),
            (4, "retryable")
        );
        let attempts = handler
            .attempts
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        attempts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The default policy end to end, on tokio's paused clock: four attempts 1 s, 2 s and 4 s apart, then the DLQ.
    #[tokio::test(start_paused = true)]
    async fn retryable_failures_wait_one_two_four_seconds_then_dead_letter() {
        let gaps = retry_gaps(None).await;
        assert_eq!(gaps.len(), 3, "{gaps:?}");
        for (gap, want) in gaps.iter().zip([1, 2, 4]) {
            let want = Duration::from_secs(want);
            assert!(
                *gap >= want && *gap <= want + Duration::from_millis(5),
                "{gaps:?}"
            );
        }
    }

    /// Jitter set through the consumer configuration spreads the delays within its fraction.
    #[tokio::test(start_paused = true)]
    async fn configured_jitter_spreads_the_retry_delays() {
        let gaps = retry_gaps(Some(RetryPolicy::default().with_jitter(0.5))).await;
        assert_eq!(gaps.len(), 3, "{gaps:?}");
        let mut off_schedule = 0;
        for (gap, want) in gaps.iter().zip([1000u64, 2000, 4000]) {
            let ms = gap.as_millis() as u64;
            assert!(ms + 1 >= want / 2 && ms <= want * 3 / 2 + 5, "{gaps:?}");
            if ms.abs_diff(want) > 5 {
                off_schedule += 1;
            }
        }
        assert!(off_schedule > 0, "no jitter applied: {gaps:?}");
    }

    /// Batches offsets; the event at `poison` fails on its own (permanent) and fails any batch that holds it. The
    /// first call waits until the test opens the gate, so that the rest of the events queue up meanwhile.
    struct Batching {
        poison: i64,
        gate: Semaphore,
        handled: Mutex<Vec<(i64, usize)>>,
    }

    impl Batching {
        fn record(&self, offsets: &[i64]) {
            if let Ok(mut h) = self.handled.lock() {
                h.extend(offsets.iter().map(|&o| (o, offsets.len())));
            }
        }
    }

    #[async_trait]
    impl Handler for Batching {
        async fn handle(&self, _event: Event, delivery: &Delivery) -> Result<(), HandlerError> {
            let _open = self.gate.acquire().await.map_err(HandlerError::permanent)?;
            if delivery.offset == self.poison {
                return Err(HandlerError::permanent("poison"));
            }
            self.record(&[delivery.offset]);
            Ok(())
        }

        fn max_batch(&self) -> usize {
            8
        }

        async fn handle_batch(&self, batch: &[(Event, &Delivery)]) -> Result<(), HandlerError> {
            let _open = self.gate.acquire().await.map_err(HandlerError::permanent)?;
            let offsets: Vec<i64> = batch.iter().map(|(_, d)| d.offset).collect();
            if offsets.contains(&self.poison) {
                return Err(HandlerError::retryable("a poison event in the batch"));
            }
            self.record(&offsets);
            Ok(())
        }
    }

    /// Events waiting in a partition reach a batching handler in batches of at most its size, in order; a batch
    /// that fails is handled again event by event, so the others of that batch are handled once and only the
    /// failing event is dead-lettered (at once, as a permanent failure, without the batch's retryable error
    /// counting as a retry).
    #[tokio::test]
    async fn waiting_events_are_batched_and_a_failed_batch_is_handled_event_by_event() {
        const EVENTS: i64 = 40;
        let broker = broker_with("t", EVENTS as usize).await;
        let handler = Arc::new(Batching {
            poison: 21,
            gate: Semaphore::new(0),
            handled: Mutex::new(Vec::new()),
        });
        let r = start(&broker, ConsumerConfig::new("g", ["t"]), handler.clone());
        // The first call waits at the gate while the runtime queues the other events for the partition.
        tokio::time::sleep(Duration::from_millis(200)).await;
        handler.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        until(&r.metrics, |m| m.processed == 39 && m.dead_lettered == 1).await;
        r.stop.cancel();
        r.task.await.expect("join").expect("run");
        let handled = handler
            .handled
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        let offsets: Vec<i64> = handled.iter().map(|&(o, _)| o).collect();
        let expected: Vec<i64> = (0..EVENTS).filter(|&o| o != 21).collect();
        assert_eq!(offsets, expected, "each event once, in order");
        assert!(handled.iter().all(|&(_, size)| size <= 8), "{handled:?}");
        assert!(
            handled.iter().any(|&(_, size)| size > 1),
            "no batch: {handled:?}"
        );
        assert!(
            handled.contains(&(20, 1)) || handled.contains(&(22, 1)),
            "the poison's batch was handled event by event: {handled:?}"
        );
        let snapshot = r.metrics.snapshot();
        assert_eq!((snapshot.retried, snapshot.dead_lettered), (0, 1));
        assert_eq!(broker.committed_offset("g", "t", 0), Some(EVENTS));
        let dead = dlq::list(broker.as_ref(), "t.dlq").await.expect("list");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].info.original_offset, 21);
    }

    /// Shutdown lets the event in flight finish and commits it; queued events stay for the next member.
    #[tokio::test]
    async fn shutdown_finishes_the_event_in_flight_and_commits_it() {
        let broker = broker_with("t", 3).await;
        let handler = Gated::new();
        let r = start(&broker, ConsumerConfig::new("g", ["t"]), handler.clone());
        handler.entered.notified().await;
        r.stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !r.task.is_finished(),
            "the runtime stopped before the event in flight finished"
        );
        handler.release.add_permits(1);
        r.task.await.expect("join").expect("run");
        assert_eq!(r.metrics.snapshot().processed, 1);
        assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
        assert_eq!(broker.committed_offset("g", "t", 0), Some(1));

        handler.release.add_permits(10);
        let again = start(&broker, ConsumerConfig::new("g", ["t"]), handler.clone());
        until(&again.metrics, |m| m.processed == 2).await;
        again.stop.cancel();
        again.task.await.expect("join").expect("run");
        assert_eq!(handler.handled.load(Ordering::SeqCst), 3);
        assert_eq!(broker.committed_offset("g", "t", 0), Some(3));
    }

    /// A full backlog holds back new deliveries without pausing the partition, and nothing is lost or reordered.
    #[tokio::test]
    async fn a_full_backlog_holds_deliveries_back_and_loses_nothing() {
        let broker = broker_with("t", 30).await;
        let handler = Gated::new();
        let mut config = ConsumerConfig::new("g", ["t"]);
        config.max_queued_per_partition = 2;
        let r = start(&broker, config, handler.clone());
        handler.entered.notified().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(r.metrics.snapshot().paused_partitions, 0);
        handler.release.add_permits(30);
        until(&r.metrics, |m| m.processed == 30).await;
        r.stop.cancel();
        r.task.await.expect("join").expect("run");
        assert_eq!(handler.handled.load(Ordering::SeqCst), 30);
        assert_eq!(broker.committed_offset("g", "t", 0), Some(30));
    }

    /// The lag counter shows the records behind the high watermark, and drops to zero once they are processed.
    #[tokio::test]
    async fn lag_counts_unprocessed_records_until_they_are_handled() {
        let broker = broker_with("t", 10).await;
        let handler = Gated::new();
        let mut config = ConsumerConfig::new("g", ["t"]);
        config.lag_interval = Duration::from_millis(10);
        let r = start(&broker, config, handler.clone());
        handler.entered.notified().await;
        until(&r.metrics, |m| m.lag == 10).await;
        handler.release.add_permits(10);
        until(&r.metrics, |m| m.processed == 10 && m.lag == 0).await;
        r.stop.cancel();
        r.task.await.expect("join").expect("run");
    }

    #[test]
    fn default_retry_policy_is_one_two_four_seconds() {
        let p = RetryPolicy::default();
        let got: Vec<_> = (0..4).map(|i| p.delay(i)).collect();
        assert_eq!(
            got,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                None
            ]
        );
        assert_eq!(RetryPolicy::exponential(Duration::from_secs(1), 3), p);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = RetryPolicy::default().with_jitter(0.5);
        for _ in 0..100 {
            let d = p.delay(0).unwrap_or_default();
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_millis(1500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn handler_error_display_names_its_class_and_chain() {
        let e = HandlerError::retryable("db timeout");
        assert_eq!(e.to_string(), "retryable: db timeout");
        assert_eq!(
            HandlerError::dependency_down("x").class(),
            "dependency-down"
        );
    }
}
