//! The design's flows (4.2 to 4.6) and the recurrence and reminder scenarios, against real processes, in both
//! wirings.
//!
//! Each wiring starts once and runs the scenarios concurrently, each as its own user (users only see their own
//! data, so the scenarios cannot disturb each other); then it replays every topic in full and checks that the
//! duplicates changed nothing. Fault injection, retries, the dead-letter topic and its replay run on a deployment
//! of their own, started with `--fault-inject`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use chrono::{Datelike as _, Duration as Days, NaiveDate, Utc};
use serde_json::{Value, json};
use todo_e2e::harness::{Api, audit_counts, eventually};

use crate::system::{Mode, Options, System, strings};

/// How long the pipeline may take to reach a state before a scenario fails (generous: the machine is shared).
const PATIENCE: Duration = Duration::from_secs(60);

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Waits until the user's audit log holds exactly `expected` rows of each `(task, type)` named and returns it.
async fn audit_reaches(api: &Api, expected: &[(&str, &str, usize)]) -> anyhow::Result<Vec<Value>> {
    eventually("audit rows", PATIENCE, || async {
        let audit = api.audit().await?;
        let counts = audit_counts(&audit);
        let missing: Vec<String> = expected
            .iter()
            .filter(|(task, ty, n)| {
                counts
                    .get(&((*task).to_owned(), (*ty).to_owned()))
                    .copied()
                    .unwrap_or(0)
                    != *n
            })
            .map(|(task, ty, n)| format!("{ty} x{n} for {task}"))
            .collect();
        Ok(if missing.is_empty() {
            Ok(audit)
        } else {
            Err(format!("missing {missing:?}; audit has {counts:?}"))
        })
    })
    .await
}

/// 4.2: a created task is audited once; the recurrence consumer leaves it alone.
async fn create_is_audited(api: Api) -> anyhow::Result<()> {
    let due = today() + Days::days(1);
    let task = api
        .create(json!({"title": "Buy groceries", "due_date": due, "recurrence": "daily"}))
        .await?;
    let id = s(&task["id"]);
    let audit = audit_reaches(&api, &[(&id, "task.created", 1)]).await?;
    ensure!(audit.len() == 1, "one event, one row: {audit:?}");
    let row = &audit[0];
    ensure!(
        row["payload"]["data"]["title"] == "Buy groceries",
        "the audit row keeps the event: {row}"
    );
    ensure!(
        row["payload"]["specversion"] == "1.0" && row["payload"]["id"] == row["event_id"],
        "the audit row keeps the CloudEvents envelope: {row}"
    );
    let tasks = api.all_tasks().await?;
    ensure!(
        tasks.len() == 1,
        "no next instance for a task that is not completed: {tasks:?}"
    );
    Ok(())
}

/// 4.3: completing a recurring task creates the next instance with its reminders and suppresses the old ones.
async fn completion_creates_next_instance_and_suppresses(api: Api) -> anyhow::Result<()> {
    let due = today() + Days::days(3);
    let task = api
        .create(
            json!({"title": "Water plants", "due_date": due, "due_time": "10:00",
                       "recurrence": "daily", "reminders": ["30min"]}),
        )
        .await?;
    let id = s(&task["id"]);
    let before = api.reminders(&id).await?;
    ensure!(
        before.len() == 1 && before[0]["status"] == "PENDING",
        "{before:?}"
    );
    let done = api.complete(&id).await?;
    ensure!(done["completed_now"] == true, "{done}");
    let next_due = due + Days::days(1);
    ensure!(done["next_due_date"] == json!(next_due), "{done}");

    let next = eventually("next instance", PATIENCE, || async {
        let tasks = api.all_tasks().await?;
        Ok(tasks
            .iter()
            .find(|t| t["id"] != json!(id))
            .cloned()
            .ok_or_else(|| format!("tasks: {tasks:?}")))
    })
    .await?;
    ensure!(next["status"] == "active", "{next}");
    ensure!(next["due_date"] == json!(next_due), "{next}");
    ensure!(next["series_index"] == 1, "{next}");
    ensure!(
        next["series_id"] == done["task"]["series_id"],
        "same series: {next} / {done}"
    );
    let next_id = s(&next["id"]);
    audit_reaches(
        &api,
        &[
            (&id, "task.created", 1),
            (&id, "task.completed", 1),
            (&next_id, "task.created", 1),
        ],
    )
    .await?;
    // The next instance's reminder, re-created from the lead time.
    let reminders = api.reminders(&next_id).await?;
    ensure!(reminders.len() == 1, "{reminders:?}");
    let expected_at = next_due.and_hms_opt(9, 30, 0).context("time")?.and_utc();
    ensure!(
        reminders[0]["status"] == "PENDING"
            && reminders[0]["remind_at"] == json!(expected_at)
            && reminders[0]["lead_time"].is_string(),
        "{reminders:?} (expected {expected_at})"
    );
    // Suppression cancels the completed task's pending reminder.
    eventually("suppression", PATIENCE, || async {
        let old = api.reminders(&id).await?;
        Ok(if old.iter().all(|r| r["status"] == "CANCELLED") {
            Ok(())
        } else {
            Err(format!("{old:?}"))
        })
    })
    .await
}

/// 4.4: a reminder fires on time and is audited once.
async fn reminder_fires_on_time(api: Api) -> anyhow::Result<()> {
    let task = api
        .create(json!({"title": "Call the dentist", "due_date": today() + Days::days(10)}))
        .await?;
    let id = s(&task["id"]);
    let at = Utc::now() + Days::seconds(2);
    let reminder = api.remind(&id, json!({"remind_at": at})).await?;
    ensure!(reminder["status"] == "PENDING", "{reminder}");
    let fired = eventually("reminder fired", PATIENCE, || async {
        let r = api.reminders(&id).await?;
        Ok(match r.first() {
            Some(r) if r["status"] == "TRIGGERED" => Ok(r.clone()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    let fired_at: chrono::DateTime<Utc> = serde_json::from_value(fired["fired_at"].clone())?;
    let remind_at: chrono::DateTime<Utc> = serde_json::from_value(fired["remind_at"].clone())?;
    let delay = fired_at - remind_at;
    // Not a performance assertion (docs/benchmarks.md has the measured fire delay): never early, and within the
    // scheduler's wake-up rather than a polling period.
    ensure!(
        delay >= Days::zero() && delay < Days::seconds(10),
        "fired {delay} after remind_at: {fired}"
    );
    let audit = audit_reaches(
        &api,
        &[(&id, "task.created", 1), (&id, "reminder.triggered", 1)],
    )
    .await?;
    let row = audit
        .iter()
        .find(|r| r["event_type"] == "reminder.triggered")
        .context("row")?;
    ensure!(
        row["payload"]["data"]["reminder_id"] == reminder["id"],
        "{row}"
    );
    Ok(())
}

/// A reminder suppressed by completion before it fires is cancelled and never triggered.
async fn reminder_suppressed_before_it_fires(api: Api) -> anyhow::Result<()> {
    let task = api
        .create(json!({"title": "Pay rent", "due_date": today() + Days::days(10)}))
        .await?;
    let id = s(&task["id"]);
    let at = Utc::now() + Days::seconds(3);
    api.remind(&id, json!({"remind_at": at})).await?;
    api.complete(&id).await?;
    eventually("reminder cancelled", PATIENCE, || async {
        let r = api.reminders(&id).await?;
        Ok(if r.len() == 1 && r[0]["status"] == "CANCELLED" {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        })
    })
    .await?;
    // Past its time, it stays cancelled and nothing was triggered.
    let wait = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    let r = api.reminders(&id).await?;
    ensure!(r[0]["status"] == "CANCELLED", "{r:?}");
    let audit = api.audit().await?;
    ensure!(
        audit
            .iter()
            .all(|a| a["event_type"] != "reminder.triggered"),
        "{audit:?}"
    );
    Ok(())
}

/// A weekly task completed three times gives three instances, one week apart, indexed 1 to 3.
async fn recurring_task_completed_three_times(api: Api) -> anyhow::Result<()> {
    let first_due = today() + Days::days(2);
    let task = api
        .create(json!({"title": "Team sync", "due_date": first_due, "recurrence": "weekly"}))
        .await?;
    let mut current = s(&task["id"]);
    for n in 1..=3u32 {
        api.complete(&current).await?;
        let next = eventually("next instance", PATIENCE, || async {
            let tasks = api.all_tasks().await?;
            Ok(tasks
                .iter()
                .find(|t| t["series_index"] == n && t["status"] == "active")
                .cloned()
                .ok_or_else(|| format!("{tasks:?}")))
        })
        .await?;
        let expected = first_due + Days::weeks(i64::from(n));
        ensure!(next["due_date"] == json!(expected), "instance {n}: {next}");
        current = s(&next["id"]);
    }
    let tasks = api.all_tasks().await?;
    let completed = tasks.iter().filter(|t| t["status"] == "completed").count();
    ensure!(
        tasks.len() == 4 && completed == 3,
        "the original and three instances: {tasks:?}"
    );
    let series: HashSet<String> = tasks.iter().map(|t| s(&t["series_id"])).collect();
    ensure!(series.len() == 1, "one series: {series:?}");
    Ok(())
}

/// A weekly task completed weeks late: the next instance is the next occurrence after today, on the same weekday.
async fn late_completion_of_weekly_task(api: Api) -> anyhow::Result<()> {
    let due = today() - Days::days(22);
    let task = api
        .create(json!({"title": "Take out the bins", "due_date": due, "recurrence": "weekly"}))
        .await?;
    let id = s(&task["id"]);
    api.complete(&id).await?;
    let next = eventually("next instance", PATIENCE, || async {
        let tasks = api.all_tasks().await?;
        Ok(tasks
            .iter()
            .find(|t| t["id"] != json!(id))
            .cloned()
            .ok_or_else(|| format!("{tasks:?}")))
    })
    .await?;
    let next_due: NaiveDate = serde_json::from_value(next["due_date"].clone())?;
    ensure!(
        next_due > today() && next_due <= today() + Days::days(7),
        "missed occurrences are skipped: {next_due} (was {due})"
    );
    ensure!(next_due.weekday() == due.weekday(), "same weekday: {next}");
    ensure!(
        api.all_tasks().await?.len() == 2,
        "one instance, not one per missed week"
    );
    Ok(())
}

/// Two concurrent completions of one recurring task complete it once and create one next instance.
async fn concurrent_completion_of_recurring_task(api: Api) -> anyhow::Result<()> {
    let task = api
        .create(json!({"title": "Stand-up", "due_date": today() + Days::days(1), "recurrence": "daily"}))
        .await?;
    let id = s(&task["id"]);
    let (a, b) = tokio::join!(api.complete(&id), api.complete(&id));
    let (a, b) = (a?, b?);
    let now: Vec<bool> = [&a, &b]
        .iter()
        .map(|c| c["completed_now"] == true)
        .collect();
    ensure!(
        now.iter().filter(|n| **n).count() == 1,
        "exactly one request completes it: {a} / {b}"
    );
    let next = eventually("next instance", PATIENCE, || async {
        let tasks = api.all_tasks().await?;
        Ok(if tasks.len() >= 2 {
            Ok(tasks)
        } else {
            Err(format!("{tasks:?}"))
        })
    })
    .await?;
    let next_id = next
        .iter()
        .find(|t| t["id"] != json!(id))
        .map(|t| s(&t["id"]))
        .context("next")?;
    audit_reaches(
        &api,
        &[
            (&id, "task.created", 1),
            (&id, "task.completed", 1),
            (&next_id, "task.created", 1),
        ],
    )
    .await?;
    // Give a wrongly duplicated instance time to appear before concluding there is none.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tasks = api.all_tasks().await?;
    ensure!(tasks.len() == 2, "one next instance: {tasks:?}");
    Ok(())
}

/// What a user can observe: tasks, reminders and audit log (ids, statuses, counts).
async fn snapshot(api: &Api) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let tasks = api.all_tasks().await?;
    for t in &tasks {
        let id = s(&t["id"]);
        let reminders: Vec<Value> = api
            .reminders(&id)
            .await?
            .into_iter()
            .map(|r| json!([r["id"], r["status"], r["remind_at"]]))
            .collect();
        out.insert(
            format!("task {id}"),
            json!([t["status"], t["version"], t["due_date"], reminders]),
        );
    }
    let mut audit: Vec<String> = api
        .audit()
        .await?
        .iter()
        .map(|a| s(&a["event_id"]))
        .collect();
    audit.sort();
    out.insert("audit".into(), json!(audit));
    Ok(out)
}

/// Republishes every record of the three topics (4.6, and "replaying a whole topic changes nothing"), waits until
/// the consumers have processed all of them, and returns how many were replayed per topic.
async fn replay_all_topics(system: &System) -> anyhow::Result<BTreeMap<String, usize>> {
    let before = system.consumer_metrics().await?;
    // There is no CLI command for a full replay (operators replay dead letters); the tests do it with the
    // library, through the same broker wiring the binary uses.
    let replayed = crate::replay::republish_everything(system).await?;
    let expected: BTreeMap<&str, usize> = [
        (
            "audit-consumer",
            replayed["todo.task-events"] + replayed["todo.task-updates"],
        ),
        ("recurrence-consumer", replayed["todo.task-events"]),
        ("reminder-suppression", replayed["todo.task-events"]),
        ("reminder-consumer", replayed["todo.reminders"]),
    ]
    .into();
    eventually("replayed records processed", PATIENCE, || async {
        let now = system.consumer_metrics().await?;
        let behind: Vec<String> = expected
            .iter()
            .filter_map(|(group, n)| {
                let key = ("processed".to_owned(), (*group).to_owned());
                let was = before.get(&key).copied().unwrap_or(0.0);
                let is = now.get(&key).copied().unwrap_or(0.0);
                (is < was + *n as f64).then(|| format!("{group}: {is} < {was} + {n}"))
            })
            .collect();
        Ok(if behind.is_empty() {
            Ok(())
        } else {
            Err(behind.join(", "))
        })
    })
    .await?;
    Ok(replayed)
}

async fn flows(mode: Mode) {
    let Some(system) = System::start(mode, &Options::default())
        .await
        .expect("deployment starts")
    else {
        return;
    };
    let result = run_flows(&system).await;
    let logs = system.logs();
    system.stop().await;
    if let Err(e) = result {
        panic!("{mode:?}: {e:#}\n\n{logs}");
    }
}

async fn run_flows(system: &System) -> anyhow::Result<()> {
    let users: Vec<Api> = (0..7).map(|_| system.user()).collect::<Result<_, _>>()?;
    let named = [
        "4.2 create -> audit",
        "4.3 complete -> next instance + suppression",
        "4.4 reminder fires on time",
        "reminder suppressed before it fires",
        "recurring task completed three times",
        "late completion of a weekly task",
        "concurrent completion of a recurring task",
    ];
    let results = tokio::join!(
        create_is_audited(users[0].clone()),
        completion_creates_next_instance_and_suppresses(users[1].clone()),
        reminder_fires_on_time(users[2].clone()),
        reminder_suppressed_before_it_fires(users[3].clone()),
        recurring_task_completed_three_times(users[4].clone()),
        late_completion_of_weekly_task(users[5].clone()),
        concurrent_completion_of_recurring_task(users[6].clone()),
    );
    let results = [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6,
    ];
    let failures: Vec<String> = named
        .iter()
        .zip(results)
        .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e:#}")))
        .collect();
    ensure!(failures.is_empty(), "{}", failures.join("\n"));

    // 4.6 and a whole replay: every record delivered again changes nothing any user can see.
    let mut before = Vec::new();
    for u in &users {
        before.push(snapshot(u).await?);
    }
    let audited: usize = before
        .iter()
        .map(|snap| snap["audit"].as_array().map_or(0, Vec::len))
        .sum();
    let replayed = replay_all_topics(system).await?;
    ensure!(
        replayed.values().sum::<usize>() >= audited,
        "every audited event was on a topic: replayed {replayed:?}, {audited} audit rows: {before:#?}"
    );
    for (u, was) in users.iter().zip(before) {
        let is = snapshot(u).await?;
        ensure!(
            is == was,
            "duplicates changed the state:\n{was:#?}\n->\n{is:#?}"
        );
    }
    let dlq = system.dlq_counts().await?;
    ensure!(dlq.values().all(|n| *n == 0), "dead letters: {dlq:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_flows() {
    flows(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_flows() {
    flows(Mode::Distributed).await;
}

/// 4.5: a handler fault injected through configuration goes through the retries to the dead-letter topic, the
/// other consumers and events are unaffected, and after the fault is removed a replay applies it once.
async fn dead_letter_and_replay(mode: Mode) {
    let faulty = Options {
        fault: Some("audit-consumer:poison".into()),
        ..Options::default()
    };
    let Some(mut system) = System::start(mode, &faulty)
        .await
        .expect("deployment starts")
    else {
        return;
    };
    let result = run_dead_letter(&mut system).await;
    let logs = system.logs();
    system.stop().await;
    if let Err(e) = result {
        panic!("{mode:?}: {e:#}\n\n{logs}");
    }
}

async fn run_dead_letter(system: &mut System) -> anyhow::Result<()> {
    let api = system.user()?;
    let poison = api
        .create(json!({"title": "poison pill", "recurrence": "daily", "due_date": today()}))
        .await?;
    let poison_id = s(&poison["id"]);
    let fine = api.create(json!({"title": "fine"})).await?;
    let fine_id = s(&fine["id"]);
    audit_reaches(&api, &[(&fine_id, "task.created", 1)]).await?;
    let dlq = eventually("dead letter", PATIENCE, || async {
        let counts = system.dlq_counts().await?;
        Ok(if counts["todo.task-events.dlq"] == 1 {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        })
    })
    .await?;
    ensure!(
        dlq["todo.task-updates.dlq"] == 0 && dlq["todo.reminders.dlq"] == 0,
        "{dlq:?}"
    );
    let listing = system.todo(&strings(&["dlq", "list"])).await?;
    ensure!(
        listing.contains("attempts 4") && listing.contains("group audit-consumer"),
        "three retries after the first attempt, from the audit consumer:\n{listing}"
    );
    ensure!(
        listing.contains("injected fault"),
        "the error is kept:\n{listing}"
    );
    let key = |m: &str| (m.to_owned(), "audit-consumer".to_owned());
    eventually("retry and dead-letter counters", PATIENCE, || async {
        // The counters are exported every two seconds.
        let metrics = system.consumer_metrics().await?;
        Ok(
            if metrics.get(&key("retries")).copied().unwrap_or(0.0) >= 3.0
                && metrics.get(&key("dead_lettered")).copied().unwrap_or(0.0) >= 1.0
            {
                Ok(())
            } else {
                Err(format!("{metrics:?}"))
            },
        )
    })
    .await?;
    let audit = api.audit().await?;
    ensure!(
        audit.iter().all(|a| a["task_id"] != json!(poison_id)),
        "no audit row while the fault is on: {audit:?}"
    );
    // Only the audit consumer failed: the recurrence consumer is another group and unaffected.
    api.complete(&poison_id).await?;
    eventually("next instance of the poisoned task", PATIENCE, || async {
        let n = api.all_tasks().await?.len();
        Ok(if n == 3 {
            Ok(())
        } else {
            Err(format!("{n} tasks"))
        })
    })
    .await?;

    // Remove the fault, replay the dead letters.
    system.restart_consumers(&Options::default()).await?;
    let out = system
        .todo(&strings(&[
            "dlq",
            "replay",
            "--topic",
            "todo.task-events.dlq",
        ]))
        .await?;
    ensure!(out.contains("replayed"), "{out}");
    let audit = audit_reaches(
        &api,
        &[
            (&poison_id, "task.created", 1),
            (&poison_id, "task.completed", 1),
            (&fine_id, "task.created", 1),
        ],
    )
    .await?;
    let created = audit
        .iter()
        .find(|a| a["task_id"] == json!(poison_id) && a["event_type"] == "task.created")
        .context("row")?;
    ensure!(
        created["payload"]["data"]["title"] == "poison pill",
        "the replayed event is the original: {created}"
    );
    // Replaying again is harmless: the audit row is keyed by the event id that the replay kept.
    system
        .todo(&strings(&[
            "dlq",
            "replay",
            "--topic",
            "todo.task-events.dlq",
        ]))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = api.audit().await?;
    ensure!(
        audit_counts(&again) == audit_counts(&audit),
        "a second replay changed the audit log"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_dead_letter_and_replay() {
    dead_letter_and_replay(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_dead_letter_and_replay() {
    dead_letter_and_replay(Mode::Distributed).await;
}
