//! Real processes for the end-to-end tests: the `todo` binary, a tansu broker, a fresh PostgreSQL database, and an
//! HTTP client for the API.
//!
//! Every process is started with `kill_on_drop`, so a failing test leaves nothing running, and keeps its output
//! (stdout and stderr lines) so a failure can show what the process said.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use uuid::Uuid;

/// The `todo` binary that `cargo test --workspace` builds next to the test executables (`target/<profile>/todo`).
///
/// # Errors
/// When it has not been built.
pub fn todo_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no parent directory")?
        .join("todo");
    ensure!(
        bin.exists(),
        "{} was not built: run `cargo test --workspace` (or `cargo build -p todo-bin`)",
        bin.display()
    );
    Ok(bin)
}

/// A free TCP port on the loopback interface (bound and released at once).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/<prefix>-<uuid>`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to start a process, kept so that it can be started again after a kill.
#[derive(Debug, Clone)]
pub struct Spec {
    /// A name for messages.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set on top of a cleaned environment (the `TODO_*` variables of the test process are
    /// removed so that only the flags count).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub dir: PathBuf,
}

/// A running child process with its captured output.
#[derive(Debug)]
pub struct Proc {
    spec: Spec,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    lines: watch::Receiver<usize>,
}

impl Proc {
    /// Starts `spec`.
    ///
    /// # Errors
    /// When the program cannot be spawned.
    pub fn start(spec: Spec) -> anyhow::Result<Self> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, _) in std::env::vars() {
            if key.starts_with("TODO_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {} ({})", spec.name, spec.program.display()))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        for (stream, pipe) in [
            (
                "out",
                Box::new(out) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            ),
            ("err", Box::new(err)),
        ] {
            let (output, tx) = (output.clone(), tx.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let n = {
                        let mut o = output.lock().expect("output lock");
                        o.push(format!("[{stream}] {line}"));
                        o.len()
                    };
                    tx.send_replace(n);
                }
            });
        }
        Ok(Proc {
            spec,
            child,
            output,
            lines,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").join("\n")
    }

    /// Waits until a printed line satisfies `find`, and returns what `find` returned.
    ///
    /// # Errors
    /// When the process exits first or `timeout` passes; the message holds its output.
    pub async fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = 0;
        loop {
            let found = {
                let o = self.output.lock().expect("output lock");
                let hit = o[seen..]
                    .iter()
                    .find_map(|l| find(l.get(6..).unwrap_or("")));
                seen = o.len();
                hit
            };
            if let Some(hit) = found {
                return Ok(hit);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the readers a moment to drain the pipes, then report.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.spec.name,
                    self.output()
                );
            }
            if tokio::time::timeout_at(deadline, self.lines.changed())
                .await
                .is_err()
            {
                bail!(
                    "{} was not ready within {timeout:?}:\n{}",
                    self.spec.name,
                    self.output()
                );
            }
        }
    }

    /// Kills it with SIGKILL and reaps it: no shutdown code runs.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks it to stop with SIGTERM and waits (up to `timeout`, then SIGKILL). Returns whether it exited by itself.
    pub async fn terminate(&mut self, timeout: Duration) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_ok()
        {
            true
        } else {
            self.kill9().await;
            false
        }
    }

    /// Starts the same command again (after [`Proc::kill9`] or [`Proc::terminate`]).
    ///
    /// # Errors
    /// As [`Proc::start`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let previous = self.output();
        *self = Proc::start(self.spec.clone())?;
        self.output
            .lock()
            .expect("output lock")
            .insert(0, format!("{previous}\n----- restarted -----"));
        Ok(())
    }
}

/// A `todo` process with an HTTP listener (`serve` or `worker`).
#[derive(Debug)]
pub struct TodoProcess {
    /// The process.
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl TodoProcess {
    /// Starts `todo <args> --listen 127.0.0.1:<free port>` and waits for its `listening on` line.
    ///
    /// # Errors
    /// When it does not come up within a minute; the message holds its output.
    pub async fn start(name: &str, args: &[String], dir: &Path) -> anyhow::Result<Self> {
        Self::start_on(name, args, dir, free_port()?).await
    }

    /// As [`TodoProcess::start`], on a chosen port.
    ///
    /// # Errors
    /// When it does not come up within a minute; the message holds its output.
    pub async fn start_on(
        name: &str,
        args: &[String],
        dir: &Path,
        port: u16,
    ) -> anyhow::Result<Self> {
        let mut args = args.to_vec();
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        let spec = Spec {
            name: name.into(),
            program: todo_binary()?,
            args,
            env: vec![("RUST_LOG".into(), "info".into())],
            dir: dir.to_path_buf(),
        };
        let mut proc = Proc::start(spec)?;
        let base = proc
            .wait_for_line(Duration::from_secs(60), |l| {
                l.strip_prefix("listening on ").map(str::to_owned)
            })
            .await?;
        Ok(TodoProcess { proc, base })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// Kills it with SIGKILL, then starts it again on the same address.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn kill9_and_restart(&mut self) -> anyhow::Result<()> {
        self.proc.kill9().await;
        self.restart().await
    }

    /// Starts it again (after a kill or stop) on the same address and waits until it listens.
    ///
    /// # Errors
    /// When it does not come back within a minute.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let mut last = None;
        // The port may linger for a moment after a kill; retry the bind a few times.
        for _ in 0..20 {
            self.proc.restart()?;
            match self
                .proc
                .wait_for_line(Duration::from_secs(60), |l| {
                    l.strip_prefix("listening on ").map(str::to_owned)
                })
                .await
            {
                Ok(base) => {
                    ensure!(base == self.base, "restarted on {base}, not {}", self.base);
                    return Ok(());
                }
                Err(e) if e.to_string().contains("cannot bind") => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("restart failed")))
    }
}

/// Runs `todo <args>` to completion and returns its standard output.
///
/// # Errors
/// When it fails; the message holds its output.
pub async fn todo_command(args: &[String], dir: &Path) -> anyhow::Result<String> {
    let mut cmd = Command::new(todo_binary()?);
    cmd.args(args).current_dir(dir).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("TODO_") {
            cmd.env_remove(key);
        }
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .context("todo command timed out")??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "todo {} failed ({}):\n{stdout}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// A tansu broker process on a fixed loopback port.
#[derive(Debug)]
pub struct Tansu {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT`.
    pub address: String,
    _dir: TempDir,
}

impl Tansu {
    /// Starts tansu from `TODO_TANSU_BIN`; `persistent` keeps its log in a SQLite file so that a restart keeps it.
    ///
    /// Returns `None` (skip) when `TODO_TANSU_BIN` is unset outside CI.
    ///
    /// # Errors
    /// When it does not start.
    ///
    /// # Panics
    /// Under `CI=true` when `TODO_TANSU_BIN` is unset.
    pub async fn start(persistent: bool) -> anyhow::Result<Option<Self>> {
        let Some(bin) = crate::require("TODO_TANSU_BIN") else {
            return Ok(None);
        };
        let dir = TempDir::new("todo-e2e-tansu")?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        // The SQLite engine takes a path relative to the working directory.
        let engine = if persistent {
            "sqlite://tansu.db".to_owned()
        } else {
            "memory://tansu/".to_owned()
        };
        let spec = Spec {
            name: "tansu".into(),
            program: bin.into(),
            args: vec![
                "broker".into(),
                "--listener-url".into(),
                format!("tcp://{address}"),
                "--advertised-listener-url".into(),
                format!("tcp://{address}"),
                "--storage-engine".into(),
                engine,
            ],
            env: Vec::new(),
            dir: dir.path().to_path_buf(),
        };
        let proc = Proc::start(spec)?;
        let mut tansu = Tansu {
            proc,
            address,
            _dir: dir,
        };
        tansu.wait_until_listening().await?;
        Ok(Some(tansu))
    }

    async fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(&self.address).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("tansu did not listen within 60 s:\n{}", self.proc.output());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops it hard (SIGKILL).
    pub async fn kill(&mut self) {
        self.proc.kill9().await;
    }

    /// Starts it again on the same port with the same storage.
    ///
    /// # Errors
    /// When it does not come back.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.restart()?;
        self.wait_until_listening().await
    }
}

/// A fresh PostgreSQL database on the test server, dropped by [`PgDatabase::drop_database`].
#[derive(Debug)]
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates `todo_e2e_<uuid>` on the server `TODO_TEST_DATABASE_URL` names.
    ///
    /// Returns `None` (skip) when the variable is unset outside CI.
    ///
    /// # Errors
    /// When the server does not answer.
    ///
    /// # Panics
    /// Under `CI=true` when the variable is unset.
    pub async fn create() -> anyhow::Result<Option<Self>> {
        let Some(server) = crate::require("TODO_TEST_DATABASE_URL") else {
            return Ok(None);
        };
        Self::create_on(&server).await.map(Some)
    }

    /// Creates `todo_e2e_<uuid>` on the server `server` names (a URL of one of its databases).
    ///
    /// # Errors
    /// When the server does not answer.
    pub async fn create_on(server: &str) -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let server = server.to_owned();
        let name = format!("todo_e2e_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = match server.rsplit_once('/') {
            Some((prefix, _)) => format!("{prefix}/{name}"),
            None => bail!("TODO_TEST_DATABASE_URL has no database part: {server}"),
        };
        Ok(PgDatabase { url, server, name })
    }

    /// Drops the database (forcing connections closed).
    pub async fn drop_database(&self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

/// An HTTP client of the API for one user.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The user.
    pub user: Uuid,
    auth: String,
}

/// A JSON answer with its status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body (`Value::Null` when not JSON).
    pub body: Value,
}

impl Answer {
    /// The body when the status is 2xx.
    ///
    /// # Errors
    /// Any other status, with the body.
    pub fn ok(self) -> anyhow::Result<Value> {
        ensure!(
            (200..300).contains(&self.status),
            "HTTP {}: {}",
            self.status,
            self.body
        );
        Ok(self.body)
    }
}

impl Api {
    /// A client for a new user with a token minted from `secret`.
    ///
    /// # Errors
    /// When the token cannot be minted.
    pub fn new_user(base: &str, secret: &str) -> anyhow::Result<Self> {
        let user = Uuid::new_v4();
        let token = todo_bin::auth::mint_token(
            &SecretString::from(secret.to_owned()),
            todo_domain::UserId::from_uuid(user),
            chrono::Duration::hours(2),
        )?;
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            user,
            auth: format!("Bearer {token}"),
        })
    }

    /// Sends a request and returns the status and JSON body.
    ///
    /// # Errors
    /// Transport errors (connection refused, timeout).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.auth);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// `POST /api/v1/tasks`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn create(&self, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/api/v1/tasks", Some(body))
            .await?
            .ok()
    }

    /// `POST /api/v1/tasks/{id}/complete`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn complete(&self, id: &str) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/tasks/{id}/complete"),
            None,
        )
        .await?
        .ok()
    }

    /// `PATCH /api/v1/tasks/{id}`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn patch(&self, id: &str, body: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            Some(body),
        )
        .await?
        .ok()
    }

    /// `DELETE /api/v1/tasks/{id}`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/tasks/{id}"),
            None,
        )
        .await?
        .ok()
        .map(drop)
    }

    /// `POST /api/v1/tasks/{id}/reminders`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn remind(&self, id: &str, body: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/tasks/{id}/reminders"),
            Some(body),
        )
        .await?
        .ok()
    }

    /// `GET /api/v1/tasks/{id}/reminders`.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn reminders(&self, id: &str) -> anyhow::Result<Vec<Value>> {
        let page = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/tasks/{id}/reminders"),
                None,
            )
            .await?
            .ok()?;
        Ok(items(page))
    }

    /// `GET /api/v1/tasks/{id}` (`None` on 404).
    ///
    /// # Errors
    /// Transport errors or another non-2xx answer.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let a = self
            .call(reqwest::Method::GET, &format!("/api/v1/tasks/{id}"), None)
            .await?;
        if a.status == 404 {
            return Ok(None);
        }
        a.ok().map(Some)
    }

    /// Every task of the user (all statuses), following the cursor.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn all_tasks(&self) -> anyhow::Result<Vec<Value>> {
        self.paged("/api/v1/tasks?limit=100").await
    }

    /// The user's whole audit log, following the cursor.
    ///
    /// # Errors
    /// Transport errors or a non-2xx answer.
    pub async fn audit(&self) -> anyhow::Result<Vec<Value>> {
        self.paged("/api/v1/audit?limit=500").await
    }

    async fn paged(&self, first: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut path = first.to_owned();
        loop {
            let page = self.call(reqwest::Method::GET, &path, None).await?.ok()?;
            let next = page["next_cursor"].as_str().map(str::to_owned);
            out.extend(items(page));
            match next {
                Some(c) => path = format!("{first}&cursor={c}"),
                None => return Ok(out),
            }
        }
    }
}

fn items(page: Value) -> Vec<Value> {
    match page {
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// How many audit rows of each `(task id, event type)` a user's log holds.
pub fn audit_counts(audit: &[Value]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for row in audit {
        let key = (
            row["task_id"].as_str().unwrap_or_default().to_owned(),
            row["event_type"].as_str().unwrap_or_default().to_owned(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Polls `check` every 100 ms until it returns `Ok(Some(_))` or `timeout` passes.
///
/// # Errors
/// The last error or "still waiting" message after the timeout.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<T, String>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(state)) => state,
            Err(e) => format!("error: {e:#}"),
        };
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: not reached within {timeout:?}; last state: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A body for `POST /api/v1/tasks`.
pub fn task(title: &str) -> Value {
    json!({ "title": title })
}

/// A private PostgreSQL server (its own data directory and port), for drills that stop and restart the database
/// without disturbing anything else on the machine.
#[derive(Debug)]
pub struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: TempDir,
}

impl PrivatePostgres {
    /// Initialises a cluster in a temporary directory and starts it.
    ///
    /// Returns `None` (skip) outside CI when the PostgreSQL server binaries are not installed.
    ///
    /// # Errors
    /// When `initdb` or the start fails.
    ///
    /// # Panics
    /// Under `CI=true` when the binaries are missing.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(bin) = postgres_bindir() else {
            assert!(
                !crate::is_ci(),
                "PostgreSQL server binaries (initdb, pg_ctl) not found"
            );
            eprintln!("*** SKIPPED: PostgreSQL server binaries (initdb, pg_ctl) not found ***");
            return Ok(None);
        };
        let dir = TempDir::new("todo-e2e-pg")?;
        let data = dir.path().join("data");
        let port = free_port()?;
        // The server refuses to run as root: run it as the `postgres` user then.
        if is_root().await {
            run(&["chown", "postgres", &dir.path().to_string_lossy()], None).await?;
        }
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        )
        .await?;
        let pg = PrivatePostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            port,
            _dir: dir,
        };
        pg.start_server().await?;
        Ok(Some(pg))
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    ///
    /// # Errors
    /// When it does not start.
    pub async fn start_server(&self) -> anyhow::Result<()> {
        let log = self.data.join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
            self.port
        );
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
        .await
    }

    /// Stops the server (`fast`: open connections are closed, as in an outage).
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub async fn stop_server(&self) -> anyhow::Result<()> {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
        .await
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(self.bin.join("pg_ctl"));
        cmd.args([
            "-D",
            &self.data.to_string_lossy(),
            "-m",
            "immediate",
            "stop",
        ]);
        if let Ok(true) = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        {
            let mut su = std::process::Command::new("runuser");
            su.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args([
                    "-D",
                    &self.data.to_string_lossy(),
                    "-m",
                    "immediate",
                    "stop",
                ]);
            cmd = su;
        }
        let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn postgres_bindir() -> Option<PathBuf> {
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

async fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

async fn as_postgres(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let program = program.to_string_lossy();
    if is_root().await {
        let mut all = vec!["runuser", "-u", "postgres", "--", &program];
        all.extend_from_slice(args);
        run(&all, None).await
    } else {
        let mut all = vec![&*program];
        all.extend_from_slice(args);
        run(&all, None).await
    }
}

async fn run(args: &[&str], dir: Option<&Path>) -> anyhow::Result<()> {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]).kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .with_context(|| format!("{} timed out", args.join(" ")))??;
    ensure!(
        out.status.success(),
        "{} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
