//! Fault drills: a stream of API changes runs while something breaks and is repaired, then the state is
//! reconciled:
//!
//! - every task has exactly one `task.created` audit row, every acknowledged create has its task;
//! - every completed task has exactly one `task.completed` row and, when recurring, exactly one next instance;
//! - every acknowledged update is audited (at most once per attempt);
//! - no reminder is both triggered and cancelled, every triggered reminder is audited once, none is overdue;
//! - every dead-letter topic is empty.
//!
//! A request that fails during the outage (connection refused, 503) is not acknowledged: it may or may not have
//! happened, and the reconciliation accepts both. A 4xx or a 500 fails the drill.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::ensure;
use chrono::{Duration as Days, Utc};
use serde_json::{Value, json};
use todo_e2e::harness::{Api, PrivatePostgres, audit_counts, eventually};

use crate::system::{Mode, Options, System};

/// What one virtual user did.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged creates: task id and whether it recurs.
    created: Vec<(String, bool)>,
    /// Acknowledged completions.
    completed: HashSet<String>,
    /// Updates per task: (acknowledged, attempted).
    updates: HashMap<String, (usize, usize)>,
    /// Answers by status (0: transport error).
    statuses: BTreeMap<u16, usize>,
    /// Unexpected answers (4xx, 500).
    unexpected: Vec<String>,
}

impl Ledger {
    /// Sends one change; `Some(body)` when acknowledged.
    async fn send(
        &mut self,
        api: &Api,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        match api.call(method.clone(), path, body).await {
            Ok(a) => {
                *self.statuses.entry(a.status).or_default() += 1;
                match a.status {
                    200..=299 => Some(a.body),
                    502..=504 => None,
                    _ => {
                        self.unexpected
                            .push(format!("{method} {path}: {} {}", a.status, a.body));
                        None
                    }
                }
            }
            Err(_) => {
                *self.statuses.entry(0).or_default() += 1;
                None
            }
        }
    }
}

/// Creates, updates, completes and sets reminders until `stop` is set.
async fn stream(api: Api, stop: Arc<AtomicBool>) -> Ledger {
    let mut ledger = Ledger::default();
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let recurring = i.is_multiple_of(2);
        let due = Utc::now().date_naive() + Days::days(1 + i64::from(i % 5));
        let body = if recurring {
            json!({"title": format!("drill {i}"), "due_date": due, "due_time": "09:00",
                   "recurrence": "daily", "reminders": ["30min"]})
        } else {
            json!({"title": format!("drill {i}"), "due_date": due})
        };
        let Some(task) = ledger
            .send(&api, reqwest::Method::POST, "/api/v1/tasks", Some(body))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        ledger.created.push((id.clone(), recurring));
        let path = format!("/api/v1/tasks/{id}");
        let acked = ledger
            .send(
                &api,
                reqwest::Method::PATCH,
                &path,
                Some(json!({"title": format!("drill {i} (edited)")})),
            )
            .await
            .is_some();
        let entry = ledger.updates.entry(id.clone()).or_default();
        entry.1 += 1;
        entry.0 += usize::from(acked);
        if i.is_multiple_of(3) {
            // A reminder due within the drill: it fires, or completion suppresses it first.
            let at = Utc::now() + Days::milliseconds(500 + i64::from(i % 7) * 300);
            ledger
                .send(
                    &api,
                    reqwest::Method::POST,
                    &format!("{path}/reminders"),
                    Some(json!({"remind_at": at})),
                )
                .await;
        }
        if i % 4 != 1
            && ledger
                .send(
                    &api,
                    reqwest::Method::POST,
                    &format!("{path}/complete"),
                    None,
                )
                .await
                .is_some()
        {
            ledger.completed.insert(id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ledger
}

/// Checks the invariants once; `Err(state)` while they do not hold yet.
async fn check(api: &Api, ledger: &Ledger) -> anyhow::Result<Result<(), String>> {
    let tasks = api.all_tasks().await?;
    let audit = api.audit().await?;
    let counts = audit_counts(&audit);
    let count = |id: &str, ty: &str| {
        counts
            .get(&(id.to_owned(), ty.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let mut problems = Vec::new();
    let by_id: HashMap<String, &Value> = tasks
        .iter()
        .map(|t| (t["id"].as_str().unwrap_or_default().to_owned(), t))
        .collect();
    for (id, _) in &ledger.created {
        if !by_id.contains_key(id) {
            problems.push(format!("acknowledged create {id} has no task"));
        }
    }
    for id in &ledger.completed {
        if by_id.get(id).is_some_and(|t| t["status"] != "completed") {
            problems.push(format!("acknowledged completion of {id} is not completed"));
        }
    }
    for (id, t) in &by_id {
        if count(id, "task.created") != 1 {
            problems.push(format!(
                "{id}: {} task.created rows",
                count(id, "task.created")
            ));
        }
        if t["status"] == "completed" {
            if count(id, "task.completed") != 1 {
                problems.push(format!(
                    "{id}: {} task.completed rows",
                    count(id, "task.completed")
                ));
            }
            if !t["recurrence"].is_null() {
                let next = tasks
                    .iter()
                    .filter(|n| {
                        n["series_id"] == t["series_id"]
                            && n["series_index"].as_u64().is_some()
                            && n["series_index"].as_u64()
                                == t["series_index"].as_u64().map(|i| i + 1)
                    })
                    .count();
                if next != 1 {
                    problems.push(format!("{id}: {next} next instances"));
                }
            }
        } else if count(id, "task.completed") != 0 {
            problems.push(format!("{id}: active but has a task.completed row"));
        }
    }
    for (id, (acked, attempted)) in &ledger.updates {
        let n = count(id, "task.updated");
        if n < *acked || n > *attempted {
            problems.push(format!(
                "{id}: {n} task.updated rows for {acked} acknowledged of {attempted} attempted"
            ));
        }
    }
    let triggered_rows: HashMap<String, usize> = audit
        .iter()
        .filter(|a| a["event_type"] == "reminder.triggered")
        .fold(HashMap::new(), |mut m, a| {
            *m.entry(
                a["payload"]["data"]["reminder_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
            .or_default() += 1;
            m
        });
    let now = Utc::now();
    for id in by_id.keys() {
        for r in api.reminders(id).await? {
            let rid = r["id"].as_str().unwrap_or_default();
            let rows = triggered_rows.get(rid).copied().unwrap_or(0);
            match r["status"].as_str() {
                Some("TRIGGERED") if rows != 1 => {
                    problems.push(format!("reminder {rid}: triggered with {rows} audit rows"));
                }
                Some("CANCELLED") if rows != 0 => {
                    problems.push(format!("reminder {rid}: cancelled but triggered ({rows})"));
                }
                Some("PENDING") => {
                    let at: chrono::DateTime<Utc> = serde_json::from_value(r["remind_at"].clone())?;
                    if at < now - Days::seconds(5) {
                        problems.push(format!("reminder {rid}: overdue since {at}"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    })
}

/// Runs the stream with `users` virtual users while `fault` breaks and repairs something, then reconciles.
async fn drill(
    mode: Mode,
    options: Options,
    name: &str,
    fault: impl AsyncFnOnce(&mut System) -> anyhow::Result<()>,
) {
    let Some(mut system) = System::start(mode, &options)
        .await
        .expect("deployment starts")
    else {
        return;
    };
    let result = run_drill(&mut system, fault).await;
    let logs = system.logs();
    system.stop().await;
    if let Err(e) = result {
        panic!("{name} ({mode:?}): {e:#}\n\n{logs}");
    }
}

async fn run_drill(
    system: &mut System,
    fault: impl AsyncFnOnce(&mut System) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let users: Vec<Api> = (0..4).map(|_| system.user()).collect::<Result<_, _>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = users
        .iter()
        .map(|u| tokio::spawn(stream(u.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    fault(system).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for s in streams {
        ledgers.push(s.await?);
    }
    let acked: usize = ledgers.iter().map(|l| l.created.len()).sum();
    let statuses: BTreeMap<u16, usize> =
        ledgers
            .iter()
            .flat_map(|l| l.statuses.iter())
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(*k).or_default() += v;
                m
            });
    eprintln!(
        "drill: {acked} acknowledged creates; answers by status (0 = no answer): {statuses:?}"
    );
    let unexpected: Vec<&String> = ledgers.iter().flat_map(|l| &l.unexpected).collect();
    ensure!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    ensure!(acked >= 20, "too few changes went through: {statuses:?}");
    for (u, ledger) in users.iter().zip(&ledgers) {
        eventually("reconciliation", Duration::from_secs(120), || {
            check(u, ledger)
        })
        .await?;
    }
    let dlq = system.dlq_counts().await?;
    ensure!(dlq.values().all(|n| *n == 0), "dead letters: {dlq:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_worker_mid_stream() {
    drill(
        Mode::Distributed,
        Options::default(),
        "kill -9 the worker",
        async |system: &mut System| {
            let worker = system.consumers_mut();
            worker.proc.kill9().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            worker.restart().await
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_embedded_server_mid_stream() {
    drill(
        Mode::Embedded,
        Options::default(),
        "kill -9 the embedded server",
        async |system: &mut System| system.api.kill9_and_restart().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream() {
    drill(
        Mode::Distributed,
        Options {
            persistent_broker: true,
            ..Options::default()
        },
        "stop and restart the broker",
        async |system: &mut System| {
            let broker = system.broker.as_mut().expect("broker");
            broker.kill().await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            broker.restart().await
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream() {
    let Some(pg) = PrivatePostgres::start().await.expect("private PostgreSQL") else {
        return;
    };
    let pg = Arc::new(pg);
    let during = pg.clone();
    drill(
        Mode::Distributed,
        Options {
            pg_server: Some(pg.url.clone()),
            ..Options::default()
        },
        "restart PostgreSQL",
        async |system: &mut System| {
            during.stop_server().await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let api = system.user()?;
            let down = api
                .call(reqwest::Method::GET, "/api/v1/tasks", None)
                .await?;
            ensure!(
                down.status == 503,
                "the API answers 503 while the database is down: {} {}",
                down.status,
                down.body
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
            during.start_server().await
        },
    )
    .await;
}
