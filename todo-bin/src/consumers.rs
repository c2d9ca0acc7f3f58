//! The four consumers of the design, as `todo-kafka` handlers shared by both wirings.
//!
//! | group | topics | effect |
//! |---|---|---|
//! | `audit-consumer` | `todo.task-events`, `todo.task-updates` | one audit row per event id |
//! | `recurrence-consumer` | `todo.task-events` (`task.completed`) | the next instance, its reminders and its `task.created`, once per completion |
//! | `reminder-consumer` | `todo.reminders` | TRIGGERED if the task is active, else CANCELLED; audited |
//! | `reminder-suppression` | `todo.task-events` (`task.completed`, `task.deleted`) | cancels the task's pending reminders |
//!
//! Failures are classified for the runtime: a database that is unreachable is [`HandlerError::DependencyDown`]
//! (the partition pauses until it is back; nothing is dead-lettered), anything that is the message's fault is
//! retryable or permanent and ends in the dead-letter topic.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use todo_domain::{ReminderStatus, TaskId, UserId};
use todo_events::{Event, EventData, Topic};
use todo_kafka::{Delivery, Handler, HandlerError};
use todo_store::Store;

/// The consumer group names of the design.
pub mod groups {
    /// Audit log.
    pub const AUDIT: &str = "audit-consumer";
    /// Next instances of recurring tasks.
    pub const RECURRENCE: &str = "recurrence-consumer";
    /// Reminder triggers.
    pub const REMINDERS: &str = "reminder-consumer";
    /// Reminder suppression on completion and deletion.
    pub const SUPPRESSION: &str = "reminder-suppression";
}

/// Maps a store error to the runtime's failure classes.
pub(crate) fn classify(e: todo_store::Error) -> HandlerError {
    match e {
        todo_store::Error::Unavailable(_) => HandlerError::dependency_down(e),
        other => HandlerError::retryable(other),
    }
}

/// Test and drill hook: fails every event whose task title contains a marker (`--fault-inject`).
#[derive(Debug, Clone, Default)]
pub struct FaultInjection {
    rule: Option<(String, String)>,
}

impl FaultInjection {
    /// Parses `consumer:text`.
    pub fn parse(spec: Option<&str>) -> Result<Self, String> {
        match spec.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(FaultInjection::default()),
            Some(s) => {
                let (group, text) = s
                    .split_once(':')
                    .filter(|(g, t)| !g.is_empty() && !t.is_empty())
                    .ok_or_else(|| {
                        format!("--fault-inject: expected consumer:text, found `{s}`")
                    })?;
                Ok(FaultInjection {
                    rule: Some((group.to_owned(), text.to_owned())),
                })
            }
        }
    }

    fn check(&self, group: &str, event: &Event) -> Result<(), HandlerError> {
        let Some((g, text)) = &self.rule else {
            return Ok(());
        };
        if g != group {
            return Ok(());
        }
        let title = match event.data() {
            EventData::TaskCreated(d) => Some(d.title.as_str()),
            EventData::TaskCompleted(d) => Some(d.title.as_str()),
            EventData::TaskDeleted(d) => Some(d.title.as_str()),
            EventData::ReminderTriggered(d) => Some(d.task_title.as_str()),
            EventData::TaskUpdated(d) => d.changes.title.as_deref(),
        };
        if title.is_some_and(|t| t.contains(text.as_str())) {
            return Err(HandlerError::retryable(format!(
                "injected fault for titles containing `{text}`"
            )));
        }
        Ok(())
    }
}

/// `audit-consumer`: one audit row per event id.
pub struct AuditConsumer {
    store: Arc<dyn Store>,
    faults: FaultInjection,
}

impl AuditConsumer {
    /// The consumer over `store`.
    pub fn new(store: Arc<dyn Store>, faults: FaultInjection) -> Self {
        AuditConsumer { store, faults }
    }

    /// Its topics.
    pub fn topics() -> Vec<String> {
        vec![
            Topic::TaskEvents.name().to_owned(),
            Topic::TaskUpdates.name().to_owned(),
        ]
    }
}

#[async_trait]
impl Handler for AuditConsumer {
    async fn handle(&self, event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
        self.faults.check(groups::AUDIT, &event)?;
        self.store
            .record_audit(&event, Utc::now())
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Audit rows are independent of each other: the events waiting in a partition are recorded in one write.
    fn max_batch(&self) -> usize {
        AUDIT_BATCH
    }

    async fn handle_batch(&self, batch: &[(Event, &Delivery)]) -> Result<(), HandlerError> {
        for (event, _) in batch {
            self.faults.check(groups::AUDIT, event)?;
        }
        let events: Vec<&Event> = batch.iter().map(|(event, _)| event).collect();
        self.store
            .record_audits(&events, Utc::now())
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// The most audit rows written in one transaction.
const AUDIT_BATCH: usize = 256;

/// `recurrence-consumer`: on `task.completed` of a recurring task, the next instance.
pub struct RecurrenceConsumer {
    store: Arc<dyn Store>,
    faults: FaultInjection,
}

impl RecurrenceConsumer {
    /// The consumer over `store`.
    pub fn new(store: Arc<dyn Store>, faults: FaultInjection) -> Self {
        RecurrenceConsumer { store, faults }
    }

    /// Its topics.
    pub fn topics() -> Vec<String> {
        vec![Topic::TaskEvents.name().to_owned()]
    }
}

#[async_trait]
impl Handler for RecurrenceConsumer {
    async fn handle(&self, event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
        let EventData::TaskCompleted(completed) = event.data() else {
            return Ok(());
        };
        if completed.recurrence.is_none() {
            return Ok(());
        }
        self.faults.check(groups::RECURRENCE, &event)?;
        let owner = UserId::from_uuid(completed.user_id);
        let task = match self
            .store
            .get_task(owner, TaskId::from_uuid(completed.task_id))
            .await
        {
            Ok(task) => task,
            // Deleted since: no next instance.
            Err(todo_store::Error::NotFound) => return Ok(()),
            Err(e) => return Err(classify(e)),
        };
        let now = Utc::now();
        let Some(next) = todo_domain::next_instance(completed, &task, TaskId::new(), now) else {
            return Ok(());
        };
        // Reminders of the next instance from its lead times; one that would already be past is skipped.
        let reminders: Vec<_> = next
            .due
            .as_ref()
            .map(|due| {
                next.reminder_leads
                    .iter()
                    .filter_map(|lead| {
                        let at = todo_domain::remind_at(due, lead, now).ok()?;
                        Some(todo_domain::Reminder {
                            id: todo_domain::ReminderId::new(),
                            task_id: next.id,
                            owner: next.owner,
                            lead: Some(*lead),
                            remind_at: at,
                            status: ReminderStatus::Pending,
                            fired_at: None,
                            created_at: now,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let created = Event::new(todo_events::SOURCE_RECURRENCE, now, next.created_payload())
            .with_subject(next.id.to_string());
        let created = match event.extension_str("traceparent") {
            Some(tp) => created.with_extension("traceparent", crate::trace::child_of(Some(tp))),
            None => created,
        };
        match self
            .store
            .create_next_instance(
                groups::RECURRENCE,
                event.id(),
                &next,
                &reminders,
                &[created],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// `reminder-consumer`: a trigger marks the reminder TRIGGERED while its task is active, CANCELLED otherwise.
pub struct ReminderConsumer {
    store: Arc<dyn Store>,
    faults: FaultInjection,
}

impl ReminderConsumer {
    /// The consumer over `store`.
    pub fn new(store: Arc<dyn Store>, faults: FaultInjection) -> Self {
        ReminderConsumer { store, faults }
    }

    /// Its topics.
    pub fn topics() -> Vec<String> {
        vec![Topic::Reminders.name().to_owned()]
    }
}

impl ReminderConsumer {
    /// What the store applies for one event: its reminder and whether its task is still active.
    async fn trigger_of(
        &self,
        event: &Event,
        delivery: &Delivery,
    ) -> Result<todo_store::ReminderTrigger, HandlerError> {
        let EventData::ReminderTriggered(data) = event.data() else {
            return Err(HandlerError::permanent(format!(
                "`{}` does not belong on {}",
                event.event_type(),
                delivery.topic
            )));
        };
        self.faults.check(groups::REMINDERS, event)?;
        let owner = UserId::from_uuid(data.user_id);
        let task_active = match self
            .store
            .get_task(owner, TaskId::from_uuid(data.task_id))
            .await
        {
            Ok(task) => task.status == todo_domain::TaskStatus::Active,
            Err(todo_store::Error::NotFound) => false,
            Err(e) => return Err(classify(e)),
        };
        Ok(todo_store::ReminderTrigger {
            id: todo_domain::ReminderId::from_uuid(data.reminder_id),
            task_active,
            event: event.clone(),
        })
    }
}

#[async_trait]
impl Handler for ReminderConsumer {
    /// The reminder's resulting state decides, not the task check alone: suppression may have cancelled the
    /// reminder between the check and the transition, and a cancelled reminder is never audited as triggered. The
    /// transition and the audit row commit together; a redelivery finds the reminder TRIGGERED already and adds no
    /// second row.
    async fn handle(&self, event: Event, delivery: &Delivery) -> Result<(), HandlerError> {
        let trigger = self.trigger_of(&event, delivery).await?;
        self.store
            .trigger_reminders(&[trigger], Utc::now())
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// The reminders waiting in the partition are applied in one write.
    fn max_batch(&self) -> usize {
        REMINDER_BATCH
    }

    async fn handle_batch(&self, batch: &[(Event, &Delivery)]) -> Result<(), HandlerError> {
        let mut triggers = Vec::with_capacity(batch.len());
        for (event, delivery) in batch {
            triggers.push(self.trigger_of(event, delivery).await?);
        }
        self.store
            .trigger_reminders(&triggers, Utc::now())
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// The most reminders applied in one transaction.
const REMINDER_BATCH: usize = 128;

/// `reminder-suppression`: completion or deletion cancels the task's pending reminders.
pub struct SuppressionConsumer {
    store: Arc<dyn Store>,
    faults: FaultInjection,
}

impl SuppressionConsumer {
    /// The consumer over `store`.
    pub fn new(store: Arc<dyn Store>, faults: FaultInjection) -> Self {
        SuppressionConsumer { store, faults }
    }

    /// Its topics.
    pub fn topics() -> Vec<String> {
        vec![Topic::TaskEvents.name().to_owned()]
    }
}

#[async_trait]
impl Handler for SuppressionConsumer {
    async fn handle(&self, event: Event, _delivery: &Delivery) -> Result<(), HandlerError> {
        let (user, task) = match event.data() {
            EventData::TaskCompleted(d) => (d.user_id, d.task_id),
            EventData::TaskDeleted(d) => (d.user_id, d.task_id),
            _ => return Ok(()),
        };
        self.faults.check(groups::SUPPRESSION, &event)?;
        self.store
            .cancel_pending_reminders(UserId::from_uuid(user), TaskId::from_uuid(task), Utc::now())
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::service::{CreateTask, SetReminder, SystemClock, TaskService};
    use todo_events::ReminderTriggered;

    async fn service() -> TaskService {
        let store = crate::app::open_store(&StoreConfig::Sqlite {
            path: ":memory:".into(),
        })
        .await
        .expect("store");
        TaskService::new(store, Arc::new(SystemClock))
    }

    async fn triggered_rows(service: &TaskService, user: UserId) -> usize {
        let page = service
            .store()
            .list_audit(user, 100, None)
            .await
            .expect("audit");
        page.items
            .iter()
            .filter(|e| e.event_type == "reminder.triggered")
            .count()
    }

    /// An active task with two reminders an hour ahead, the second one cancelled by its user.
    async fn two_reminders_one_cancelled()
    -> (TaskService, UserId, TaskId, Vec<todo_domain::Reminder>) {
        let service = service().await;
        let user = UserId::new();
        let task = service
            .create_task(
                user,
                CreateTask {
                    title: "Call Ada".into(),
                    ..CreateTask::default()
                },
            )
            .await
            .expect("task");
        let at = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let mut reminders = Vec::new();
        for _ in 0..2 {
            reminders.push(
                service
                    .set_reminder(
                        user,
                        task.id,
                        SetReminder {
                            remind_at: Some(at.clone()),
                            ..SetReminder::default()
                        },
                    )
                    .await
                    .expect("reminder"),
            );
        }
        service
            .cancel_reminder(user, reminders[1].id)
            .await
            .expect("cancel");
        (service, user, task.id, reminders)
    }

    /// The `reminder.triggered` event of `r`.
    fn trigger(r: &todo_domain::Reminder) -> Event {
        Event::new(
            "test",
            Utc::now(),
            ReminderTriggered {
                reminder_id: r.id.as_uuid(),
                task_id: r.task_id.as_uuid(),
                user_id: r.owner.as_uuid(),
                task_title: "Call Ada".into(),
                due_date: None,
                remind_at: Some(r.remind_at),
            },
        )
    }

    fn delivery(topic: Topic) -> Delivery {
        Delivery {
            topic: topic.name().into(),
            partition: 0,
            offset: 0,
            key: None,
            headers: Default::default(),
            payload: None,
            timestamp: None,
        }
    }

    async fn status_of(
        service: &TaskService,
        user: UserId,
        task: TaskId,
        id: todo_domain::ReminderId,
    ) -> Option<ReminderStatus> {
        let list = service
            .store()
            .list_reminders(user, task)
            .await
            .expect("list");
        list.iter().find(|r| r.id == id).map(|r| r.status)
    }

    /// A trigger for a reminder of an active task: TRIGGERED and audited once, also when delivered twice; a
    /// trigger for a reminder the user cancelled meanwhile (the task still active): stays CANCELLED and is never
    /// audited as triggered.
    #[tokio::test]
    async fn the_reminder_state_decides_what_is_audited() {
        let (service, user, task, reminders) = two_reminders_one_cancelled().await;
        let consumer = ReminderConsumer::new(service.store().clone(), FaultInjection::default());
        let delivery = delivery(Topic::Reminders);

        let cancelled = trigger(&reminders[1]);
        consumer
            .handle(cancelled, &delivery)
            .await
            .expect("handled");
        assert_eq!(
            status_of(&service, user, task, reminders[1].id).await,
            Some(ReminderStatus::Cancelled)
        );
        assert_eq!(triggered_rows(&service, user).await, 0);

        let live = trigger(&reminders[0]);
        for _ in 0..2 {
            consumer
                .handle(live.clone(), &delivery)
                .await
                .expect("handled");
        }
        assert_eq!(
            status_of(&service, user, task, reminders[0].id).await,
            Some(ReminderStatus::Triggered)
        );
        assert_eq!(
            status_of(&service, user, task, reminders[1].id).await,
            Some(ReminderStatus::Cancelled)
        );
        assert_eq!(triggered_rows(&service, user).await, 1);
    }

    /// The same decisions for a batch (the live trigger twice in it, as a redelivery), applied in one write; a
    /// batch holding an event that does not belong on the topic fails as a whole before anything is written, so the
    /// runtime handles its events one by one.
    #[tokio::test]
    async fn a_batch_of_triggers_decides_like_single_ones() {
        let (service, user, task, reminders) = two_reminders_one_cancelled().await;
        let consumer = ReminderConsumer::new(service.store().clone(), FaultInjection::default());
        let on_reminders = delivery(Topic::Reminders);
        let (cancelled, live) = (trigger(&reminders[1]), trigger(&reminders[0]));
        let stranger = Event::new(
            "test",
            Utc::now(),
            todo_events::TaskDeleted {
                task_id: task.as_uuid(),
                user_id: user.as_uuid(),
                title: "Call Ada".into(),
                deleted_at: Utc::now(),
            },
        );

        let poisoned = [(live.clone(), &on_reminders), (stranger, &on_reminders)];
        assert!(matches!(
            consumer.handle_batch(&poisoned).await,
            Err(HandlerError::Permanent(_))
        ));
        assert_eq!(
            status_of(&service, user, task, reminders[0].id).await,
            Some(ReminderStatus::Pending),
            "nothing of a failed batch is written"
        );

        let batch = [
            (cancelled, &on_reminders),
            (live.clone(), &on_reminders),
            (live, &on_reminders),
        ];
        consumer.handle_batch(&batch).await.expect("handled");
        assert_eq!(
            status_of(&service, user, task, reminders[0].id).await,
            Some(ReminderStatus::Triggered)
        );
        assert_eq!(
            status_of(&service, user, task, reminders[1].id).await,
            Some(ReminderStatus::Cancelled)
        );
        assert_eq!(triggered_rows(&service, user).await, 1);
    }
}
