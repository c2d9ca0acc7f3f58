//! `todo-load`: an end-to-end load generator for the `todo` server.
//!
//! Virtual clients act as many users, each with its own HS256 token, and run a weighted mix of create (some
//! recurring, some with lead-time reminders), update (PATCH), complete, set-reminder (an absolute `remind_at` a few
//! seconds ahead) and list requests for a fixed duration. By default the clients run a closed loop: each sends its
//! next request as soon as the previous one answered, which measures saturation throughput (at saturation the event
//! consumers fall behind, so the event lag then measures a backlog). With `--rate R` the run is open loop: a pacer
//! schedules R requests per second in total, evenly spaced, and each is sent at its scheduled time whether or not
//! earlier ones have answered, with `--concurrency` as the cap on requests in flight; a request that finds every
//! slot busy at its scheduled time is sent as soon as one frees and counted as late (never dropped), and latency is
//! measured from the scheduled send time, so the time it waited counts (no coordinated omission). It reports
//! throughput and latency percentiles per operation, errors by status, the server processes' memory and CPU, and
//! then checks the event pipeline end to end (with `--timeline`, also the load phase slice by slice, to see
//! whether the slowest requests are spread out or come in bursts):
//!
//! - event lag: every acknowledged change must show up in `GET /api/v1/audit`; it waits (up to
//!   `--settle-timeout`) until every expected row arrived, reports missing rows as an error, and computes
//!   `recorded_at - occurred_at` (commit to audit row, server clock) and, for creates, `recorded_at - client ack`;
//! - reminder fire delay: every reminder set must leave PENDING; `fired_at - remind_at` from
//!   `GET /api/v1/tasks/{id}/reminders`, and `recorded_at - remind_at` of its `reminder.triggered` audit row.
//!
//! With `--baseline` it then measures the infrastructure limit with the same concurrency: raw insert
//! transactions (a task-like and an outbox-like row) against PostgreSQL (`--baseline-pg`) or a temporary SQLite
//! file, and a bare rdkafka producer loop (`--baseline-kafka`), and prints the main figures as ratios to them.
//!
//! ```sh
//! todo-load --url http://127.0.0.1:8080 --jwt-secret S --concurrency 64 --duration 30 --json out.json
//! todo-load ... --mix create=100                      # create-only
//! todo-load ... --rate 200 --duration 30              # open loop: 200 requests/s, at most 64 in flight
//! todo-load ... --server-pid api=1234 --server-pid worker=1240 --baseline --baseline-pg postgres://...
//! ```
//!
//! The exit status is 0 when every check passed, 2 when audit rows or reminder firings are missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "todo-load",
    about = "End-to-end load generator for the todo server"
)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// HS256 secret the server verifies tokens with (its `--jwt-secret`).
    #[arg(long, env = "TODO_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Concurrent clients (closed loop, no think time); with `--rate`, the cap on requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop: send this many requests per second in total, evenly spaced from the start of the load phase,
    /// each at its scheduled time whether or not earlier ones have answered (at most `--concurrency` in
    /// flight; requests that find the cap reached are sent late and counted). Latency is measured from the
    /// scheduled send time.
    #[arg(long)]
    rate: Option<f64>,
    /// Distinct users, each with its own token; clients take them round robin (default: one per client).
    #[arg(long)]
    users: Option<usize>,
    /// Length of the load phase in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Operation weights: any of create, update, complete, remind, list (`create=100` for create-only).
    #[arg(
        long,
        default_value = "create=40,update=20,complete=15,remind=10,list=15"
    )]
    mix: String,
    /// Percent of created tasks that recur (daily, weekly, weekdays or monthly).
    #[arg(long, default_value_t = 20)]
    recurring_pct: u32,
    /// Percent of created tasks created with lead-time reminders (due days ahead, so they do not fire).
    #[arg(long, default_value_t = 30)]
    lead_reminder_pct: u32,
    /// `remind` operations set `remind_at` this many milliseconds ahead, `MIN..MAX`.
    #[arg(long, default_value = "2000..5000")]
    remind_in_ms: String,
    /// A server process to sample (`/proc/PID/status` VmRSS, VmHWM; CPU time), `NAME=PID` or `PID`; repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<String>,
    /// A Prometheus `/metrics` URL to read `todo_reminder_fire_delay_seconds` from after the run; repeatable.
    #[arg(long = "metrics-url")]
    metrics_urls: Vec<String>,
    /// Longest wait, in seconds, for the audit rows and reminder firings after the load phase.
    #[arg(long, default_value_t = 120.0)]
    settle_timeout: f64,
    /// Skip the audit and reminder checks.
    #[arg(long)]
    no_verify: bool,
    /// A label for the run (mode, machine, ...), copied into the JSON.
    #[arg(long, default_value = "")]
    label: String,
    /// Write the results as JSON to this file (`-` for standard output; the summary then goes to stderr).
    #[arg(long)]
    json: Option<String>,
    /// Also measure the infrastructure limit: raw database insert transactions (and broker produces with
    /// `--baseline-kafka`) at the same concurrency.
    #[arg(long)]
    baseline: bool,
    /// PostgreSQL URL for the database baseline (tables `load_baseline_*` are created there); without it the
    /// baseline uses a temporary SQLite file (WAL, synchronous=NORMAL, `BEGIN IMMEDIATE`).
    #[arg(long)]
    baseline_pg: Option<String>,
    /// Kafka bootstrap servers for the broker baseline (topic `todo-load-baseline`, 3 partitions).
    #[arg(long)]
    baseline_kafka: Option<String>,
    /// Database connections of the baseline pool (the server's default pool: 16 PostgreSQL; SQLite, twice the cores
    /// from 4 to 16).
    #[arg(long)]
    baseline_connections: Option<u32>,
    /// Length of each baseline measurement in seconds.
    #[arg(long, default_value_t = 10.0)]
    baseline_duration: f64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also print the load phase in slices of this many seconds (requests, p50, p99, max, and how many of the
    /// run's slowest 1% each slice holds), to see whether the tail is spread out or comes in bursts.
    #[arg(long, value_name = "SECONDS")]
    timeline: Option<f64>,
}

// ----------------------------------------------------------------------------------------------------------
// operations and the mix

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Op {
    Create,
    Update,
    Complete,
    Remind,
    List,
}

impl Op {
    const ALL: [Op; 5] = [Op::Create, Op::Update, Op::Complete, Op::Remind, Op::List];

    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Complete => "complete",
            Op::Remind => "remind",
            Op::List => "list",
        }
    }

    fn writes(self) -> bool {
        !matches!(self, Op::List)
    }
}

#[derive(Debug, Clone)]
struct Mix {
    weights: Vec<(Op, u32)>,
    total: u32,
}

impl Mix {
    fn parse(s: &str) -> anyhow::Result<Mix> {
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part
                .split_once('=')
                .with_context(|| format!("--mix: `{part}` is not NAME=WEIGHT"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim())
                .with_context(|| {
                    format!(
                        "--mix: unknown operation `{name}` (create, update, complete, remind, list)"
                    )
                })?;
            let w: u32 = w
                .trim()
                .parse()
                .with_context(|| format!("--mix: `{w}` is not a whole number"))?;
            if w > 0 {
                weights.push((op, w));
            }
        }
        let total = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            bail!("--mix: no operation has a positive weight");
        }
        Ok(Mix { weights, total })
    }

    fn pick(&self, rng: &mut StdRng) -> Op {
        let mut x = rng.random_range(0..self.total);
        for &(op, w) in &self.weights {
            if x < w {
                return op;
            }
            x -= w;
        }
        self.weights[0].0
    }

    fn describe(&self) -> String {
        self.weights
            .iter()
            .map(|(op, w)| format!("{}={w}", op.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_range(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s.split_once("..").unwrap_or((s, s));
    let (a, b): (u64, u64) = (
        a.trim()
            .parse()
            .context("--remind-in-ms: expected MIN..MAX")?,
        b.trim()
            .parse()
            .context("--remind-in-ms: expected MIN..MAX")?,
    );
    if a == 0 || b < a {
        bail!("--remind-in-ms: expected 0 < MIN <= MAX");
    }
    Ok((a, b))
}

// ----------------------------------------------------------------------------------------------------------
// histograms

fn hist() -> Histogram<u64> {
    // microseconds, 1 µs to 1 hour, 3 significant digits
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// p50/p90/p99/max in milliseconds, plus count and mean.
fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "mean_ms": round3(h.mean() / 1000.0),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn record_duration(h: &mut Histogram<u64>, d: chrono::TimeDelta) -> bool {
    let us = d.num_microseconds().unwrap_or(i64::MAX);
    h.saturating_record(us.max(1) as u64);
    us < 0
}

// ----------------------------------------------------------------------------------------------------------
// what the clients record

#[derive(Debug, Clone)]
struct TaskRef {
    id: Uuid,
    version: i64,
}

#[derive(Debug, Clone)]
struct SetReminderRec {
    task: Uuid,
    reminder: Uuid,
    remind_at: DateTime<Utc>,
}

/// What one client did; merged per user after the run.
struct Recorder {
    user: usize,
    latency: BTreeMap<Op, Histogram<u64>>,
    ok: BTreeMap<Op, u64>,
    errors: BTreeMap<String, u64>,
    /// Events the server must audit: (task, event type).
    expected: Vec<(Uuid, &'static str)>,
    /// Client acknowledgement time of each create.
    created: Vec<(Uuid, DateTime<Utc>)>,
    /// Completions of recurring tasks: the recurrence consumer creates (and audits) a next instance.
    recurrences: u64,
    reminders: Vec<SetReminderRec>,
    /// Open loop: requests sent later than scheduled because every slot was busy.
    late: u64,
    /// Open loop: actual send time minus scheduled send time.
    send_delay: Histogram<u64>,
    /// With `--timeline`: each successful request's start (microseconds into the load phase) and latency
    /// (microseconds).
    timeline: Vec<(u64, u64)>,
}

impl Recorder {
    fn new(user: usize) -> Self {
        Recorder {
            user,
            latency: Op::ALL.iter().map(|&op| (op, hist())).collect(),
            ok: BTreeMap::new(),
            errors: BTreeMap::new(),
            expected: Vec::new(),
            created: Vec::new(),
            recurrences: 0,
            reminders: Vec::new(),
            late: 0,
            send_delay: hist(),
            timeline: Vec::new(),
        }
    }

    fn error(&mut self, op: Op, what: impl std::fmt::Display) {
        *self
            .errors
            .entry(format!("{} {what}", op.name()))
            .or_default() += 1;
    }
}

/// A slice of the load phase (`--timeline`): the requests sent in it.
struct Slice {
    /// Start of the slice, in seconds into the load phase.
    from_s: f64,
    /// The latencies of its requests in microseconds, sorted (exact values: a histogram per slice would take
    /// about 190 KB, too much for thousands of short slices).
    latency: Vec<u64>,
    /// Requests slower than the threshold given to [`slices`] (the run's p99).
    slowest: u64,
}

impl Slice {
    /// The latency at quantile `q` (nearest rank), in microseconds; 0 for an empty slice.
    fn quantile(&self, q: f64) -> u64 {
        let n = self.latency.len();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latency[rank - 1]
    }
}

/// Cuts `requests` (send time and latency, both in microseconds, the send time from the start of the load
/// phase) into consecutive slices `width_us` wide by send time, from the first slice to the last one any request
/// falls in (slices without requests included, so that a stall shows).
fn slices(requests: &[(u64, u64)], width_us: u64, slowest_above_us: u64) -> Vec<Slice> {
    let width_us = width_us.max(1);
    let count = requests
        .iter()
        .map(|&(at, _)| at / width_us + 1)
        .max()
        .unwrap_or(0);
    let mut cut: Vec<Slice> = (0..count)
        .map(|i| Slice {
            from_s: (i * width_us) as f64 / 1e6,
            latency: Vec::new(),
            slowest: 0,
        })
        .collect();
    for &(at, latency) in requests {
        let slice = &mut cut[(at / width_us) as usize];
        slice.latency.push(latency);
        if latency > slowest_above_us {
            slice.slowest += 1;
        }
    }
    for slice in &mut cut {
        slice.latency.sort_unstable();
    }
    cut
}

// ----------------------------------------------------------------------------------------------------------
// the clients

struct Plan {
    http: reqwest::Client,
    base: String,
    mix: Mix,
    recurring_pct: u32,
    lead_reminder_pct: u32,
    remind_in_ms: (u64, u64),
    start: Instant,
    stop: Instant,
    /// Open loop: requests per second, and the index of the next scheduled request.
    rate: Option<f64>,
    next: AtomicU64,
    /// `--timeline` was given: clients keep each request's start and latency.
    timeline: bool,
}

/// A request claimed more than this after its scheduled time counts as late (every slot was busy).
const LATE_GRACE: Duration = Duration::from_millis(1);

const TAGS: [&str; 6] = ["work", "home", "errands", "health", "finance", "reading"];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
const RULES: [&str; 4] = ["daily", "weekly", "weekdays", "monthly"];

fn create_body(rng: &mut StdRng, n: u64, plan: &Plan) -> Value {
    let mut body = json!({
        "title": format!("load task {n}"),
        "priority": PRIORITIES[rng.random_range(0..PRIORITIES.len())],
        "tags": [TAGS[rng.random_range(0..TAGS.len())], TAGS[rng.random_range(0..TAGS.len())]],
    });
    if rng.random_bool(0.5) {
        body["description"] = json!("generated by todo-load: a few words of description");
    }
    let recurring = rng.random_range(0..100) < plan.recurring_pct;
    let lead = rng.random_range(0..100) < plan.lead_reminder_pct;
    if recurring || lead || rng.random_bool(0.5) {
        let due = Utc::now().date_naive() + chrono::Days::new(rng.random_range(3..60));
        body["due_date"] = json!(due.format("%Y-%m-%d").to_string());
        body["due_time"] = json!(format!(
            "{:02}:{:02}",
            rng.random_range(7..20),
            15 * rng.random_range(0..4)
        ));
        if rng.random_bool(0.3) {
            body["time_zone"] = json!("Europe/Berlin");
        }
    }
    if recurring {
        body["recurrence"] = json!(RULES[rng.random_range(0..RULES.len())]);
    }
    if lead {
        body["reminders"] = if rng.random_bool(0.5) {
            json!(["30min"])
        } else {
            json!(["1h", "1d"])
        };
    }
    body
}

#[derive(Deserialize)]
struct TaskView {
    id: Uuid,
    version: i64,
}

#[derive(Deserialize)]
struct Completion {
    completed_now: bool,
    next_due_date: Option<String>,
}

#[derive(Deserialize)]
struct ReminderView {
    id: Uuid,
    remind_at: DateTime<Utc>,
    status: String,
    fired_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// Sends one request and reads the whole answer; `Err` is a transport failure.
async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body.to_vec()))
}

async fn client(plan: Arc<Plan>, user: usize, token: String, seed: u64) -> Recorder {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rec = Recorder::new(user);
    let mut pool: Vec<TaskRef> = Vec::new();
    let auth = format!("Bearer {token}");
    let mut n: u64 = 0;
    loop {
        // When this request is due: now (closed loop) or the next slot of the schedule (open loop). The
        // latency is measured from it.
        let started = match plan.rate {
            None => {
                let now = Instant::now();
                if now >= plan.stop {
                    break;
                }
                now
            }
            Some(rate) => {
                let i = plan.next.fetch_add(1, Ordering::Relaxed);
                let at = plan.start + Duration::from_secs_f64(i as f64 / rate);
                if at >= plan.stop {
                    break;
                }
                // Slots claim the schedule in order as soon as they are free; a request claimed after its time
                // found every slot busy.
                let now = Instant::now();
                if now > at + LATE_GRACE {
                    rec.late += 1;
                } else {
                    tokio::time::sleep_until(at.into()).await;
                }
                rec.send_delay
                    .saturating_record(at.elapsed().as_micros().max(1) as u64);
                at
            }
        };
        let mut op = plan.mix.pick(&mut rng);
        if op != Op::Create && op != Op::List && pool.is_empty() {
            op = Op::Create;
        }
        n += 1;
        // The task an update, complete or remind acts on.
        let picked = if pool.is_empty() {
            None
        } else {
            Some(pool[rng.random_range(0..pool.len())].clone())
        };
        let result = match op {
            Op::Create => {
                let body = create_body(&mut rng, n, &plan);
                send(
                    plan.http
                        .post(format!("{}/api/v1/tasks", plan.base))
                        .header("authorization", &auth)
                        .json(&body),
                )
                .await
            }
            Op::Update => {
                let t = picked.as_ref().expect("a task to act on");
                let mut body = json!({
                    "title": format!("load task {n} (edited)"),
                    "priority": PRIORITIES[rng.random_range(0..PRIORITIES.len())],
                    "version": t.version,
                });
                if rng.random_bool(0.25) {
                    let due = Utc::now().date_naive() + chrono::Days::new(rng.random_range(3..60));
                    body["due_date"] = json!(due.format("%Y-%m-%d").to_string());
                }
                send(
                    plan.http
                        .patch(format!("{}/api/v1/tasks/{}", plan.base, t.id))
                        .header("authorization", &auth)
                        .json(&body),
                )
                .await
            }
            Op::Complete => {
                let t = picked.as_ref().expect("a task to act on");
                send(
                    plan.http
                        .post(format!("{}/api/v1/tasks/{}/complete", plan.base, t.id))
                        .header("authorization", &auth),
                )
                .await
            }
            Op::Remind => {
                let t = picked.as_ref().expect("a task to act on");
                let ahead = rng.random_range(plan.remind_in_ms.0..=plan.remind_in_ms.1);
                let at = Utc::now() + chrono::Duration::milliseconds(ahead as i64);
                send(
                    plan.http
                        .post(format!("{}/api/v1/tasks/{}/reminders", plan.base, t.id))
                        .header("authorization", &auth)
                        .json(&json!({"remind_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)})),
                )
                .await
            }
            Op::List => {
                let sort = if rng.random_bool(0.5) {
                    "due"
                } else {
                    "created"
                };
                send(
                    plan.http
                        .get(format!(
                            "{}/api/v1/tasks?status=active&limit=20&sort={sort}",
                            plan.base
                        ))
                        .header("authorization", &auth),
                )
                .await
            }
        };
        let elapsed = started.elapsed();
        let ack = Utc::now();
        let (status, body) = match result {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                rec.error(op, kind);
                continue;
            }
        };
        let expected_status = match op {
            Op::Create | Op::Remind => 201,
            _ => 200,
        };
        if status != expected_status {
            rec.error(op, status);
            // A task that cannot be changed any more (conflict, gone) leaves the pool.
            if (status == 404 || status == 409)
                && let Some(t) = &picked
            {
                pool.retain(|p| p.id != t.id);
            }
            continue;
        }
        let latency_us = elapsed.as_micros().max(1) as u64;
        rec.latency
            .get_mut(&op)
            .expect("every op has a histogram")
            .saturating_record(latency_us);
        if plan.timeline {
            let from_start = started.saturating_duration_since(plan.start).as_micros() as u64;
            rec.timeline.push((from_start, latency_us));
        }
        *rec.ok.entry(op).or_default() += 1;
        // Bookkeeping from the answer (the task picked above is found again by id).
        match op {
            Op::Create => match serde_json::from_slice::<TaskView>(&body) {
                Ok(t) => {
                    rec.expected.push((t.id, "task.created"));
                    rec.created.push((t.id, ack));
                    pool.push(TaskRef {
                        id: t.id,
                        version: t.version,
                    });
                }
                Err(_) => rec.error(op, "unreadable-body"),
            },
            Op::Update => match serde_json::from_slice::<TaskView>(&body) {
                Ok(t) => {
                    rec.expected.push((t.id, "task.updated"));
                    if let Some(p) = pool.iter_mut().find(|p| p.id == t.id) {
                        p.version = t.version;
                    }
                }
                Err(_) => rec.error(op, "unreadable-body"),
            },
            Op::Complete => {
                #[derive(Deserialize)]
                struct Answer {
                    task: TaskView,
                    #[serde(flatten)]
                    completion: Completion,
                }
                match serde_json::from_slice::<Answer>(&body) {
                    Ok(a) => {
                        if a.completion.completed_now {
                            rec.expected.push((a.task.id, "task.completed"));
                            if a.completion.next_due_date.is_some() {
                                rec.recurrences += 1;
                            }
                        }
                        pool.retain(|p| p.id != a.task.id);
                    }
                    Err(_) => rec.error(op, "unreadable-body"),
                }
            }
            Op::Remind => {
                #[derive(Deserialize)]
                struct Answer {
                    id: Uuid,
                    task_id: Uuid,
                    remind_at: DateTime<Utc>,
                }
                match serde_json::from_slice::<Answer>(&body) {
                    Ok(r) => {
                        rec.reminders.push(SetReminderRec {
                            task: r.task_id,
                            reminder: r.id,
                            remind_at: r.remind_at,
                        });
                        // The task keeps its reminder: never completed (that would cancel it) nor touched again.
                        pool.retain(|p| p.id != r.task_id);
                    }
                    Err(_) => rec.error(op, "unreadable-body"),
                }
            }
            Op::List => {}
        }
    }
    rec
}

// ----------------------------------------------------------------------------------------------------------
// process sampling

#[derive(Debug, Clone)]
struct Proc {
    name: String,
    pid: u32,
}

fn parse_pids(specs: &[String]) -> anyhow::Result<Vec<Proc>> {
    specs
        .iter()
        .map(|s| {
            let (name, pid) = s.split_once('=').unwrap_or(("server", s));
            Ok(Proc {
                name: name.to_owned(),
                pid: pid
                    .trim()
                    .parse()
                    .with_context(|| format!("--server-pid: `{s}` is not NAME=PID"))?,
            })
        })
        .collect()
}

/// VmRSS and VmHWM in KiB.
fn read_mem(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Bytes a process has caused to be written to storage (`write_bytes` of `/proc/PID/io`: the database, its
/// write-ahead log and checkpoints, as the kernel sends them to the disk).
fn read_written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// User + system CPU seconds of a process (`self` or a pid).
fn read_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state: utime is field 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

#[derive(Debug, Clone, Default)]
struct MemStats {
    samples: u64,
    rss_start_kb: u64,
    rss_max_kb: u64,
    rss_end_kb: u64,
    hwm_kb: u64,
    cpu_start: f64,
    cpu_end: f64,
    written_start: u64,
    written_end: u64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ----------------------------------------------------------------------------------------------------------
// verification: reminders and audit rows

#[derive(Default)]
struct UserExpect {
    expected: HashMap<(Uuid, &'static str), u32>,
    created_ack: HashMap<Uuid, DateTime<Utc>>,
    recurrences: u64,
}

#[derive(Deserialize)]
struct AuditItem {
    event_type: String,
    task_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    #[serde(default)]
    payload: Value,
}

struct AuditRow {
    event_type: String,
    task_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    auth: &str,
) -> anyhow::Result<T> {
    let resp = http.get(url).header("authorization", auth).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: unreadable body"))
}

/// Every audit row of a user, and the size of one `task.created` payload.
async fn fetch_audit(
    http: &reqwest::Client,
    base: &str,
    auth: &str,
) -> anyhow::Result<(Vec<AuditRow>, Option<String>)> {
    let mut rows = Vec::new();
    let mut sample = None;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/audit?limit=500&cursor={c}"),
            None => format!("{base}/api/v1/audit?limit=500"),
        };
        let page: Page<AuditItem> = get_json(http, &url, auth).await?;
        for item in page.items {
            if sample.is_none() && item.event_type == "task.created" {
                sample = Some(item.payload.to_string());
            }
            rows.push(AuditRow {
                event_type: item.event_type,
                task_id: item.task_id,
                occurred_at: item.occurred_at,
                recorded_at: item.recorded_at,
            });
        }
        match page.next_cursor {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok((rows, sample))
}

/// How many expected rows are not (yet) in `rows`.
fn missing(expect: &UserExpect, rows: &[AuditRow]) -> u64 {
    let mut found: HashMap<(Uuid, &str), u32> = HashMap::new();
    let mut foreign_created = 0u64;
    for r in rows {
        if let Some(t) = r.task_id {
            *found.entry((t, r.event_type.as_str())).or_default() += 1;
            if r.event_type == "task.created" && !expect.created_ack.contains_key(&t) {
                foreign_created += 1;
            }
        }
    }
    let mut miss = 0u64;
    for ((task, kind), n) in &expect.expected {
        let have = found.get(&(*task, *kind)).copied().unwrap_or(0);
        miss += u64::from(n.saturating_sub(have));
    }
    miss + expect.recurrences.saturating_sub(foreign_created)
}

// ----------------------------------------------------------------------------------------------------------
// baselines

struct BaselineResult {
    what: String,
    ops: u64,
    errors: u64,
    secs: f64,
    latency: Histogram<u64>,
}

impl BaselineResult {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    fn to_json(&self) -> Value {
        json!({
            "what": self.what,
            "ops": self.ops,
            "errors": self.errors,
            "seconds": round3(self.secs),
            "per_second": self.rate().round(),
            "latency": summary(&self.latency),
        })
    }
}

/// Runs `op` from `concurrency` tasks for `secs`, timing each call.
async fn closed_loop<F, Fut>(
    concurrency: usize,
    secs: f64,
    op: F,
) -> (u64, u64, f64, Histogram<u64>)
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs);
    let mut handles = Vec::new();
    for c in 0..concurrency {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut err, mut h) = (0u64, 0u64, hist());
            let mut i = (c as u64) << 32;
            let mut first_error = None;
            while Instant::now() < stop {
                i += 1;
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => {
                        h.saturating_record(t.elapsed().as_micros().max(1) as u64);
                        ok += 1;
                    }
                    Err(e) => {
                        err += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            (ok, err, h, first_error)
        }));
    }
    let (mut ok, mut err, mut h) = (0, 0, hist());
    for handle in handles {
        if let Ok((o, e, hh, first)) = handle.await {
            ok += o;
            err += e;
            h.add(&hh).expect("same histogram bounds");
            if let Some(f) = first {
                eprintln!("  baseline error (first of this client): {f}");
            }
        }
    }
    (ok, err, start.elapsed().as_secs_f64(), h)
}

async fn baseline_postgres(
    url: &str,
    concurrency: usize,
    connections: u32,
    secs: f64,
    payload: usize,
) -> anyhow::Result<BaselineResult> {
    use sqlx::postgres::PgPoolOptions;
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .context("--baseline-pg: cannot connect")?;
    for stmt in [
        "CREATE TABLE IF NOT EXISTS load_baseline_tasks (id uuid PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL, \
         payload text NOT NULL, created_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS load_baseline_tasks_owner ON load_baseline_tasks (owner, created_at)",
        "CREATE TABLE IF NOT EXISTS load_baseline_outbox (seq bigserial PRIMARY KEY, topic text NOT NULL, key text NOT NULL, \
         payload bytea NOT NULL, created_at timestamptz NOT NULL, published_at timestamptz)",
        "CREATE INDEX IF NOT EXISTS load_baseline_outbox_unpublished ON load_baseline_outbox (seq) WHERE published_at IS NULL",
        "TRUNCATE load_baseline_tasks, load_baseline_outbox",
    ] {
        sqlx::query(stmt).execute(&pool).await?;
    }
    let body = Arc::new("x".repeat(payload));
    let (ops, errors, secs, latency) = closed_loop(concurrency, secs, {
        let pool = pool.clone();
        move |i| {
            let pool = pool.clone();
            let body = body.clone();
            async move {
                let owner = Uuid::from_u64_pair(0, i % 1024);
                let now = Utc::now();
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO load_baseline_tasks (id, owner, title, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(Uuid::new_v4())
                    .bind(owner)
                    .bind(format!("load task {i}"))
                    .bind(body.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO load_baseline_outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)")
                    .bind("todo.task-events")
                    .bind(owner.to_string())
                    .bind(body.as_bytes())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    })
    .await;
    pool.close().await;
    Ok(BaselineResult {
        what: format!(
            "PostgreSQL insert transactions (task + outbox row), {concurrency} clients, pool {connections}"
        ),
        ops,
        errors,
        secs,
        latency,
    })
}

async fn baseline_sqlite(
    concurrency: usize,
    connections: u32,
    secs: f64,
    payload: usize,
) -> anyhow::Result<BaselineResult> {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let dir = std::env::temp_dir().join(format!("todo-load-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("baseline.db");
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .context("cannot open the baseline SQLite file")?;
    for stmt in [
        "CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS tasks_owner ON tasks (owner, created_at)",
        "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key TEXT NOT NULL, payload BLOB NOT NULL, created_at TEXT NOT NULL, published_at TEXT)",
        "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL",
    ] {
        sqlx::query(stmt).execute(&pool).await?;
    }
    let body = Arc::new("x".repeat(payload));
    let (ops, errors, secs, latency) = closed_loop(concurrency, secs, {
        let pool = pool.clone();
        move |i| {
            let pool = pool.clone();
            let body = body.clone();
            async move {
                let owner = Uuid::from_u64_pair(0, i % 1024).to_string();
                let now = Utc::now().to_rfc3339();
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let r: anyhow::Result<()> = async {
                    sqlx::query("INSERT INTO tasks (id, owner, title, payload, created_at) VALUES (?, ?, ?, ?, ?)")
                        .bind(Uuid::new_v4().to_string())
                        .bind(&owner)
                        .bind(format!("load task {i}"))
                        .bind(body.as_str())
                        .bind(&now)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("INSERT INTO outbox (topic, key, payload, created_at) VALUES (?, ?, ?, ?)")
                        .bind("todo.task-events")
                        .bind(&owner)
                        .bind(body.as_bytes())
                        .bind(&now)
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                }
                .await;
                match r {
                    Ok(()) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                        Ok(())
                    }
                    Err(e) => {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        Err(e)
                    }
                }
            }
        }
    })
    .await;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BaselineResult {
        what: format!(
            "SQLite insert transactions (task + outbox row; WAL, synchronous=NORMAL, BEGIN IMMEDIATE), {concurrency} clients, pool {connections}"
        ),
        ops,
        errors,
        secs,
        latency,
    })
}

async fn baseline_kafka(
    brokers: &str,
    concurrency: usize,
    secs: f64,
    message: Vec<u8>,
) -> anyhow::Result<BaselineResult> {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    const TOPIC: &str = "todo-load-baseline";
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("--baseline-kafka: cannot create the admin client")?;
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("--baseline-kafka: creating the topic")?;
    for r in created {
        if let Err((topic, code)) = r
            && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        {
            bail!("--baseline-kafka: cannot create topic {topic}: {code}");
        }
    }
    // The settings of the server's producer (todo-kafka): idempotent, acks=all, lz4, murmur2_random, linger 5 ms.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("--baseline-kafka: cannot create the producer")?;
    // One warm-up send so that metadata and the producer id are in place before timing.
    producer
        .send(
            FutureRecord::to(TOPIC).key("warm-up").payload(&message[..]),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("--baseline-kafka: first send failed: {e}"))?;
    let size = message.len();
    let message = Arc::new(message);
    let (ops, errors, secs, latency) = closed_loop(concurrency, secs, {
        let producer = producer.clone();
        move |i| {
            let producer = producer.clone();
            let message = message.clone();
            async move {
                let key = Uuid::from_u64_pair(0, i % 1024).to_string();
                producer
                    .send(
                        FutureRecord::to(TOPIC).key(&key).payload(&message[..]),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(drop)
                    .map_err(|(e, _)| anyhow::anyhow!("{e}"))
            }
        }
    })
    .await;
    Ok(BaselineResult {
        what: format!(
            "Kafka produce (bare FutureProducer, the server's producer settings), {concurrency} in flight, {size}-byte messages"
        ),
        ops,
        errors,
        secs,
        latency,
    })
}

// ----------------------------------------------------------------------------------------------------------
// /metrics

/// Mean and bucket bounds of `todo_reminder_fire_delay_seconds` in a Prometheus text page.
fn fire_delay_metric(page: &str) -> Option<Value> {
    const NAME: &str = "todo_reminder_fire_delay_seconds";
    let mut sum = None;
    let mut count = None;
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in page.lines().filter(|l| l.starts_with(NAME)) {
        let (key, value) = line.rsplit_once(' ')?;
        let value: f64 = value.parse().ok()?;
        if key.starts_with(&format!("{NAME}_sum")) {
            sum = Some(value);
        } else if key.starts_with(&format!("{NAME}_count")) {
            count = Some(value);
        } else if let Some(le) = key.split("le=\"").nth(1).and_then(|s| s.split('"').next()) {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            buckets.push((le, value));
        }
    }
    let (sum, count) = (sum?, count?);
    if count == 0.0 {
        return None;
    }
    let bound = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= q * count)
            .map(|(le, _)| {
                if le.is_finite() {
                    json!(le * 1000.0)
                } else {
                    json!("+Inf")
                }
            })
    };
    Some(json!({
        "count": count,
        "mean_ms": round3(sum / count * 1000.0),
        "p50_bucket_upper_ms": bound(0.5),
        "p99_bucket_upper_ms": bound(0.99),
    }))
}

// ----------------------------------------------------------------------------------------------------------
// main

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(run(args))?;
    std::process::exit(code);
}

/// Prints to stdout, or to stderr when stdout carries the JSON.
macro_rules! say {
    ($to_err:expr, $($arg:tt)*) => {
        if $to_err { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

#[allow(clippy::too_many_lines)]
async fn run(args: Args) -> anyhow::Result<i32> {
    let to_err = args.json.as_deref() == Some("-");
    let mix = Mix::parse(&args.mix)?;
    let remind_in_ms = parse_range(&args.remind_in_ms)?;
    let procs = parse_pids(&args.server_pids)?;
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests per second");
    }
    if let Some(width) = args.timeline
        && !(width.is_finite() && width >= 0.001)
    {
        bail!("--timeline must be a number of seconds, at least 0.001");
    }
    let users = args.users.unwrap_or(args.concurrency).max(1);
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency + 16)
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()?;
    let secret = secrecy::SecretString::from(args.jwt_secret.clone());
    let user_ids: Vec<Uuid> = (0..users).map(|_| Uuid::new_v4()).collect();
    let tokens: Vec<String> = user_ids
        .iter()
        .map(|u| {
            todo_bin::auth::mint_token(
                &secret,
                todo_domain::UserId::from_uuid(*u),
                chrono::Duration::hours(6),
            )
            .map_err(|e| anyhow::anyhow!("minting a token: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    // The server must answer before the clock starts.
    let probe = http
        .get(format!("{base}/api/v1/tasks?limit=1"))
        .header("authorization", format!("Bearer {}", tokens[0]))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    if probe.status().as_u16() != 200 {
        bail!(
            "GET {base}/api/v1/tasks answered {} (is --jwt-secret the server's?)",
            probe.status()
        );
    }
    let shape = match args.rate {
        None => format!("closed loop, {} clients", args.concurrency),
        Some(rate) => format!(
            "open loop, {rate} requests/s, at most {} in flight",
            args.concurrency
        ),
    };
    say!(
        to_err,
        "todo-load: {base}, {shape}, {users} users, {:.0} s, mix {}, load average {}",
        args.duration,
        mix.describe(),
        loadavg()
    );

    // Sample the server processes while the load runs.
    let sampling = Arc::new(AtomicBool::new(true));
    let load_phase = Arc::new(AtomicBool::new(true));
    let sampler = {
        let procs = procs.clone();
        let sampling = sampling.clone();
        let load_phase = load_phase.clone();
        tokio::spawn(async move {
            let mut stats: Vec<MemStats> = procs
                .iter()
                .map(|p| MemStats {
                    cpu_start: read_cpu(&p.pid.to_string()).unwrap_or(0.0),
                    written_start: read_written(p.pid).unwrap_or(0),
                    ..MemStats::default()
                })
                .collect();
            // CPU time and storage writes are counted up to the end of the load phase.
            let end_of_load = |stats: &mut [MemStats]| {
                for (p, s) in procs.iter().zip(stats) {
                    s.cpu_end = read_cpu(&p.pid.to_string()).unwrap_or(0.0);
                    s.written_end = read_written(p.pid).unwrap_or(0);
                }
            };
            let mut load_ended = false;
            while sampling.load(Ordering::Relaxed) {
                let in_load = load_phase.load(Ordering::Relaxed);
                if !in_load && !load_ended {
                    load_ended = true;
                    end_of_load(&mut stats);
                }
                for (p, s) in procs.iter().zip(stats.iter_mut()) {
                    if let Some((rss, hwm)) = read_mem(p.pid) {
                        if s.samples == 0 {
                            s.rss_start_kb = rss;
                        }
                        s.samples += 1;
                        if in_load {
                            s.rss_max_kb = s.rss_max_kb.max(rss);
                        }
                        s.rss_end_kb = rss;
                        s.hwm_kb = hwm;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if !load_ended {
                end_of_load(&mut stats);
            }
            stats
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The load phase.
    let self_cpu_start = read_cpu("self").unwrap_or(0.0);
    let load_avg_start = loadavg();
    let started = Instant::now();
    let started_wall = Utc::now();
    let plan = Arc::new(Plan {
        http: http.clone(),
        base: base.clone(),
        mix: mix.clone(),
        recurring_pct: args.recurring_pct,
        lead_reminder_pct: args.lead_reminder_pct,
        remind_in_ms,
        start: started,
        stop: started + Duration::from_secs_f64(args.duration),
        rate: args.rate,
        next: AtomicU64::new(0),
        timeline: args.timeline.is_some(),
    });
    let mut handles = Vec::new();
    for c in 0..args.concurrency {
        let user = c % users;
        handles.push(tokio::spawn(client(
            plan.clone(),
            user,
            tokens[user].clone(),
            args.seed.wrapping_mul(1_000_003).wrapping_add(c as u64),
        )));
    }
    let mut recorders = Vec::new();
    for h in handles {
        recorders.push(h.await.context("a client panicked")?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    load_phase.store(false, Ordering::Relaxed);
    let self_cpu = read_cpu("self").unwrap_or(0.0) - self_cpu_start;
    let load_avg_end = loadavg();

    // Merge.
    let mut latency: BTreeMap<Op, Histogram<u64>> =
        Op::ALL.iter().map(|&op| (op, hist())).collect();
    let mut ok: BTreeMap<Op, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut expect: Vec<UserExpect> = (0..users).map(|_| UserExpect::default()).collect();
    let mut reminders: Vec<(usize, SetReminderRec)> = Vec::new();
    let mut late = 0u64;
    let mut send_delay = hist();
    let mut timeline: Vec<(u64, u64)> = Vec::new();
    for r in recorders {
        late += r.late;
        timeline.extend(r.timeline);
        send_delay.add(&r.send_delay).expect("same bounds");
        for (op, h) in &r.latency {
            latency
                .get_mut(op)
                .expect("every op")
                .add(h)
                .expect("same bounds");
        }
        for (op, n) in r.ok {
            *ok.entry(op).or_default() += n;
        }
        for (k, n) in r.errors {
            *errors.entry(k).or_default() += n;
        }
        let e = &mut expect[r.user];
        for key in r.expected {
            *e.expected.entry(key).or_default() += 1;
        }
        e.created_ack.extend(r.created);
        e.recurrences += r.recurrences;
        reminders.extend(r.reminders.into_iter().map(|x| (r.user, x)));
    }
    let total_ok: u64 = ok.values().sum();
    let total_err: u64 = errors.values().sum();
    let mut all = hist();
    for h in latency.values() {
        all.add(h).expect("same bounds");
    }
    let events_acked: u64 = expect
        .iter()
        .map(|e| e.expected.values().map(|&n| u64::from(n)).sum::<u64>())
        .sum();

    say!(
        to_err,
        "\nload phase: {elapsed:.1} s, {total_ok} requests ok ({:.0}/s), {total_err} failed, load average {load_avg_start} -> {load_avg_end}",
        total_ok as f64 / elapsed
    );
    let mut open_loop_json = json!(null);
    if let Some(rate) = args.rate {
        let issued = send_delay.len();
        say!(
            to_err,
            "  open loop: {rate} requests/s scheduled, {issued} sent; {late} sent late because all {} slots were busy (send delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms); latencies below are from the scheduled send time (coordinated omission corrected)",
            args.concurrency,
            ms(send_delay.value_at_quantile(0.5)),
            ms(send_delay.value_at_quantile(0.99)),
            ms(send_delay.max())
        );
        open_loop_json = json!({
            "rate_per_second": rate,
            "max_in_flight": args.concurrency,
            "sent": issued,
            "sent_late_cap_reached": late,
            "send_delay": summary(&send_delay),
            "latency_from": "scheduled send time",
        });
    }
    say!(
        to_err,
        "  {:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op",
        "ok",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    let mut ops_json = serde_json::Map::new();
    for op in Op::ALL {
        let h = &latency[&op];
        let n = ok.get(&op).copied().unwrap_or(0);
        if n == 0 && !mix.weights.iter().any(|(o, _)| *o == op) {
            continue;
        }
        let rate = n as f64 / elapsed;
        if n > 0 {
            say!(
                to_err,
                "  {:<9} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                op.name(),
                n,
                rate,
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.9)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
        let mut v = summary(h);
        v["per_second"] = json!(round3(rate));
        ops_json.insert(op.name().to_owned(), v);
    }
    say!(
        to_err,
        "  {:<9} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        "all",
        total_ok,
        total_ok as f64 / elapsed,
        ms(all.value_at_quantile(0.5)),
        ms(all.value_at_quantile(0.9)),
        ms(all.value_at_quantile(0.99)),
        ms(all.max())
    );
    let mut timeline_json = json!(null);
    if let Some(width) = args.timeline {
        let p99 = all.value_at_quantile(0.99);
        let cut = slices(&timeline, (width * 1e6) as u64, p99);
        say!(
            to_err,
            "  timeline, slices of {width} s by send time (slowest: of the requests slower than the p99 of {:.2} ms):",
            ms(p99)
        );
        say!(
            to_err,
            "  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "from s",
            "requests",
            "p50 ms",
            "p99 ms",
            "max ms",
            "slowest"
        );
        for c in &cut {
            say!(
                to_err,
                "  {:>9.3} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                c.from_s,
                c.latency.len(),
                ms(c.quantile(0.5)),
                ms(c.quantile(0.99)),
                ms(c.quantile(1.0)),
                c.slowest
            );
        }
        timeline_json = json!({
            "slice_seconds": width,
            "slowest_above_ms": ms(p99),
            "slices": cut.iter().map(|c| json!({
                "from_s": round3(c.from_s),
                "count": c.latency.len(),
                "p50_ms": ms(c.quantile(0.5)),
                "p99_ms": ms(c.quantile(0.99)),
                "max_ms": ms(c.quantile(1.0)),
                "slowest": c.slowest,
            })).collect::<Vec<_>>(),
        });
    }
    if !errors.is_empty() {
        say!(
            to_err,
            "  errors: {}",
            errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    say!(
        to_err,
        "  events acknowledged: {events_acked} ({:.0}/s); load generator CPU {self_cpu:.1} s",
        events_acked as f64 / elapsed
    );

    let mut failures: Vec<String> = Vec::new();
    let settle_deadline = Instant::now() + Duration::from_secs_f64(args.settle_timeout);

    // Reminders: every one set must leave PENDING.
    let mut reminder_json = json!(null);
    let mut remind_at_of: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut triggered_tasks: Vec<(usize, Uuid)> = Vec::new();
    if !args.no_verify && !reminders.is_empty() {
        let last = reminders
            .iter()
            .map(|(_, r)| r.remind_at)
            .max()
            .expect("not empty");
        let wait = (last - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
        tokio::time::sleep(wait).await;
        let mut pending: Vec<(usize, SetReminderRec)> = reminders.clone();
        let mut fire = hist();
        let mut states: BTreeMap<String, u64> = BTreeMap::new();
        let mut negative = 0u64;
        loop {
            let results: Vec<_> = futures::stream::iter(pending.iter().cloned())
                .map(|(user, r)| {
                    let http = http.clone();
                    let url = format!("{base}/api/v1/tasks/{}/reminders", r.task);
                    let auth = format!("Bearer {}", tokens[user]);
                    async move {
                        let page: anyhow::Result<Page<ReminderView>> =
                            get_json(&http, &url, &auth).await;
                        (user, r, page)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            let mut still = Vec::new();
            for (user, r, page) in results {
                let view = page
                    .ok()
                    .and_then(|p| p.items.into_iter().find(|v| v.id == r.reminder));
                match view {
                    Some(v) if v.status != "PENDING" => {
                        *states.entry(v.status.clone()).or_default() += 1;
                        if v.status == "TRIGGERED" {
                            triggered_tasks.push((user, r.task));
                            remind_at_of.insert(r.task, v.remind_at);
                        }
                        if let Some(f) = v.fired_at {
                            negative += u64::from(record_duration(&mut fire, f - v.remind_at));
                        }
                    }
                    _ => still.push((user, r)),
                }
            }
            pending = still;
            if pending.is_empty() || Instant::now() >= settle_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !pending.is_empty() {
            failures.push(format!(
                "{} of {} reminders never fired (still PENDING)",
                pending.len(),
                reminders.len()
            ));
        }
        if states.get("CANCELLED").copied().unwrap_or(0) > 0 {
            failures.push(format!(
                "{} reminders were CANCELLED on active tasks",
                states["CANCELLED"]
            ));
        }
        say!(
            to_err,
            "\nreminder fire delay (fired_at - remind_at, {} reminders): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; states {:?}{}",
            reminders.len(),
            ms(fire.value_at_quantile(0.5)),
            ms(fire.value_at_quantile(0.99)),
            ms(fire.max()),
            states,
            if pending.is_empty() {
                String::new()
            } else {
                format!(", {} still PENDING", pending.len())
            }
        );
        reminder_json = json!({
            "set": reminders.len(),
            "states": states,
            "pending_after_timeout": pending.len(),
            "fire_delay": summary(&fire),
            "fired_before_remind_at": negative,
        });
    }
    for (user, task) in &triggered_tasks {
        *expect[*user]
            .expected
            .entry((*task, "reminder.triggered"))
            .or_default() += 1;
    }

    // The audit log: every expected row, then the lags.
    let mut audit_json = json!(null);
    let mut sample_payload: Option<String> = None;
    if !args.no_verify {
        let waited = Instant::now();
        let mut rows_of: Vec<Option<Vec<AuditRow>>> = (0..users).map(|_| None).collect();
        let mut missing_of: Vec<u64> = vec![u64::MAX; users];
        let mut fetch_errors = 0u64;
        loop {
            let todo: Vec<usize> = (0..users).filter(|&u| missing_of[u] != 0).collect();
            let results: Vec<_> = futures::stream::iter(todo)
                .map(|u| {
                    let http = http.clone();
                    let base = base.clone();
                    let auth = format!("Bearer {}", tokens[u]);
                    async move { (u, fetch_audit(&http, &base, &auth).await) }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            for (u, r) in results {
                match r {
                    Ok((rows, sample)) => {
                        missing_of[u] = missing(&expect[u], &rows);
                        rows_of[u] = Some(rows);
                        if sample_payload.is_none() {
                            sample_payload = sample;
                        }
                    }
                    Err(e) => {
                        fetch_errors += 1;
                        if fetch_errors <= 3 {
                            eprintln!("  reading the audit log failed: {e:#}");
                        }
                    }
                }
            }
            if missing_of.iter().all(|&m| m == 0) || Instant::now() >= settle_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let missing_total: u64 = missing_of
            .iter()
            .map(|&m| if m == u64::MAX { 0 } else { m })
            .sum();
        let unread = missing_of.iter().filter(|&&m| m == u64::MAX).count();
        let expected_total: u64 = expect
            .iter()
            .map(|e| e.expected.values().map(|&n| u64::from(n)).sum::<u64>() + e.recurrences)
            .sum();
        let mut commit_lag = hist();
        let mut ack_lag = hist();
        let mut delivery = hist();
        let mut per_type: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
        let mut ack_after_audit = 0u64;
        let mut rows_total = 0u64;
        // Commit -> audit lag of the events committed in each half of the load phase: a lag that grows from the
        // first half to the second is a backlog (the consumers do not keep up), not a per-event latency.
        let half = started_wall + chrono::Duration::microseconds((elapsed * 500_000.0) as i64);
        let end = started_wall + chrono::Duration::microseconds((elapsed * 1_000_000.0) as i64);
        let mut halves = [hist(), hist()];
        for (u, rows) in rows_of.iter().enumerate() {
            for r in rows.iter().flatten() {
                rows_total += 1;
                let d = r.recorded_at - r.occurred_at;
                record_duration(&mut commit_lag, d);
                if r.occurred_at >= started_wall && r.occurred_at < end {
                    record_duration(&mut halves[usize::from(r.occurred_at >= half)], d);
                }
                record_duration(per_type.entry(r.event_type.clone()).or_insert_with(hist), d);
                if let Some(t) = r.task_id {
                    if r.event_type == "task.created"
                        && let Some(ack) = expect[u].created_ack.get(&t)
                    {
                        ack_after_audit +=
                            u64::from(record_duration(&mut ack_lag, r.recorded_at - *ack));
                    }
                    if r.event_type == "reminder.triggered"
                        && let Some(at) = remind_at_of.get(&t)
                    {
                        record_duration(&mut delivery, r.recorded_at - *at);
                    }
                }
            }
        }
        if missing_total > 0 || unread > 0 {
            failures.push(format!(
                "{missing_total} of {expected_total} expected audit rows missing after {:.0} s{}",
                waited.elapsed().as_secs_f64(),
                if unread > 0 {
                    format!(" ({unread} users' logs unreadable)")
                } else {
                    String::new()
                }
            ));
        }
        say!(
            to_err,
            "\naudit: {rows_total} rows read, {expected_total} expected, {missing_total} missing (waited {:.1} s after the load)",
            waited.elapsed().as_secs_f64()
        );
        say!(
            to_err,
            "  event lag, commit -> audit row (recorded_at - occurred_at): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(commit_lag.value_at_quantile(0.5)),
            ms(commit_lag.value_at_quantile(0.99)),
            ms(commit_lag.max())
        );
        say!(
            to_err,
            "    by commit time: first half of the load p50 {:.1} ms, p99 {:.1} ms; second half p50 {:.1} ms, p99 {:.1} ms",
            ms(halves[0].value_at_quantile(0.5)),
            ms(halves[0].value_at_quantile(0.99)),
            ms(halves[1].value_at_quantile(0.5)),
            ms(halves[1].value_at_quantile(0.99))
        );
        say!(
            to_err,
            "  event lag, create ack -> audit row (recorded_at - client ack): p50 {:.1} ms, p99 {:.1} ms ({ack_after_audit} rows recorded before the client saw the answer, counted as 0)",
            ms(ack_lag.value_at_quantile(0.5)),
            ms(ack_lag.value_at_quantile(0.99))
        );
        for (t, h) in &per_type {
            say!(
                to_err,
                "    {t:<20} {:>8} rows  p50 {:>8.1} ms  p99 {:>8.1} ms",
                h.len(),
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99))
            );
        }
        if !delivery.is_empty() {
            say!(
                to_err,
                "  reminder delivery, remind_at -> reminder.triggered audit row: p50 {:.1} ms, p99 {:.1} ms",
                ms(delivery.value_at_quantile(0.5)),
                ms(delivery.value_at_quantile(0.99))
            );
        }
        audit_json = json!({
            "rows_read": rows_total,
            "expected": expected_total,
            "missing": missing_total,
            "unreadable_users": unread,
            "waited_seconds": round3(waited.elapsed().as_secs_f64()),
            "commit_to_audit": summary(&commit_lag),
            "commit_to_audit_first_half": summary(&halves[0]),
            "commit_to_audit_second_half": summary(&halves[1]),
            "create_ack_to_audit": summary(&ack_lag),
            "create_audited_before_ack": ack_after_audit,
            "per_event_type": per_type.iter().map(|(k, h)| (k.clone(), summary(h))).collect::<serde_json::Map<_, _>>(),
            "reminder_remind_at_to_audit": summary(&delivery),
        });
    }

    // /metrics
    let mut metrics_json = Vec::new();
    for url in &args.metrics_urls {
        match http.get(url).send().await {
            Ok(r) => {
                let page = r.text().await.unwrap_or_default();
                let v = fire_delay_metric(&page);
                if let Some(v) = &v {
                    say!(
                        to_err,
                        "  /metrics {url}: todo_reminder_fire_delay_seconds {v}"
                    );
                }
                metrics_json.push(json!({"url": url, "todo_reminder_fire_delay_seconds": v}));
            }
            Err(e) => eprintln!("  cannot read {url}: {e}"),
        }
    }

    // Server processes.
    sampling.store(false, Ordering::Relaxed);
    let mem = sampler.await.unwrap_or_default();
    let mut procs_json = Vec::new();
    if !procs.is_empty() {
        say!(
            to_err,
            "\nserver processes (RSS sampled every 200 ms during the load; VmHWM at the end; storage writes during the load):"
        );
    }
    for (p, m) in procs.iter().zip(&mem) {
        let cpu = m.cpu_end - m.cpu_start;
        let written = m.written_end.saturating_sub(m.written_start) as f64;
        say!(
            to_err,
            "  {:<8} pid {:<7} RSS start {:>6.1} MB, max {:>6.1} MB, end {:>6.1} MB, VmHWM {:>6.1} MB, CPU {:.1} s ({:.0}% of one core), written {:.0} MB ({:.1} KiB per request)",
            p.name,
            p.pid,
            m.rss_start_kb as f64 / 1024.0,
            m.rss_max_kb as f64 / 1024.0,
            m.rss_end_kb as f64 / 1024.0,
            m.hwm_kb as f64 / 1024.0,
            cpu,
            cpu / elapsed * 100.0,
            written / 1e6,
            written / 1024.0 / total_ok.max(1) as f64
        );
        procs_json.push(json!({
            "name": p.name,
            "pid": p.pid,
            "samples": m.samples,
            "rss_start_mb": round3(m.rss_start_kb as f64 / 1024.0),
            "rss_max_mb": round3(m.rss_max_kb as f64 / 1024.0),
            "rss_end_mb": round3(m.rss_end_kb as f64 / 1024.0),
            "vm_hwm_mb": round3(m.hwm_kb as f64 / 1024.0),
            "cpu_seconds_load": round3(cpu),
            "written_mb_load": round3(written / 1e6),
        }));
    }

    // Baselines.
    let mut baseline_json = json!(null);
    if args.baseline {
        let payload_len = sample_payload.as_ref().map_or(450, String::len);
        let mut results = Vec::new();
        say!(
            to_err,
            "\nbaseline ({} clients, {:.0} s each, load average {}):",
            args.concurrency,
            args.baseline_duration,
            loadavg()
        );
        let db = match &args.baseline_pg {
            Some(url) => {
                baseline_postgres(
                    url,
                    args.concurrency,
                    args.baseline_connections.unwrap_or(16),
                    args.baseline_duration,
                    payload_len,
                )
                .await?
            }
            None => {
                baseline_sqlite(
                    args.concurrency,
                    args.baseline_connections
                        .unwrap_or(todo_store::SqliteConfig::file("baseline.db").max_connections),
                    args.baseline_duration,
                    payload_len,
                )
                .await?
            }
        };
        results.push(("database", db));
        if let Some(brokers) = &args.baseline_kafka {
            let message = sample_payload
                .clone()
                .unwrap_or_else(|| "x".repeat(450))
                .into_bytes();
            results.push((
                "broker",
                baseline_kafka(brokers, args.concurrency, args.baseline_duration, message).await?,
            ));
        }
        let mut ratios = serde_json::Map::new();
        for (kind, b) in &results {
            say!(
                to_err,
                "  {kind}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors  [{}]",
                b.rate(),
                ms(b.latency.value_at_quantile(0.5)),
                ms(b.latency.value_at_quantile(0.99)),
                b.errors,
                b.what
            );
        }
        let db = &results[0].1;
        say!(
            to_err,
            "  main run as a ratio of the database baseline (throughput: ops/s over transactions/s; latency: over the baseline's):"
        );
        for op in Op::ALL.into_iter().filter(|op| op.writes()) {
            let n = ok.get(&op).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = &latency[&op];
            let r = json!({
                "throughput": round3(n as f64 / elapsed / db.rate()),
                "p50": round3(h.value_at_quantile(0.5) as f64 / db.latency.value_at_quantile(0.5).max(1) as f64),
                "p99": round3(h.value_at_quantile(0.99) as f64 / db.latency.value_at_quantile(0.99).max(1) as f64),
            });
            say!(
                to_err,
                "    {:<9} throughput {:.3}, p50 {:.1}x, p99 {:.1}x",
                op.name(),
                r["throughput"].as_f64().unwrap_or(0.0),
                r["p50"].as_f64().unwrap_or(0.0),
                r["p99"].as_f64().unwrap_or(0.0)
            );
            ratios.insert(format!("{}_vs_database", op.name()), r);
        }
        let writes: u64 = ok
            .iter()
            .filter(|(op, _)| op.writes())
            .map(|(_, n)| n)
            .sum();
        let w = round3(writes as f64 / elapsed / db.rate());
        say!(
            to_err,
            "    {:<9} throughput {w:.3} (all write requests)",
            "writes"
        );
        ratios.insert("writes_vs_database".into(), json!(w));
        if let Some((_, b)) = results.iter().find(|(k, _)| *k == "broker") {
            let r = round3(events_acked as f64 / elapsed / b.rate());
            say!(
                to_err,
                "    events acknowledged per second over the broker's produce rate: {r:.3}"
            );
            ratios.insert("events_vs_broker".into(), json!(r));
        }
        baseline_json = json!({
            "results": results.iter().map(|(k, b)| (k.to_string(), b.to_json())).collect::<serde_json::Map<_, _>>(),
            "ratios": ratios,
        });
    }

    if failures.is_empty() {
        say!(to_err, "\nchecks: ok");
    } else {
        for f in &failures {
            say!(to_err, "\nERROR: {f}");
        }
    }

    let report = json!({
        "label": args.label,
        "url": base,
        "started_at": started_wall,
        "concurrency": args.concurrency,
        "open_loop": open_loop_json,
        "users": users,
        "duration_seconds": round3(elapsed),
        "mix": mix.describe(),
        "recurring_pct": args.recurring_pct,
        "lead_reminder_pct": args.lead_reminder_pct,
        "load_average": {"start": load_avg_start, "end": load_avg_end},
        "requests_ok": total_ok,
        "requests_failed": total_err,
        "throughput_per_second": round3(total_ok as f64 / elapsed),
        "latency_all": summary(&all),
        "timeline": timeline_json,
        "operations": ops_json,
        "errors": errors,
        "events_acknowledged": events_acked,
        "load_generator_cpu_seconds": round3(self_cpu),
        "reminders": reminder_json,
        "audit": audit_json,
        "metrics": metrics_json,
        "processes": procs_json,
        "baseline": baseline_json,
        "failures": failures,
    });
    match args.json.as_deref() {
        Some("-") => println!("{}", serde_json::to_string_pretty(&report)?),
        Some(path) => std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("--json: cannot write {path}"))?,
        None => {}
    }
    Ok(if failures.is_empty() { 0 } else { 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cut_requests_by_send_time_and_count_the_slowest_in_each() {
        // (send time, latency) in microseconds; slices of 100 ms; the slowest are those over 10 ms.
        let requests = [
            (0, 1_000),
            (99_999, 2_000),
            (100_000, 50_000),
            (150_000, 3_000),
            (350_000, 20_000),
        ];
        let cut = slices(&requests, 100_000, 10_000);
        // Slice start, requests, median, slowest, how many over the threshold.
        let counts: Vec<(f64, usize, u64, u64, u64)> = cut
            .iter()
            .map(|c| {
                (
                    c.from_s,
                    c.latency.len(),
                    c.quantile(0.5),
                    c.quantile(1.0),
                    c.slowest,
                )
            })
            .collect();
        // The empty third slice is kept: a stall shows as a gap.
        assert_eq!(
            counts,
            [
                (0.0, 2, 1_000, 2_000, 0),
                (0.1, 2, 3_000, 50_000, 1),
                (0.2, 0, 0, 0, 0),
                (0.3, 1, 20_000, 20_000, 1),
            ]
        );
        assert!(slices(&[], 100_000, 10_000).is_empty());
    }

    #[test]
    fn a_slice_quantile_is_the_nearest_rank() {
        // Latencies 1..=200 microseconds sent in the same slice, in reverse order.
        let requests: Vec<(u64, u64)> = (1..=200).rev().map(|l| (5, l)).collect();
        let cut = slices(&requests, 1_000, 198);
        assert_eq!(cut.len(), 1);
        let slice = &cut[0];
        assert_eq!(
            [0.01, 0.5, 0.99, 1.0].map(|q| slice.quantile(q)),
            [2, 100, 198, 200]
        );
        assert_eq!(slice.slowest, 2);
    }
}
