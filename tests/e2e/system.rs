//! A whole deployment of real processes: embedded (one `todo serve`) or distributed (PostgreSQL, a tansu broker,
//! `todo serve --api-only` and `todo worker`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use todo_e2e::harness::{Api, PgDatabase, Tansu, TempDir, TodoProcess, todo_command};

/// How many of the broker's last output lines a failing test prints.
const BROKER_LOG_LINES: usize = 200;

/// Which wiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One process: SQLite file and the in-process broker.
    Embedded,
    /// PostgreSQL + the broker process, API and workers as separate processes.
    Distributed,
}

/// How to start it.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `--fault-inject consumer:text`.
    pub(crate) fault: Option<String>,
    /// `--retry-delays-ms`.
    pub(crate) retry_delays_ms: String,
    /// A broker that keeps its log across restarts.
    pub(crate) persistent_broker: bool,
    /// The PostgreSQL server to create the database on (default: `TODO_TEST_DATABASE_URL`).
    pub(crate) pg_server: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fault: None,
            retry_delays_ms: "100,200,400".into(),
            persistent_broker: false,
            pg_server: None,
        }
    }
}

/// At most this many deployments run at once: each is several processes, and the machine may have two cores.
static DEPLOYMENTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A running deployment.
pub(crate) struct System {
    /// The wiring.
    pub(crate) mode: Mode,
    /// The API process (in embedded mode also the workers).
    pub(crate) api: TodoProcess,
    /// The worker process (distributed mode).
    pub(crate) worker: Option<TodoProcess>,
    /// The broker process (distributed mode).
    pub(crate) broker: Option<Tansu>,
    db: Option<PgDatabase>,
    secret: String,
    dir: TempDir,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl System {
    /// Starts a deployment, or returns `None` when a server it needs is not configured outside CI (skip).
    ///
    /// # Errors
    /// When a process does not come up.
    pub(crate) async fn start(mode: Mode, options: &Options) -> anyhow::Result<Option<Self>> {
        let slot = DEPLOYMENTS.acquire().await?;
        let dir = TempDir::new(match mode {
            Mode::Embedded => "todo-e2e-embedded",
            Mode::Distributed => "todo-e2e-distributed",
        })?;
        let secret = format!("e2e-secret-{}", uuid::Uuid::new_v4());
        match mode {
            Mode::Embedded => {
                let mut args = strings(&["serve", "--jwt-secret", &secret]);
                args.extend(worker_flags(options));
                let api = TodoProcess::start("todo serve (embedded)", &args, dir.path()).await?;
                Ok(Some(System {
                    mode,
                    api,
                    worker: None,
                    broker: None,
                    db: None,
                    secret,
                    dir,
                    _slot: slot,
                }))
            }
            Mode::Distributed => {
                let db = match &options.pg_server {
                    Some(server) => PgDatabase::create_on(server).await?,
                    None => match PgDatabase::create().await? {
                        Some(db) => db,
                        None => return Ok(None),
                    },
                };
                let Some(broker) = Tansu::start(options.persistent_broker).await? else {
                    db.drop_database().await;
                    return Ok(None);
                };
                let mut system = System {
                    mode,
                    api: TodoProcess::start(
                        "todo serve --api-only",
                        &[
                            strings(&["serve", "--api-only", "--jwt-secret", &secret]),
                            backend_flags(&db.url, &broker.address),
                        ]
                        .concat(),
                        dir.path(),
                    )
                    .await?,
                    worker: None,
                    broker: Some(broker),
                    db: Some(db),
                    secret,
                    dir,
                    _slot: slot,
                };
                let (_, address) = system.backends();
                todo_command(
                    &strings(&[
                        "topics",
                        "ensure",
                        "--profile",
                        "local",
                        "--kafka-brokers",
                        &address,
                    ]),
                    system.dir.path(),
                )
                .await
                .context("todo topics ensure")?;
                system.start_worker(options).await?;
                Ok(Some(system))
            }
        }
    }

    /// Starts (or replaces) the worker process of a distributed deployment with `options`.
    ///
    /// # Errors
    /// When it does not come up.
    pub(crate) async fn start_worker(&mut self, options: &Options) -> anyhow::Result<()> {
        if let Some(mut old) = self.worker.take() {
            old.proc.terminate(Duration::from_secs(30)).await;
        }
        let (db, broker) = self.backends();
        let args = [
            strings(&["worker"]),
            backend_flags(&db, &broker),
            worker_flags(options),
        ]
        .concat();
        self.worker = Some(TodoProcess::start("todo worker", &args, self.dir.path()).await?);
        Ok(())
    }

    /// Restarts the process that runs the consumers with new options (the embedded server, or the worker).
    ///
    /// # Errors
    /// When it does not come back.
    pub(crate) async fn restart_consumers(&mut self, options: &Options) -> anyhow::Result<()> {
        match self.mode {
            Mode::Distributed => self.start_worker(options).await,
            Mode::Embedded => {
                self.api.proc.terminate(Duration::from_secs(30)).await;
                let mut args = strings(&["serve", "--jwt-secret", &self.secret]);
                args.extend(worker_flags(options));
                let mut api = TodoProcess::start_on(
                    "todo serve (embedded)",
                    &args,
                    self.dir.path(),
                    self.api.port(),
                )
                .await?;
                // Keep the old output for diagnostics.
                std::mem::swap(&mut self.api, &mut api);
                Ok(())
            }
        }
    }

    /// The process that runs the consumers (its `/metrics` has the consumer counters).
    pub(crate) fn consumers(&self) -> &TodoProcess {
        self.worker.as_ref().unwrap_or(&self.api)
    }

    /// The process that runs the consumers, mutably.
    pub(crate) fn consumers_mut(&mut self) -> &mut TodoProcess {
        self.worker.as_mut().unwrap_or(&mut self.api)
    }

    /// A client for a new user.
    ///
    /// # Errors
    /// When the token cannot be minted.
    pub(crate) fn user(&self) -> anyhow::Result<Api> {
        Api::new_user(&self.api.base, &self.secret)
    }

    /// The store and broker configuration of this deployment, as the binary builds them from its flags.
    pub(crate) fn configs(
        &self,
    ) -> (
        todo_bin::config::StoreConfig,
        todo_bin::config::BrokerConfig,
    ) {
        match self.mode {
            Mode::Embedded => (
                todo_bin::config::StoreConfig::Sqlite {
                    path: self.dir.path().join("todo.db"),
                },
                todo_bin::config::BrokerConfig::Embedded,
            ),
            Mode::Distributed => {
                let (db, broker) = self.backends();
                (
                    todo_bin::config::StoreConfig::Postgres {
                        url: db,
                        max_connections: 2,
                    },
                    todo_bin::config::BrokerConfig::Kafka {
                        brokers: broker,
                        options: BTreeMap::new(),
                    },
                )
            }
        }
    }

    fn backends(&self) -> (String, String) {
        (
            self.db.as_ref().map(|d| d.url.clone()).unwrap_or_default(),
            self.broker
                .as_ref()
                .map(|b| b.address.clone())
                .unwrap_or_default(),
        )
    }

    /// The database and broker flags of this deployment (the embedded default has none).
    pub(crate) fn backend_flags(&self) -> Vec<String> {
        match self.mode {
            Mode::Embedded => strings(&["--database-url", "sqlite://todo.db"]),
            Mode::Distributed => {
                let (db, broker) = self.backends();
                backend_flags(&db, &broker)
            }
        }
    }

    /// Runs `todo <args> <backend flags>` in the deployment's directory and returns its standard output.
    ///
    /// # Errors
    /// When the command fails.
    pub(crate) async fn todo(&self, args: &[String]) -> anyhow::Result<String> {
        let mut all = args.to_vec();
        all.extend(self.backend_flags());
        todo_command(&all, self.dir.path()).await
    }

    /// The number of messages in each dead-letter topic (`todo dlq list`).
    ///
    /// # Errors
    /// When the command fails or its output cannot be read.
    pub(crate) async fn dlq_counts(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let out = self.todo(&strings(&["dlq", "list"])).await?;
        let mut counts = BTreeMap::new();
        for line in out.lines() {
            if let Some((topic, rest)) = line.split_once(": ")
                && let Some(n) = rest.strip_suffix(" message(s)")
            {
                counts.insert(topic.to_owned(), n.trim().parse()?);
            }
        }
        anyhow::ensure!(
            counts.len() == 3,
            "unexpected `todo dlq list` output:\n{out}"
        );
        Ok(counts)
    }

    /// The consumer counters the consumers' process exports on `/metrics`: `(metric, group) -> value`.
    ///
    /// # Errors
    /// When `/metrics` does not answer.
    pub(crate) async fn consumer_metrics(&self) -> anyhow::Result<BTreeMap<(String, String), f64>> {
        let text = reqwest::get(format!("{}/metrics", self.consumers().base))
            .await?
            .text()
            .await?;
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("todo_consumer_") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once("{group=\"") else {
                continue;
            };
            let Some((group, value)) = rest.split_once("\"}") else {
                continue;
            };
            out.insert(
                (name.to_owned(), group.to_owned()),
                value.trim().parse().unwrap_or(f64::NAN),
            );
        }
        Ok(out)
    }

    /// Everything the processes printed, for a failure message.
    pub(crate) fn logs(&self) -> String {
        let mut out = format!(
            "===== {} =====\n{}",
            self.api.proc.name(),
            self.api.proc.output()
        );
        if let Some(w) = &self.worker {
            out.push_str(&format!(
                "\n===== {} =====\n{}",
                w.proc.name(),
                w.proc.output()
            ));
        }
        if let Some(b) = &self.broker {
            // The broker's group coordinator says when it drops a member and starts a new generation; its last
            // lines are enough to tell a consumer group that never formed again from a stalled consumer.
            let output = b.proc.output();
            let lines: Vec<&str> = output.lines().collect();
            let tail = &lines[lines.len().saturating_sub(BROKER_LOG_LINES)..];
            out.push_str(&format!(
                "\n===== {} (last {} of {} lines) =====\n{}",
                b.proc.name(),
                tail.len(),
                lines.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Stops everything gracefully and drops the database.
    pub(crate) async fn stop(mut self) {
        if let Some(w) = &mut self.worker {
            w.proc.terminate(Duration::from_secs(30)).await;
        }
        self.api.proc.terminate(Duration::from_secs(30)).await;
        if let Some(b) = &mut self.broker {
            b.kill().await;
        }
        if let Some(db) = &self.db {
            db.drop_database().await;
        }
    }
}

/// Owned strings from string slices.
pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn backend_flags(db: &str, broker: &str) -> Vec<String> {
    strings(&["--database-url", db, "--kafka-brokers", broker])
}

fn worker_flags(options: &Options) -> Vec<String> {
    let mut args = strings(&["--retry-delays-ms", &options.retry_delays_ms]);
    if let Some(f) = &options.fault {
        args.extend(strings(&["--fault-inject", f]));
    }
    args
}
