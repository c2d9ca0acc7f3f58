//! The outbox relay and the reminder scheduler.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use todo_events::{Event, ReminderTriggered, SOURCE_SCHEDULER};
use todo_kafka::{OutgoingRecord, Publisher};
use todo_store::Store;
use tokio_util::sync::CancellationToken;

/// Publishes committed outbox rows in sequence order and marks them published once the broker acknowledged
/// them. A broker outage only delays events: unacknowledged rows stay unpublished and are sent again.
pub struct Relay {
    store: Arc<dyn Store>,
    publisher: Arc<dyn Publisher>,
    batch: usize,
}

impl Relay {
    /// A relay from `store` to `publisher`.
    pub fn new(store: Arc<dyn Store>, publisher: Arc<dyn Publisher>) -> Self {
        Relay {
            store,
            publisher,
            batch: 256,
        }
    }

    /// Publishes one batch; returns how many rows were published.
    ///
    /// # Errors
    /// A store error; broker failures leave the rows unpublished and are reported as an error after the rows
    /// that were acknowledged are marked.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let rows = self.store.unpublished_outbox(self.batch).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let records: Vec<OutgoingRecord> = rows
            .iter()
            .map(|row| OutgoingRecord {
                topic: row.topic.clone(),
                key: row.key.clone(),
                headers: row.headers.clone(),
                value: row.payload.clone(),
            })
            .collect();
        let results = self.publisher.publish_batch(records).await;
        // Mark the acknowledged prefix: a failed row stops the batch so that order per key is kept.
        let mut published = Vec::new();
        let mut failure = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(_) => published.push(row.seq),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let n = published.len();
        if n > 0 {
            self.store.mark_published(&published, Utc::now()).await?;
            for row in &rows[..n] {
                metrics::counter!("todo_events_published_total", "topic" => row.topic.clone())
                    .increment(1);
            }
        }
        match failure {
            Some(e) => Err(anyhow::Error::new(e).context("publishing the outbox")),
            None => Ok(n),
        }
    }

    /// Runs until `shutdown`, woken by commits, retrying with backoff while the broker or database is down.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.run_once().await {
                Ok(n) if n == self.batch => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    if let Ok(backlog) = self.store.outbox_backlog().await {
                        metrics::gauge!("todo_outbox_backlog").set(backlog as f64);
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = self.store.wait_for_outbox(Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "relay failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Fires due reminders: claims them, writes `reminder.triggered` to the outbox in the same transaction, sleeps
/// until the next `remind_at` or until a new reminder wakes it.
pub struct Scheduler {
    store: Arc<dyn Store>,
    lease: Duration,
}

impl Scheduler {
    /// A scheduler over `store`; a claim is held for `lease` before another replica may take it.
    pub fn new(store: Arc<dyn Store>, lease: Duration) -> Self {
        Scheduler { store, lease }
    }

    /// Fires what is due now; returns how many fired.
    ///
    /// # Errors
    /// Store errors.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let due = self.store.claim_due_reminders(now, 100, self.lease).await?;
        let mut fired = 0;
        for claim in due {
            let reminder = &claim.reminder;
            let event = Event::new(
                SOURCE_SCHEDULER,
                now,
                ReminderTriggered {
                    reminder_id: reminder.id.as_uuid(),
                    task_id: reminder.task_id.as_uuid(),
                    user_id: reminder.owner.as_uuid(),
                    task_title: claim.task_title.clone(),
                    due_date: claim.due_date,
                    remind_at: Some(reminder.remind_at),
                },
            )
            .with_subject(reminder.task_id.to_string());
            if self
                .store
                .fire_reminder(reminder.id, claim.lease_token, &event, now)
                .await?
            {
                fired += 1;
                let delay = (now - reminder.remind_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!("todo_reminder_fire_delay_seconds").record(delay);
            }
        }
        Ok(fired)
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let sleep = match self.run_once().await {
                Ok(n) if n > 0 => Duration::ZERO,
                Ok(_) => match self.store.next_reminder_at().await {
                    Ok(Some(at)) => (at - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(Duration::from_secs(30)),
                    Ok(None) => Duration::from_secs(30),
                    Err(e) => {
                        tracing::warn!(error = %e, "scheduler cannot read the next reminder");
                        Duration::from_secs(1)
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "scheduler failed");
                    Duration::from_secs(1)
                }
            };
            if sleep.is_zero() {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(sleep) => {}
                () = self.store.wait_for_reminders(sleep) => {}
            }
        }
    }
}
