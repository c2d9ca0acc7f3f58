//! The behaviour suite every [`Store`] passes: one `pub async fn` per behaviour, taking the store as a trait
//! object. Each function uses fresh random users and ids, so they can share one database.
//!
//! Run it from another crate's tests with the `testing` feature.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, TimeZone as _, Utc};
use todo_domain::{
    Due, LeadTime, NewTask, Priority, Recurrence, Reminder, ReminderId, ReminderInput,
    ReminderStatus, Tags, Task, TaskId, TaskPatch, TaskStatus, Title, UserId,
};
use todo_events::{Event, SOURCE_BACKEND};
use uuid::Uuid;

use crate::{Applied, Error, Store, TagMatch, TaskQuery, TaskSort};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

pub(crate) fn new_task(owner: UserId, title: &str) -> Task {
    let new = NewTask::titled(Title::parse(title).expect("title"));
    Task::create(TaskId::new(), owner, new, now())
}

pub(crate) fn created(task: &Task) -> Event {
    Event::new(SOURCE_BACKEND, task.created_at, task.created_payload())
}

fn reminder(task: &Task, at: DateTime<Utc>) -> Reminder {
    Reminder {
        id: ReminderId::new(),
        task_id: task.id,
        owner: task.owner,
        lead: None,
        remind_at: at,
        status: ReminderStatus::Pending,
        fired_at: None,
        created_at: now(),
    }
}

/// The `reminder.triggered` event of `r`, emitted at `at`.
fn triggered_event(r: &Reminder, task_title: &str, at: DateTime<Utc>) -> Event {
    Event::new(
        SOURCE_BACKEND,
        at,
        todo_events::ReminderTriggered {
            reminder_id: r.id.as_uuid(),
            task_id: r.task_id.as_uuid(),
            user_id: r.owner.as_uuid(),
            task_title: task_title.into(),
            due_date: None,
            remind_at: Some(r.remind_at),
        },
    )
}

/// Claims the reminders due at `at` for `lease`; the claim of reminder `id`, which must be among them.
async fn claim_of(
    store: &dyn Store,
    id: ReminderId,
    at: DateTime<Utc>,
    lease: Duration,
) -> crate::ReminderClaim {
    store
        .claim_due_reminders(at, 10_000, lease)
        .await
        .expect("claim")
        .into_iter()
        .find(|c| c.reminder.id == id)
        .unwrap_or_else(|| panic!("reminder {id:?} was not claimed"))
}

/// The task ids of `owner`'s events on `topic` in the outbox, sorted.
async fn outbox_task_ids(store: &dyn Store, topic: &str, owner: UserId) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = store
        .outbox_after(topic, 0, 1_000_000)
        .await
        .expect("outbox")
        .iter()
        .filter_map(|r| todo_events::binding::decode(&r.headers, &r.payload).ok())
        .filter(|e| e.data().user_id() == owner.as_uuid())
        .map(|e| e.data().task_id())
        .collect();
    ids.sort();
    ids
}

pub(crate) fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

/// A created task reads back equal, and another owner sees NotFound for every operation.
pub async fn tasks_round_trip_and_are_scoped_by_owner(store: &dyn Store) {
    let (alice, bob) = (user(), user());
    let mut task = new_task(alice, "Buy groceries");
    task.description = Some(todo_domain::Description::parse("Milk, eggs").expect("description"));
    task.tags = Tags::parse(["home", "errands"]).expect("tags");
    task.due = Some(Due::on(NaiveDate::from_ymd_opt(2030, 2, 10).expect("date")));
    task.recurrence = Some(Recurrence::parse("weekly").expect("rule"));
    task.reminder_leads = vec![LeadTime::parse("30min").expect("lead")];
    store
        .create_task(&task, &[], &[created(&task)])
        .await
        .expect("create");
    assert_eq!(store.get_task(alice, task.id).await.expect("get"), task);
    assert!(matches!(
        store.get_task(bob, task.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_task(bob, task.id, &[]).await,
        Err(Error::NotFound)
    ));
    let mut stolen = task.clone();
    stolen.owner = bob;
    stolen.version += 1;
    assert!(matches!(
        store.update_task(&stolen, task.version, &[]).await,
        Err(Error::NotFound)
    ));
    let page = store
        .list_tasks(bob, &TaskQuery::default())
        .await
        .expect("list");
    assert!(page.items.is_empty());
    store
        .delete_task(alice, task.id, &[])
        .await
        .expect("delete");
    assert!(matches!(
        store.get_task(alice, task.id).await,
        Err(Error::NotFound)
    ));
}

/// An update with a stale version is a Conflict and changes nothing.
pub async fn stale_version_is_a_conflict(store: &dyn Store) {
    let owner = user();
    let mut task = new_task(owner, "Write report");
    store.create_task(&task, &[], &[]).await.expect("create");
    let v1 = task.version;
    task.apply(
        TaskPatch {
            title: Some(Title::parse("Write the report").expect("t")),
            ..Default::default()
        },
        now(),
    );
    store
        .update_task(&task, v1, &[])
        .await
        .expect("first update");
    let mut stale = task.clone();
    stale.title = Title::parse("Lost update").expect("t");
    stale.version = v1 + 1;
    assert!(matches!(
        store.update_task(&stale, v1, &[]).await,
        Err(Error::Conflict)
    ));
    assert_eq!(
        store
            .get_task(owner, task.id)
            .await
            .expect("get")
            .title
            .as_str(),
        "Write the report"
    );
}

/// Two concurrent completions of one task: exactly one wins, one task.completed is written.
pub async fn concurrent_completions_complete_once(store: Arc<dyn Store>) {
    let owner = user();
    let task = new_task(owner, "Once");
    store.create_task(&task, &[], &[]).await.expect("create");
    let attempt = |store: Arc<dyn Store>, mut t: Task| async move {
        let expected = t.version;
        t.complete(now());
        let event = Event::new(SOURCE_BACKEND, now(), t.completed_payload());
        store.update_task(&t, expected, &[event]).await
    };
    let (a, b) = tokio::join!(
        attempt(store.clone(), task.clone()),
        attempt(store.clone(), task.clone())
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    assert!([a, b].iter().any(|r| matches!(r, Err(Error::Conflict))));
    assert_eq!(
        store.get_task(owner, task.id).await.expect("get").status,
        TaskStatus::Completed
    );
    let rows = store
        .outbox_after("todo.task-events", 0, 100_000)
        .await
        .expect("outbox");
    let completions = rows
        .iter()
        .filter_map(|r| todo_events::binding::decode(&r.headers, &r.payload).ok())
        .filter(|e| {
            e.data().task_id() == task.id.as_uuid()
                && e.event_type() == todo_events::EventType::TaskCompleted
        })
        .count();
    assert_eq!(completions, 1);
}

/// Concurrent creates (200 from 16 tasks) each land with their outbox row or fail alone: a create whose id exists
/// and one whose reminder id exists (its task row is written before the failing reminder row) are Conflicts that
/// leave nothing behind, and every other create commits (on SQLite they share group-commit transactions).
pub async fn concurrent_creates_land_or_fail_alone(store: Arc<dyn Store>) {
    const CREATES: usize = 200;
    const WRITERS: usize = 16;
    const SAME_ID: usize = 37;
    const SAME_REMINDER: usize = 150;
    let owner = user();
    let existing = new_task(owner, "Existing");
    let existing_reminder = reminder(&existing, now() + Span::days(1));
    store
        .create_task(
            &existing,
            std::slice::from_ref(&existing_reminder),
            &[created(&existing)],
        )
        .await
        .expect("create");
    let plans: Vec<(Task, Vec<Reminder>, Event)> = (0..CREATES)
        .map(|i| {
            let mut task = new_task(owner, &format!("concurrent {i}"));
            if i == SAME_ID {
                task.id = existing.id;
            }
            let reminders = if i == SAME_REMINDER {
                let mut r = reminder(&task, now() + Span::days(1));
                r.id = existing_reminder.id;
                vec![r]
            } else {
                Vec::new()
            };
            let event = created(&task);
            (task, reminders, event)
        })
        .collect();
    let plans = Arc::new(plans);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, plans) = (store.clone(), plans.clone());
        writers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in (w..CREATES).step_by(WRITERS) {
                let (task, reminders, event) = &plans[i];
                let result = store
                    .create_task(task, reminders, std::slice::from_ref(event))
                    .await;
                results.push((i, result));
            }
            results
        }));
    }
    let mut landed = Vec::new();
    for writer in writers {
        for (i, result) in writer.await.expect("writer") {
            match (i, result) {
                (SAME_ID | SAME_REMINDER, Err(Error::Conflict)) => {}
                (SAME_ID | SAME_REMINDER, other) => {
                    panic!("create {i}: expected a conflict, got {other:?}")
                }
                (_, Ok(())) => landed.push(plans[i].0.id.as_uuid()),
                (_, Err(e)) => panic!("create {i} failed: {e}"),
            }
        }
    }
    assert_eq!(landed.len(), CREATES - 2);
    assert_eq!(
        store
            .get_task(owner, existing.id)
            .await
            .expect("get")
            .title
            .as_str(),
        "Existing"
    );
    assert!(matches!(
        store.get_task(owner, plans[SAME_REMINDER].0.id).await,
        Err(Error::NotFound)
    ));
    for (i, (task, _, _)) in plans.iter().enumerate() {
        if i != SAME_ID && i != SAME_REMINDER {
            assert_eq!(&store.get_task(owner, task.id).await.expect("get"), task);
        }
    }
    let events = outbox_task_ids(store.as_ref(), "todo.task-events", owner).await;
    let mut expected = landed;
    expected.push(existing.id.as_uuid());
    expected.sort();
    assert_eq!(events, expected, "one outbox row per committed create");
}

/// How many tasks `owner` has, read page by page.
async fn count_tasks(store: &dyn Store, owner: UserId) -> usize {
    let mut query = TaskQuery {
        limit: 500,
        ..TaskQuery::default()
    };
    let mut n = 0;
    loop {
        let page = store.list_tasks(owner, &query).await.expect("list");
        n += page.items.len();
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break n,
        }
    }
}

/// A consumer's writes go through while a stream of creates keeps the database busy: 16 writers create tasks
/// without pause until a consumer has recorded 100 audit rows and moved its cursor 100 times, every one of which
/// succeeds (on SQLite the writers queue for the single write lock first come, first served, so the stream of
/// creates cannot keep the consumer out until its busy timeout).
pub async fn consumer_writes_proceed_under_create_load(store: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const CONSUMER_WRITES: usize = 100;
    let owner = user();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, done) = (store.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let task = new_task(owner, &format!("stream {w} {n}"));
                store
                    .create_task(&task, &[], &[created(&task)])
                    .await
                    .expect("create under load");
                n += 1;
            }
        }));
    }
    // The stream is under way before the consumer begins.
    let mut before = count_tasks(store.as_ref(), owner).await;
    while before < WRITERS {
        tokio::time::sleep(Duration::from_millis(1)).await;
        before = count_tasks(store.as_ref(), owner).await;
    }
    let consumer = format!("contract-consumer-{}", Uuid::new_v4());
    let audited_owner = user();
    for i in 0..CONSUMER_WRITES {
        let task = new_task(audited_owner, &format!("audited {i}"));
        let event = created(&task);
        assert!(
            store
                .record_audit(&event, now())
                .await
                .expect("audit under load"),
            "a new event id is recorded"
        );
        store
            .set_cursor(&consumer, i64::try_from(i).expect("small") + 1)
            .await
            .expect("cursor under load");
    }
    let during = count_tasks(store.as_ref(), owner).await;
    done.store(true, std::sync::atomic::Ordering::Release);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        during > before,
        "creates committed while the consumer wrote ({before} tasks before, {during} after)"
    );
    assert_eq!(
        store.cursor(&consumer).await.expect("cursor"),
        i64::try_from(CONSUMER_WRITES).expect("small")
    );
    let page = store
        .list_audit(audited_owner, 500, None)
        .await
        .expect("audit");
    assert_eq!(page.items.len(), CONSUMER_WRITES);
}

/// Outbox rows come back in commit order, are marked published, and cursors persist.
pub async fn outbox_keeps_order_and_cursors(store: &dyn Store) {
    let owner = user();
    let before = store
        .outbox_bounds("todo.task-events")
        .await
        .expect("bounds")
        .1;
    let tasks: Vec<Task> = (0..5)
        .map(|i| new_task(owner, &format!("task {i}")))
        .collect();
    for t in &tasks {
        store
            .create_task(t, &[], &[created(t)])
            .await
            .expect("create");
    }
    let rows = store
        .outbox_after("todo.task-events", before, 1000)
        .await
        .expect("after");
    let ours: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| todo_events::binding::decode(&r.headers, &r.payload).ok())
        .filter(|e| e.data().user_id() == owner.as_uuid())
        .map(|e| e.data().task_id())
        .collect();
    assert_eq!(
        ours,
        tasks.iter().map(|t| t.id.as_uuid()).collect::<Vec<_>>()
    );
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        rows.iter()
            .all(|r| r.key.as_deref() == Some(owner.to_string().as_bytes()))
    );
    let unpublished = store
        .unpublished_outbox(100_000)
        .await
        .expect("unpublished");
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert!(seqs.iter().all(|s| unpublished.iter().any(|u| u.seq == *s)));
    store.mark_published(&seqs, now()).await.expect("mark");
    let unpublished = store
        .unpublished_outbox(100_000)
        .await
        .expect("unpublished");
    assert!(seqs.iter().all(|s| unpublished.iter().all(|u| u.seq != *s)));
    let consumer = format!("group-{}", Uuid::new_v4());
    assert_eq!(store.cursor(&consumer).await.expect("cursor"), 0);
    store.set_cursor(&consumer, 42).await.expect("set");
    store.set_cursor(&consumer, 43).await.expect("set");
    assert_eq!(store.cursor(&consumer).await.expect("cursor"), 43);
    let topic = format!("t-{}", Uuid::new_v4());
    let appended = store
        .append_outbox(&[crate::NewOutboxRecord {
            topic: topic.clone(),
            key: Some(b"k".to_vec()),
            headers: vec![("dlq-error".into(), b"boom".to_vec())],
            payload: b"not an event".to_vec(),
        }])
        .await
        .expect("append");
    let back = store.outbox_after(&topic, 0, 10).await.expect("after");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].seq, appended[0]);
    assert_eq!(
        back[0].headers,
        vec![("dlq-error".to_owned(), b"boom".to_vec())]
    );
}

/// The recurrence effect commits once per completion event, however often it is applied.
pub async fn next_instance_is_applied_once(store: &dyn Store) {
    let owner = user();
    let next = new_task(owner, "Next instance");
    let event_id = Uuid::new_v4();
    let first = store
        .create_next_instance(
            "recurrence-consumer",
            event_id,
            &next,
            &[],
            &[created(&next)],
        )
        .await;
    assert_eq!(first.expect("first"), Applied::Applied);
    let mut other = new_task(owner, "Next instance");
    other.id = TaskId::new();
    let second = store
        .create_next_instance(
            "recurrence-consumer",
            event_id,
            &other,
            &[],
            &[created(&other)],
        )
        .await;
    assert_eq!(second.expect("second"), Applied::AlreadyApplied);
    assert!(matches!(
        store.get_task(owner, other.id).await,
        Err(Error::NotFound)
    ));
    let page = store
        .list_tasks(owner, &TaskQuery::default())
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
}

/// The audit log inserts an event once and pages newest first.
pub async fn audit_is_insert_if_absent_and_paged(store: &dyn Store) {
    let owner = user();
    let tasks: Vec<Task> = (0..5)
        .map(|i| new_task(owner, &format!("audited {i}")))
        .collect();
    let events: Vec<Event> = tasks.iter().map(created).collect();
    for e in &events {
        assert!(store.record_audit(e, now()).await.expect("insert"));
        assert!(!store.record_audit(e, now()).await.expect("again"));
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_audit(owner, 2, cursor.as_deref())
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<Uuid> = events.iter().rev().map(Event::id).collect();
    assert_eq!(seen, expected);
    assert!(
        store
            .list_audit(user(), 10, None)
            .await
            .expect("other")
            .items
            .is_empty()
    );
    assert!(matches!(
        store.list_audit(owner, 10, Some("nope")).await,
        Err(Error::InvalidCursor)
    ));
}

/// A batch of audit rows: each event id once, whether it was recorded before, twice in the batch or new.
pub async fn audit_batches_insert_each_event_once(store: &dyn Store) {
    let owner = user();
    let events: Vec<Event> = (0..4)
        .map(|i| created(&new_task(owner, &format!("batched {i}"))))
        .collect();
    assert!(store.record_audit(&events[0], now()).await.expect("one"));
    assert_eq!(store.record_audits(&[], now()).await.expect("empty"), 0);
    let batch = [&events[0], &events[1], &events[2], &events[1], &events[3]];
    assert_eq!(store.record_audits(&batch, now()).await.expect("batch"), 3);
    assert_eq!(store.record_audits(&batch, now()).await.expect("again"), 0);
    let page = store.list_audit(owner, 100, None).await.expect("page");
    let mut seen: Vec<Uuid> = page.items.iter().map(|e| e.event_id).collect();
    let mut expected: Vec<Uuid> = events.iter().map(Event::id).collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);

    // A large batch (written several rows per statement) keeps its order, with duplicates across statements.
    let other = user();
    let many: Vec<Event> = (0..100)
        .map(|i| created(&new_task(other, &format!("large batch {i}"))))
        .collect();
    let mut batch: Vec<&Event> = many.iter().collect();
    batch.insert(70, &many[3]);
    batch.push(&many[99]);
    assert_eq!(
        store.record_audits(&batch, now()).await.expect("large"),
        100
    );
    let page = store.list_audit(other, 200, None).await.expect("page");
    let newest_first: Vec<Uuid> = page.items.iter().map(|e| e.event_id).collect();
    let oldest_first: Vec<Uuid> = many.iter().map(Event::id).collect();
    assert_eq!(
        newest_first.into_iter().rev().collect::<Vec<_>>(),
        oldest_first
    );
}

/// Two concurrent claimers never claim the same reminder; a fired reminder is never claimed again.
pub async fn claimers_never_share_a_reminder(store: Arc<dyn Store>) {
    let owner = user();
    let task = new_task(owner, "Claimed");
    let due = now() - Span::seconds(1);
    let reminders: Vec<Reminder> = (0..20).map(|_| reminder(&task, due)).collect();
    store
        .create_task(&task, &reminders, &[])
        .await
        .expect("create");
    let claim = |s: Arc<dyn Store>| async move {
        s.claim_due_reminders(now(), 15, Duration::from_secs(60))
            .await
    };
    let (a, b) = tokio::join!(claim(store.clone()), claim(store.clone()));
    let (a, b) = (a.expect("a"), b.expect("b"));
    let mine = |claims: &[crate::ReminderClaim]| -> Vec<ReminderId> {
        claims
            .iter()
            .filter(|c| c.reminder.owner == owner)
            .map(|c| c.reminder.id)
            .collect()
    };
    let (ma, mb) = (mine(&a), mine(&b));
    assert!(
        ma.iter().all(|id| !mb.contains(id)),
        "a reminder was claimed twice"
    );
    assert_eq!(ma.len() + mb.len(), 20);
    for c in a
        .iter()
        .chain(b.iter())
        .filter(|c| c.reminder.owner == owner)
    {
        assert_eq!(c.task_title, "Claimed");
        let event = triggered_event(&c.reminder, &c.task_title, now());
        assert!(
            store
                .fire_reminder(c.reminder.id, c.lease_token, &event, now())
                .await
                .expect("fire")
        );
        assert!(
            !store
                .fire_reminder(c.reminder.id, c.lease_token, &event, now())
                .await
                .expect("refire")
        );
    }
    let later = now() + Span::hours(1);
    let again = store
        .claim_due_reminders(later, 100, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(
        again.iter().all(|c| c.reminder.owner != owner),
        "a fired reminder was claimed again"
    );
}

/// Reminder triggers applied together: TRIGGERED (and audited, once) while the task is active, CANCELLED (and not
/// audited) otherwise, a reminder that already left PENDING keeps its state, an unknown id answers `None`.
pub async fn reminder_triggers_audit_what_ends_triggered(store: &dyn Store) {
    let owner = user();
    let task = new_task(owner, "Triggers");
    let rs: Vec<Reminder> = (0..3)
        .map(|i| reminder(&task, now() + Span::minutes(i)))
        .collect();
    store.create_task(&task, &rs, &[]).await.expect("create");
    let at = now() + Span::hours(1);
    let trigger = |r: &Reminder, task_active: bool| crate::ReminderTrigger {
        id: r.id,
        task_active,
        event: triggered_event(r, "Triggers", at),
    };
    let first = trigger(&rs[0], true);
    let batch = [
        first.clone(),
        trigger(&rs[1], false),
        first.clone(),
        // Never stored.
        trigger(&reminder(&task, at), true),
    ];
    let out = store.trigger_reminders(&batch, at).await.expect("apply");
    let states: Vec<Option<ReminderStatus>> =
        out.iter().map(|r| r.as_ref().map(|r| r.status)).collect();
    assert_eq!(
        states,
        [
            Some(ReminderStatus::Triggered),
            Some(ReminderStatus::Cancelled),
            Some(ReminderStatus::Triggered),
            None
        ]
    );
    // A cancelled reminder stays cancelled, a triggered one triggered, whatever the task says now.
    let (mut cancelled, mut triggered) = (batch[1].clone(), first.clone());
    cancelled.task_active = true;
    triggered.task_active = false;
    let again = store
        .trigger_reminders(&[cancelled, triggered], at)
        .await
        .expect("again");
    assert_eq!(
        again[0].as_ref().map(|r| r.status),
        Some(ReminderStatus::Cancelled)
    );
    assert_eq!(
        again[1].as_ref().map(|r| r.status),
        Some(ReminderStatus::Triggered)
    );
    assert!(
        store
            .trigger_reminders(&[], at)
            .await
            .expect("none")
            .is_empty()
    );
    let audited: Vec<Uuid> = store
        .list_audit(owner, 100, None)
        .await
        .expect("audit")
        .items
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        audited,
        vec![first.event.id()],
        "one row, for the triggered reminder"
    );
    assert_eq!(
        store.list_reminders(owner, task.id).await.expect("list")[2].status,
        ReminderStatus::Pending
    );
}

/// Claimed reminders fired together: each fires once, with its event, and only under its own claim.
pub async fn batched_fires_fire_each_claim_once(store: &dyn Store) {
    let owner = user();
    let task = new_task(owner, "Batched fires");
    let rs: Vec<Reminder> = (0..3)
        .map(|i| reminder(&task, now() - Span::seconds(60 + i)))
        .collect();
    store.create_task(&task, &rs, &[]).await.expect("create");
    let at = now() + Span::minutes(10);
    let claims = store
        .claim_due_reminders(at, 10_000, Duration::from_secs(10))
        .await
        .expect("claim");
    let token = |r: &Reminder| {
        claims
            .iter()
            .find(|c| c.reminder.id == r.id)
            .expect("claimed")
            .lease_token
    };
    let fire = |r: &Reminder, lease_token: Uuid| crate::ReminderFire {
        id: r.id,
        lease_token,
        event: triggered_event(r, "Batched fires", at),
    };
    let batch = [
        fire(&rs[0], token(&rs[0])),
        fire(&rs[1], token(&rs[1])),
        fire(&rs[0], token(&rs[0])),
        fire(&rs[2], Uuid::new_v4()),
    ];
    assert_eq!(
        store.fire_reminders(&batch, at).await.expect("fire"),
        [true, true, false, false]
    );
    assert_eq!(
        store
            .fire_reminders(&[fire(&rs[2], token(&rs[2]))], at)
            .await
            .expect("fire"),
        [true]
    );
    assert!(
        store
            .fire_reminders(&[], at)
            .await
            .expect("none")
            .is_empty()
    );
    let fired = outbox_task_ids(store, "todo.reminders", owner).await;
    assert_eq!(
        fired,
        vec![task.id.as_uuid(); 3],
        "one event per fired reminder"
    );
    for r in store.list_reminders(owner, task.id).await.expect("list") {
        assert_eq!(r.fired_at, Some(at), "{r:?}");
    }
}

/// A claim whose lease expired (its claimer crashed) is claimed again; the stale claimer cannot fire it.
pub async fn expired_lease_is_claimed_again(store: &dyn Store) {
    let owner = user();
    let task = new_task(owner, "Lease");
    let r = reminder(&task, now() - Span::seconds(5));
    store
        .create_task(&task, std::slice::from_ref(&r), &[])
        .await
        .expect("create");
    let first = claim_of(store, r.id, now(), Duration::from_secs(10)).await;
    let during = store
        .claim_due_reminders(now() + Span::seconds(5), 100, Duration::from_secs(10))
        .await
        .expect("claim");
    assert!(
        during.iter().all(|c| c.reminder.id != r.id),
        "claimed during its lease"
    );
    let after = store
        .claim_due_reminders(now() + Span::seconds(11), 100, Duration::from_secs(10))
        .await
        .expect("claim");
    let second = after
        .into_iter()
        .find(|c| c.reminder.id == r.id)
        .expect("reclaimed after the lease");
    let event = Event::new(
        SOURCE_BACKEND,
        now(),
        todo_events::TaskDeleted {
            task_id: task.id.as_uuid(),
            user_id: owner.as_uuid(),
            title: "x".into(),
            deleted_at: now(),
        },
    );
    assert!(
        !store
            .fire_reminder(r.id, first.lease_token, &event, now())
            .await
            .expect("stale")
    );
    assert!(
        store
            .fire_reminder(r.id, second.lease_token, &event, now())
            .await
            .expect("fire")
    );
}

/// Reminder transitions are monotonic: terminal states absorb, in either order.
pub async fn reminder_transitions_are_monotonic(store: &dyn Store) {
    let owner = user();
    let task = new_task(owner, "Transitions");
    let (a, b) = (
        reminder(&task, now() + Span::hours(1)),
        reminder(&task, now() + Span::hours(2)),
    );
    store
        .create_task(&task, &[a.clone(), b.clone()], &[])
        .await
        .expect("create");
    let trigger = ReminderInput::Trigger {
        task_active: true,
        at: now(),
    };
    let t = store
        .transition_reminder(a.id, &trigger, now())
        .await
        .expect("trigger");
    assert_eq!(t.status, ReminderStatus::Triggered);
    assert_eq!(
        store
            .cancel_pending_reminders(owner, task.id, now())
            .await
            .expect("cancel"),
        1
    );
    let again = store
        .transition_reminder(a.id, &ReminderInput::Suppress, now())
        .await
        .expect("suppress");
    assert_eq!(again.status, ReminderStatus::Triggered);
    let late = store
        .transition_reminder(b.id, &trigger, now())
        .await
        .expect("late trigger");
    assert_eq!(late.status, ReminderStatus::Cancelled);
    assert!(matches!(
        store.cancel_reminder(user(), a.id).await,
        Err(Error::NotFound)
    ));
    let listed = store.list_reminders(owner, task.id).await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.status).collect::<Vec<_>>(),
        [ReminderStatus::Triggered, ReminderStatus::Cancelled]
    );
}

/// An update with reminder changes commits both or neither, changes only the task's still pending, unfired
/// reminders, releases a scheduler's claim on a moved one and wakes the scheduler.
pub async fn task_update_moves_pending_reminders(store: Arc<dyn Store>) {
    let owner = user();
    let mut task = new_task(owner, "Dentist");
    task.due = Some(Due::on(NaiveDate::from_ymd_opt(2030, 3, 1).expect("date")));
    let lead = |r: Reminder| Reminder {
        lead: Some(LeadTime::parse("1h").expect("lead")),
        ..r
    };
    // Times far before any other behaviour's reminders, so only these are claimed below.
    let long_ago = now() - Span::days(4000);
    let pending = lead(reminder(&task, now() + Span::hours(1)));
    let absolute = reminder(&task, now() + Span::hours(2));
    let claimed = lead(reminder(&task, long_ago));
    let fired = lead(reminder(&task, long_ago));
    let triggered = lead(reminder(&task, now() + Span::hours(3)));
    let other_task = new_task(owner, "Other");
    let foreign = lead(reminder(&other_task, now() + Span::hours(1)));
    store
        .create_task(
            &task,
            &[
                pending.clone(),
                absolute.clone(),
                claimed.clone(),
                fired.clone(),
                triggered.clone(),
            ],
            &[],
        )
        .await
        .expect("create");
    store
        .create_task(&other_task, std::slice::from_ref(&foreign), &[])
        .await
        .expect("create other");
    let claims = store
        .claim_due_reminders(long_ago, 10, Duration::from_secs(600))
        .await
        .expect("claim");
    let claim_of = |id: ReminderId| {
        claims
            .iter()
            .find(|c| c.reminder.id == id)
            .map(|c| c.lease_token)
            .expect("claimed")
    };
    let (claimed_token, fired_token) = (claim_of(claimed.id), claim_of(fired.id));
    assert!(
        store
            .fire_reminder(
                fired.id,
                fired_token,
                &triggered_event(&fired, "Dentist", now()),
                now()
            )
            .await
            .expect("fire")
    );
    store
        .transition_reminder(
            triggered.id,
            &ReminderInput::Trigger {
                task_active: true,
                at: now(),
            },
            now(),
        )
        .await
        .expect("trigger");

    let expected = task.version;
    task.apply(
        TaskPatch {
            due: Some(Some(Due::on(
                NaiveDate::from_ymd_opt(2030, 3, 2).expect("date"),
            ))),
            ..Default::default()
        },
        now(),
    );
    let moved_to = now() + Span::hours(25);
    let changes = [
        crate::ReminderChange::Reschedule {
            id: pending.id,
            remind_at: moved_to,
        },
        crate::ReminderChange::Reschedule {
            id: claimed.id,
            remind_at: moved_to,
        },
        crate::ReminderChange::Reschedule {
            id: fired.id,
            remind_at: moved_to,
        },
        crate::ReminderChange::Cancel { id: triggered.id },
        crate::ReminderChange::Cancel { id: foreign.id },
    ];
    // A stale version writes nothing, reminders included.
    let before = store.list_reminders(owner, task.id).await.expect("list");
    assert!(matches!(
        store
            .update_task_with_reminders(&task, expected - 1, &[], &changes)
            .await,
        Err(Error::Conflict)
    ));
    assert_eq!(
        store.list_reminders(owner, task.id).await.expect("list"),
        before
    );

    let updated = Event::new(
        SOURCE_BACKEND,
        now(),
        todo_events::TaskUpdated {
            task_id: task.id.as_uuid(),
            user_id: owner.as_uuid(),
            changes: Default::default(),
            updated_at: now(),
        },
    );
    let mut scheduler = store.reminders_changed();
    let changed = store
        .update_task_with_reminders(&task, expected, std::slice::from_ref(&updated), &changes)
        .await
        .expect("update");
    assert_eq!(
        changed, 2,
        "only the pending, unfired reminders of the task change"
    );
    assert!(
        woken(&mut scheduler),
        "the scheduler's wake-up, armed before the update, was not woken by the time it returned"
    );
    assert_eq!(store.get_task(owner, task.id).await.expect("get"), task);
    let outbox = store
        .outbox_after(updated.topic().name(), 0, 100_000)
        .await
        .expect("outbox");
    assert!(outbox.iter().any(|r| r.event_id == Some(updated.id())));

    let by_id = |list: &[Reminder], id: ReminderId| {
        list.iter().find(|r| r.id == id).cloned().expect("listed")
    };
    let after = store.list_reminders(owner, task.id).await.expect("list");
    assert_eq!(by_id(&after, pending.id).remind_at, moved_to);
    assert_eq!(by_id(&after, pending.id).status, ReminderStatus::Pending);
    assert_eq!(by_id(&after, absolute.id), absolute);
    assert_eq!(by_id(&after, claimed.id).remind_at, moved_to);
    assert_eq!(by_id(&after, fired.id).remind_at, long_ago);
    assert_eq!(
        by_id(&after, triggered.id).status,
        ReminderStatus::Triggered
    );
    let foreign_after = store
        .list_reminders(owner, other_task.id)
        .await
        .expect("list");
    assert_eq!(foreign_after, std::slice::from_ref(&foreign));
    // The claim at the old time is released: its holder cannot fire it, and it is not due before its new time.
    assert!(
        !store
            .fire_reminder(
                claimed.id,
                claimed_token,
                &triggered_event(&claimed, "Dentist", now()),
                now()
            )
            .await
            .expect("stale fire")
    );
    let early = store
        .claim_due_reminders(moved_to - Span::seconds(1), 100, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(
        early
            .iter()
            .all(|c| c.reminder.id != pending.id && c.reminder.id != claimed.id)
    );

    // A cancellation through an update.
    let expected = task.version;
    task.apply(
        TaskPatch {
            due: Some(None),
            ..Default::default()
        },
        now(),
    );
    let changed = store
        .update_task_with_reminders(
            &task,
            expected,
            &[],
            &[crate::ReminderChange::Cancel { id: pending.id }],
        )
        .await
        .expect("update");
    assert_eq!(changed, 1);
    let after = store.list_reminders(owner, task.id).await.expect("list");
    assert_eq!(by_id(&after, pending.id).status, ReminderStatus::Cancelled);
}

/// Filters, full-text search, sorts and cursor pages.
pub async fn list_filters_search_and_pages(store: &dyn Store) {
    let owner = user();
    let specs = [
        ("Buy milk", Priority::Low, vec!["home"], Some(1)),
        (
            "Write quarterly report",
            Priority::Urgent,
            vec!["work"],
            Some(3),
        ),
        (
            "Call the plumber",
            Priority::High,
            vec!["home", "repairs"],
            None,
        ),
        (
            "Plan 100% of the trip",
            Priority::Medium,
            vec!["travel_plans"],
            Some(2),
        ),
    ];
    for (title, priority, tags, due_day) in specs {
        let mut t = new_task(owner, title);
        t.priority = priority;
        t.tags = Tags::parse(tags).expect("tags");
        t.due = due_day.map(|d| Due::on(NaiveDate::from_ymd_opt(2030, 3, d).expect("date")));
        store.create_task(&t, &[], &[]).await.expect("create");
    }
    let titles = |page: &crate::TaskPage| {
        page.items
            .iter()
            .map(|t| t.title.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let q = TaskQuery {
        sort: TaskSort::Priority,
        descending: true,
        ..Default::default()
    };
    assert_eq!(
        titles(&store.list_tasks(owner, &q).await.expect("priority"))[0],
        "Write quarterly report"
    );
    let q = TaskQuery {
        tags: vec!["home".into()],
        ..Default::default()
    };
    assert_eq!(
        store.list_tasks(owner, &q).await.expect("tags").items.len(),
        2
    );
    let q = TaskQuery {
        tags: vec!["home".into(), "repairs".into()],
        tag_match: TagMatch::All,
        ..Default::default()
    };
    assert_eq!(
        titles(&store.list_tasks(owner, &q).await.expect("all")),
        ["Call the plumber"]
    );
    let q = TaskQuery {
        tags: vec!["travel%".into()],
        ..Default::default()
    };
    assert!(
        store
            .list_tasks(owner, &q)
            .await
            .expect("wildcards are literal")
            .items
            .is_empty()
    );
    let q = TaskQuery {
        search: Some("PLUMBER".into()),
        ..Default::default()
    };
    assert_eq!(
        titles(&store.list_tasks(owner, &q).await.expect("search")),
        ["Call the plumber"]
    );
    let q = TaskQuery {
        search: Some("\" OR 1=1; --".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_tasks(owner, &q)
            .await
            .expect("hostile search")
            .items
            .is_empty()
    );
    let q = TaskQuery {
        sort: TaskSort::Due,
        ..Default::default()
    };
    assert_eq!(
        titles(&store.list_tasks(owner, &q).await.expect("due")),
        [
            "Buy milk",
            "Plan 100% of the trip",
            "Write quarterly report",
            "Call the plumber"
        ]
    );
    let from = NaiveDate::from_ymd_opt(2030, 3, 2);
    let q = TaskQuery {
        due_from: from,
        sort: TaskSort::Due,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tasks(owner, &q)
            .await
            .expect("range")
            .items
            .len(),
        2
    );
    let mut seen = Vec::new();
    let mut q = TaskQuery {
        sort: TaskSort::Title,
        limit: 3,
        ..Default::default()
    };
    loop {
        let page = store.list_tasks(owner, &q).await.expect("page");
        seen.extend(titles(&page));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "Buy milk",
            "Call the plumber",
            "Plan 100% of the trip",
            "Write quarterly report"
        ]
    );
    let q = TaskQuery {
        sort: TaskSort::Due,
        cursor: Some("zz".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.list_tasks(owner, &q).await,
        Err(Error::InvalidCursor)
    ));
}

/// The full-text index follows creates, updates (title and description) and deletes.
pub async fn search_follows_updates_and_deletes(store: &dyn Store) {
    let owner = user();
    let find = |word: &str| {
        let q = TaskQuery {
            search: Some(word.to_owned()),
            ..Default::default()
        };
        async move {
            store
                .list_tasks(owner, &q)
                .await
                .expect("search")
                .items
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let mut task = new_task(owner, "Paint the fence");
    task.description =
        Some(todo_domain::Description::parse("white, two coats").expect("description"));
    store.create_task(&task, &[], &[]).await.expect("create");
    assert_eq!(find("fence").await, [task.id]);
    assert_eq!(find("coats").await, [task.id]);
    let v1 = task.version;
    task.apply(
        TaskPatch {
            title: Some(Title::parse("Paint the gate").expect("title")),
            ..Default::default()
        },
        now(),
    );
    task.description = None;
    store.update_task(&task, v1, &[]).await.expect("update");
    assert!(find("fence").await.is_empty());
    assert!(find("coats").await.is_empty());
    assert_eq!(find("gate").await, [task.id]);
    let v2 = task.version;
    task.complete(now());
    store.update_task(&task, v2, &[]).await.expect("complete");
    assert_eq!(find("gate").await, [task.id]);
    store
        .delete_task(owner, task.id, &[])
        .await
        .expect("delete");
    assert!(find("gate").await.is_empty());
}

fn raw_record(topic: &str, i: usize) -> crate::NewOutboxRecord {
    crate::NewOutboxRecord {
        topic: topic.to_owned(),
        key: None,
        headers: Vec::new(),
        payload: format!("row {i}").into_bytes(),
    }
}

/// Pruning deletes old rows that every reader of their topic passed, or that were published when their topic has
/// no reader; never a row a reader's cursor has not passed, an unpublished row nobody reads, or a topic's newest.
pub async fn prune_keeps_what_readers_need(store: &dyn Store) {
    let id = Uuid::new_v4().simple().to_string();
    let (read, unread, published) = (
        format!("read-{id}"),
        format!("unread-{id}"),
        format!("published-{id}"),
    );
    let append = |topic: String| async move {
        let records: Vec<_> = (0..4).map(|i| raw_record(&topic, i)).collect();
        store.append_outbox(&records).await.expect("append")
    };
    let (r, u, p) = (
        append(read.clone()).await,
        append(unread.clone()).await,
        append(published.clone()).await,
    );
    store.mark_published(&p, Utc::now()).await.expect("mark");
    let reader = |name: &str| crate::OutboxReader {
        consumer: format!("{name}-{id}"),
        topic: read.clone(),
    };
    let readers = [reader("fast"), reader("slow")];
    store
        .set_cursor(&readers[0].consumer, r[3])
        .await
        .expect("cursor");
    store
        .set_cursor(&readers[1].consumer, r[1])
        .await
        .expect("cursor");
    let later = Utc::now() + Span::minutes(1);
    let seqs = |topic: String| async move {
        store
            .outbox_after(&topic, 0, 100)
            .await
            .expect("read")
            .iter()
            .map(|row| row.seq)
            .collect::<Vec<_>>()
    };

    // Nothing is old enough yet.
    let earlier = Utc::now() - Span::minutes(1);
    assert_eq!(
        store
            .prune_outbox(earlier, &readers, 100)
            .await
            .expect("prune"),
        0
    );

    // A limit bounds one call; the oldest rows go first.
    assert_eq!(
        store.prune_outbox(later, &readers, 1).await.expect("prune"),
        1
    );
    assert_eq!(seqs(read.clone()).await, r[1..]);
    // What was deleted is recorded (other writers of a shared database may have deleted later rows).
    let pruned_through = || async { store.outbox_pruned_through().await.expect("pruned") };
    assert!(pruned_through().await >= r[0]);

    // A reader without a stored cursor has passed nothing.
    let mut with_new = readers.to_vec();
    with_new.push(reader("new"));
    let pruned = store
        .prune_outbox(later, &with_new, 100)
        .await
        .expect("prune");
    assert_eq!(seqs(read.clone()).await, r[1..]);
    assert_eq!(
        seqs(published.clone()).await,
        p[3..],
        "published rows go whoever reads other topics"
    );
    assert!(pruned >= 3);

    // The slowest reader bounds its topic; unpublished rows nobody reads stay; the newest row of a topic stays.
    store
        .prune_outbox(later, &readers, 100)
        .await
        .expect("prune");
    assert_eq!(seqs(read.clone()).await, r[2..]);
    store
        .set_cursor(&readers[1].consumer, r[3])
        .await
        .expect("cursor");
    store
        .prune_outbox(later, &readers, 100)
        .await
        .expect("prune");
    assert_eq!(seqs(read.clone()).await, r[3..]);
    assert_eq!(
        store.outbox_bounds(&read).await.expect("bounds"),
        (r[3], r[3])
    );
    assert_eq!(seqs(unread.clone()).await, u);
    assert!(pruned_through().await >= r[2]);
    // Every row after the recorded sequence is still there.
    let through = pruned_through().await;
    for (topic, rows) in [(&read, &r), (&unread, &u), (&published, &p)] {
        let kept = seqs(topic.clone()).await;
        let after: Vec<i64> = rows.iter().copied().filter(|&s| s > through).collect();
        assert!(
            after.iter().all(|s| kept.contains(s)),
            "{topic}: {after:?} after {through}, kept {kept:?}"
        );
    }
}

/// The relay lease, taken by `store` once its last holder let it go: on PostgreSQL the lock goes when the server has
/// ended the holder's session, a moment after the lease was dropped. Fails after 10 s.
async fn lease_once_freed(store: &dyn Store) -> crate::RelayLease {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(lease) = store.try_acquire_relay_lease().await.expect("acquire") {
            return lease;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One relay holds the lease at a time; when the holder gives it up, another claimant takes it.
/// `a` and `b` are two replicas over the same database (or the same store twice).
pub async fn relay_lease_has_one_holder(a: &dyn Store, b: &dyn Store) {
    let mut first = a
        .try_acquire_relay_lease()
        .await
        .expect("acquire")
        .expect("a free lease is taken");
    assert!(first.is_held().await);
    for claimant in [a, b] {
        assert!(
            claimant
                .try_acquire_relay_lease()
                .await
                .expect("acquire")
                .is_none(),
            "a held lease is not taken twice"
        );
    }
    assert!(first.is_held().await);
    drop(first);
    let mut second = lease_once_freed(b).await;
    assert!(second.is_held().await);
    assert!(
        a.try_acquire_relay_lease()
            .await
            .expect("acquire")
            .is_none()
    );
    drop(second);
}

/// Whether a wake-up has fired, without waiting.
fn woken(wakeup: &mut crate::Wakeup) -> bool {
    use std::future::Future as _;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(wakeup).poll(&mut cx).is_ready()
}

/// Wake-ups armed before a commit are woken by the time the write returns, whether or not anyone waited on them
/// yet (a waiter arms, reads, then waits: a commit between its read and its wait is not missed); the outbox's by
/// every write with events, the reminders' by every write that adds or fires reminders.
pub async fn commits_wake_what_was_armed_before_them(store: &dyn Store) {
    let owner = user();
    let mut outbox = store.outbox_changed();
    let mut reminders = store.reminders_changed();
    let task = new_task(owner, "wake-ups");
    store
        .create_task(&task, &[], &[created(&task)])
        .await
        .expect("create");
    assert!(
        woken(&mut outbox),
        "a create with an event wakes the outbox's waiters"
    );

    let mut outbox = store.outbox_changed();
    let task = new_task(owner, "wake-ups with a reminder");
    let due = reminder(&task, now() - Span::seconds(1));
    store
        .create_task(&task, std::slice::from_ref(&due), &[created(&task)])
        .await
        .expect("create");
    assert!(
        woken(&mut outbox),
        "a create with an event wakes the outbox's waiters"
    );
    assert!(
        woken(&mut reminders),
        "a create with a reminder wakes the scheduler"
    );

    let mut outbox = store.outbox_changed();
    let claim = claim_of(store, due.id, now(), Duration::from_secs(60)).await;
    let fire = crate::ReminderFire {
        id: due.id,
        lease_token: claim.lease_token,
        event: triggered_event(&due, "wake-ups with a reminder", now()),
    };
    assert_eq!(
        store.fire_reminders(&[fire], now()).await.expect("fire"),
        [true]
    );
    assert!(
        woken(&mut outbox),
        "a fired reminder's event wakes the outbox's waiters"
    );
}

/// Runs every behaviour.
pub async fn run_all(store: Arc<dyn Store>) {
    tasks_round_trip_and_are_scoped_by_owner(store.as_ref()).await;
    stale_version_is_a_conflict(store.as_ref()).await;
    concurrent_completions_complete_once(store.clone()).await;
    concurrent_creates_land_or_fail_alone(store.clone()).await;
    consumer_writes_proceed_under_create_load(store.clone()).await;
    outbox_keeps_order_and_cursors(store.as_ref()).await;
    next_instance_is_applied_once(store.as_ref()).await;
    audit_is_insert_if_absent_and_paged(store.as_ref()).await;
    audit_batches_insert_each_event_once(store.as_ref()).await;
    claimers_never_share_a_reminder(store.clone()).await;
    expired_lease_is_claimed_again(store.as_ref()).await;
    batched_fires_fire_each_claim_once(store.as_ref()).await;
    reminder_triggers_audit_what_ends_triggered(store.as_ref()).await;
    reminder_transitions_are_monotonic(store.as_ref()).await;
    list_filters_search_and_pages(store.as_ref()).await;
    search_follows_updates_and_deletes(store.as_ref()).await;
    prune_keeps_what_readers_need(store.as_ref()).await;
    relay_lease_has_one_holder(store.as_ref(), store.as_ref()).await;
    task_update_moves_pending_reminders(store.clone()).await;
    commits_wake_what_was_armed_before_them(store.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_in_memory_passes_the_contract() {
        let store = crate::SqliteStore::connect(&crate::SqliteConfig::memory())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        run_all(Arc::new(store)).await;
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_file_passes_the_contract() {
        let dir = std::env::temp_dir().join(format!("todo-store-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = crate::SqliteStore::connect(&crate::SqliteConfig::file(dir.join("todo.db")))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("migrations are idempotent");
        run_all(Arc::new(store)).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A fresh PostgreSQL database per run, from `TODO_TEST_DATABASE_URL` (required under `CI=true`).
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_passes_the_contract() {
        let Some(url) = server_url() else { return };
        let name = format!("todo_contract_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&url)
            .await
            .expect("connect to TODO_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        let db_url = match url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TODO_TEST_DATABASE_URL has no database path"),
        };
        let store = crate::PgStore::connect(&crate::PgConfig::new(db_url.clone()))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("migrations are idempotent");
        run_all(Arc::new(store.clone())).await;
        let replica = crate::PgStore::connect(&crate::PgConfig::new(db_url))
            .await
            .expect("connect");
        relay_lease_has_one_holder(&store, &replica).await;
        relay_lease_dies_with_its_session(&store, &replica).await;
        commits_wake_other_processes(&store, &replica).await;
        replica.pool.close().await;
        store.pool.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .expect("drop database");
    }

    /// A commit in one process wakes the outbox and reminder waiters of another (`LISTEN/NOTIFY`, sent after the
    /// commit): well before the waiters' own timeout.
    #[cfg(feature = "postgres")]
    async fn commits_wake_other_processes(store: &crate::PgStore, replica: &crate::PgStore) {
        use crate::Store as _;
        for with_reminder in [false, true] {
            let started = std::time::Instant::now();
            let waiter = if with_reminder {
                replica.reminders_changed()
            } else {
                replica.outbox_changed()
            };
            let task = new_task(user(), "wake the others");
            let reminders = if with_reminder {
                vec![reminder(&task, now() + chrono::Duration::hours(1))]
            } else {
                Vec::new()
            };
            store
                .create_task(&task, &reminders, &[created(&task)])
                .await
                .expect("create");
            let woken = tokio::time::timeout(Duration::from_secs(20), waiter).await;
            assert!(
                woken.is_ok(),
                "the other process was not woken (waited {:?}, reminder: {with_reminder})",
                started.elapsed()
            );
        }
    }

    /// A relay whose session ends (its process died, its connection broke) loses the lease, and another replica
    /// takes it.
    #[cfg(feature = "postgres")]
    async fn relay_lease_dies_with_its_session(store: &crate::PgStore, replica: &crate::PgStore) {
        // The lease of the behaviour before goes with its session, a moment after it was dropped.
        let mut lease = lease_once_freed(store).await;
        assert!(
            replica
                .try_acquire_relay_lease()
                .await
                .expect("acquire")
                .is_none()
        );
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS t",
        )
        .fetch_one(&replica.pool)
        .await
        .expect("end the holder's session");
        assert_eq!(ended, 1);
        assert!(!lease.is_held().await);
        let mut taken = lease_once_freed(replica).await;
        assert!(taken.is_held().await);
    }

    #[cfg(feature = "postgres")]
    fn server_url() -> Option<String> {
        match std::env::var("TODO_TEST_DATABASE_URL") {
            Ok(v) if !v.trim().is_empty() => Some(v),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "TODO_TEST_DATABASE_URL is not set: under CI=true PostgreSQL must be running"
                )
            }
            _ => {
                eprintln!(
                    "\n*** SKIPPED: TODO_TEST_DATABASE_URL is not set; run `bash tests/run.sh` ***\n"
                );
                None
            }
        }
    }
}
