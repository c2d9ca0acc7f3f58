//! Command line and typed configuration.
//!
//! Every flag also reads a `TODO_*` environment variable (clap's `env`), and the defaults give the embedded
//! single-process setup: a SQLite file in the working directory, the in-process broker, every worker, the API on
//! 127.0.0.1:8080. Library code never reads the environment: [`Cli`] is parsed once in `main` and turned into the
//! typed settings below.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use uuid::Uuid;

/// `todo`: event-driven task management, REST API, MCP tools and the event pipeline in one binary.
#[derive(Debug, Parser)]
#[command(name = "todo", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to run (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log output format.
    #[arg(long, env = "TODO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax (for example `info,todo_bin=debug`).
    #[arg(long, env = "TODO_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: API plus (unless `--api-only`) the workers. With no flags, the embedded default.
    Serve(ServeArgs),
    /// Run workers only (relay, consumers, scheduler), with health and metrics endpoints on `--listen`.
    Worker(WorkerArgs),
    /// Apply the database migrations and exit.
    Migrate(StoreArgs),
    /// Manage Kafka topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Inspect and replay dead-letter topics.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Mint a bearer token for local use.
    Token(TokenArgs),
    /// Serve the MCP tools over stdio, for desktop assistants.
    Mcp(McpArgs),
    /// Exit 0 when the health endpoint at `--url` answers 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Database URL: `sqlite://FILE` (or a plain file path) for the embedded mode, `postgres://...` for PostgreSQL.
    #[arg(long, env = "TODO_DATABASE_URL", default_value = "sqlite://todo.db")]
    pub database_url: String,
    /// Maximum database connections in the pool.
    #[arg(long, env = "TODO_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

/// How to reach Kafka (or Redpanda). Without `--kafka-brokers` the in-process broker is used.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, comma separated (`host:9092,host2:9092`). Unset: the in-process broker.
    #[arg(long, env = "TODO_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Security protocol.
    #[arg(long, env = "TODO_KAFKA_SECURITY_PROTOCOL", value_enum, default_value_t = SecurityProtocol::Plaintext)]
    pub kafka_security_protocol: SecurityProtocol,
    /// SASL mechanism (with `sasl_ssl` or `sasl_plaintext`).
    #[arg(long, env = "TODO_KAFKA_SASL_MECHANISM", value_enum, default_value_t = SaslMechanism::ScramSha256)]
    pub kafka_sasl_mechanism: SaslMechanism,
    /// SASL user name.
    #[arg(long, env = "TODO_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password.
    #[arg(long, env = "TODO_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<SecretString>,
    /// Extra librdkafka settings, `key=value`, repeatable (for example `--kafka-option ssl.ca.location=/ca.pem`).
    #[arg(long = "kafka-option", env = "TODO_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub kafka_options: Vec<(String, String)>,
}

/// Kafka security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL (local brokers).
    Plaintext,
    /// TLS only.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS (Redpanda Cloud, Confluent Cloud).
    SaslSsl,
}

/// SASL mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    /// `PLAIN`
    #[value(name = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// HS256 shared secret. Unset (and no `--jwks-url`): a random secret per start, printed with a ready token
    /// (embedded mode on a loopback address only).
    #[arg(long, env = "TODO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// JWKS URL of an external identity provider (RS256/ES256 tokens), `http://` or `https://`.
    #[arg(long, env = "TODO_JWKS_URL", conflicts_with = "jwt_secret", value_parser = parse_jwks_url)]
    pub jwks_url: Option<String>,
    /// Required `iss` claim, if set.
    #[arg(long, env = "TODO_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set.
    #[arg(long, env = "TODO_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// Consumer retry policy.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Delays between handler attempts before a message goes to its dead-letter topic, in milliseconds.
    #[arg(
        long,
        env = "TODO_RETRY_DELAYS_MS",
        value_delimiter = ',',
        default_value = "1000,2000,4000"
    )]
    pub retry_delays_ms: Vec<u64>,
    /// Fault injection for drills: make the named consumer fail every message whose task title contains this
    /// text, `consumer:text` (for example `audit-consumer:poison`).
    #[arg(long, env = "TODO_FAULT_INJECT", hide = true)]
    pub fault_inject: Option<String>,
}

/// How long the outbox keeps its rows.
#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {
    /// Hours an outbox row is kept after it was published (with a broker) or read by every consumer group
    /// (embedded), for replays and a relay or consumer catching up; older rows are pruned every 10 minutes.
    #[arg(
        long,
        env = "TODO_OUTBOX_RETENTION_HOURS",
        default_value_t = crate::workers::RelayConfig::DEFAULT_RETENTION_HOURS,
        value_parser = clap::value_parser!(u64).range(1..=24 * 366)
    )]
    pub outbox_retention_hours: u64,
}

impl OutboxArgs {
    /// The retention as a duration.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.outbox_retention_hours * 3600)
    }
}

/// `todo serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTP server.
    #[arg(long, env = "TODO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Run the API only, no workers.
    #[arg(long, env = "TODO_API_ONLY")]
    pub api_only: bool,
    /// Workers to run beside the API (default: all).
    #[arg(
        long = "workers",
        env = "TODO_WORKERS",
        value_delimiter = ',',
        value_enum,
        conflicts_with = "api_only"
    )]
    pub workers: Vec<Worker>,
    /// Request body limit in bytes.
    #[arg(long, env = "TODO_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Request time limit in milliseconds.
    #[arg(long, env = "TODO_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub retry: RetryArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub outbox: OutboxArgs,
}

/// `todo worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "TODO_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Workers to run (default: all).
    #[arg(long = "only", env = "TODO_WORKERS", value_delimiter = ',', value_enum)]
    pub only: Vec<Worker>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub retry: RetryArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub outbox: OutboxArgs,
}

/// The workers a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Worker {
    /// The outbox relay (publishes committed events).
    Relay,
    /// `audit-consumer`
    Audit,
    /// `recurrence-consumer`
    Recurrence,
    /// `reminder-consumer`
    Reminders,
    /// `reminder-suppression`
    Suppression,
    /// The reminder scheduler.
    Scheduler,
}

impl Worker {
    /// Every worker.
    pub const ALL: [Worker; 6] = [
        Worker::Relay,
        Worker::Audit,
        Worker::Recurrence,
        Worker::Reminders,
        Worker::Suppression,
        Worker::Scheduler,
    ];

    /// The name used in flags and logs.
    pub fn name(self) -> &'static str {
        match self {
            Worker::Relay => "relay",
            Worker::Audit => "audit",
            Worker::Recurrence => "recurrence",
            Worker::Reminders => "reminders",
            Worker::Suppression => "suppression",
            Worker::Scheduler => "scheduler",
        }
    }
}

/// `todo topics`.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create the registry's six topics if missing and report drift of existing ones.
    Ensure {
        /// Deployment profile: replication 1 (`local`) or 3 (`cloud`).
        #[arg(long, env = "TODO_TOPICS_PROFILE", default_value = "local")]
        profile: todo_events::Profile,
        #[command(flatten)]
        #[allow(missing_docs)]
        kafka: KafkaArgs,
    },
    /// Print the topic registry.
    List,
}

/// `todo dlq`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the messages of a dead-letter topic.
    List(DlqArgs),
    /// Show one message of a dead-letter topic in full.
    Show {
        #[command(flatten)]
        #[allow(missing_docs)]
        args: DlqArgs,
        /// Offset (Kafka) or sequence (embedded) of the message.
        #[arg(long)]
        offset: i64,
    },
    /// Publish dead-lettered messages back to their original topic, keeping their event ids.
    Replay {
        #[command(flatten)]
        #[allow(missing_docs)]
        args: DlqArgs,
        /// Replay only this message.
        #[arg(long)]
        offset: Option<i64>,
    },
}

/// Common `todo dlq` arguments.
#[derive(Debug, Clone, Args)]
pub struct DlqArgs {
    /// Dead-letter topic (default: all three).
    #[arg(long)]
    pub topic: Option<String>,
    /// Maximum messages to list.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
}

/// `todo token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    pub user: Uuid,
    /// HS256 secret the server verifies with.
    #[arg(long, env = "TODO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: SecretString,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24 * 30)]
    pub ttl_hours: i64,
    /// The `iss` claim, for a server started with `--jwt-issuer`.
    #[arg(long, env = "TODO_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` claim, for a server started with `--jwt-audience`.
    #[arg(long, env = "TODO_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// `todo mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// A bearer token (its `sub` is the user), verified with `--jwt-secret`.
    #[arg(
        long,
        env = "TODO_TOKEN",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    pub token: Option<SecretString>,
    /// Act as this user against a local database (no token).
    #[arg(long, env = "TODO_USER")]
    pub user: Option<Uuid>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthArgs,
}

/// `todo healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to probe.
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
    pub url: String,
}

/// A JWKS URL: absolute, `http` or `https`, with a host.
fn parse_jwks_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let url = reqwest::Url::parse(s)
        .map_err(|e| format!("`{s}` is not a URL ({e}); expected https://HOST/PATH"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{s}` is not an http:// or https:// URL; expected https://HOST/PATH"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{s}` has no host; expected https://HOST/PATH"));
    }
    Ok(s.to_owned())
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, found `{s}`"))?;
    if k.trim().is_empty() {
        return Err(format!("empty key in `{s}`"));
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// Which database, parsed from `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file (embedded mode), or `:memory:`.
    Sqlite {
        /// File path.
        path: PathBuf,
    },
    /// PostgreSQL.
    Postgres {
        /// Connection URL.
        url: String,
        /// Pool size.
        max_connections: u32,
    },
}

impl StoreConfig {
    /// Parses `--database-url`.
    ///
    /// # Errors
    /// A message naming the flag when the scheme is neither sqlite nor postgres.
    pub fn from_args(args: &StoreArgs) -> Result<Self, String> {
        let url = args.database_url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreConfig::Postgres {
                url: url.to_owned(),
                max_connections: args.database_max_connections,
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err("--database-url: empty SQLite path".into());
        }
        if path.contains("://") {
            return Err(format!(
                "--database-url: unsupported scheme in `{url}` (expected sqlite://FILE or postgres://...)"
            ));
        }
        Ok(StoreConfig::Sqlite {
            path: PathBuf::from(path),
        })
    }

    /// A description without credentials, for start-up output.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite { path } => format!("SQLite {}", path.display()),
            StoreConfig::Postgres { url, .. } => format!("PostgreSQL {}", redact_url(url)),
        }
    }
}

/// Removes the password from a URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!(
                "{}{}@{}",
                &url[..s + 3],
                if creds.contains(':') {
                    format!("{user}:***")
                } else {
                    user.into()
                },
                &url[at + 1..]
            )
        }
        _ => url.to_owned(),
    }
}

/// Which broker, from the Kafka flags.
#[derive(Debug, Clone)]
pub enum BrokerConfig {
    /// The in-process broker (embedded mode).
    Embedded,
    /// Kafka or Redpanda.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// Raw librdkafka settings, security included.
        options: BTreeMap<String, String>,
    },
}

impl BrokerConfig {
    /// Builds the broker choice from the flags.
    ///
    /// # Errors
    /// A message naming the flag when SASL is chosen without credentials.
    pub fn from_args(args: &KafkaArgs) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        let Some(brokers) = args
            .kafka_brokers
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        else {
            return Ok(BrokerConfig::Embedded);
        };
        let mut options = BTreeMap::new();
        let protocol = match args.kafka_security_protocol {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        };
        options.insert("security.protocol".to_owned(), protocol.to_owned());
        if matches!(
            args.kafka_security_protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        ) {
            let user = args
                .kafka_sasl_username
                .clone()
                .ok_or("--kafka-sasl-username (TODO_KAFKA_SASL_USERNAME) is required with SASL")?;
            let password = args
                .kafka_sasl_password
                .as_ref()
                .ok_or("--kafka-sasl-password (TODO_KAFKA_SASL_PASSWORD) is required with SASL")?;
            let mechanism = match args.kafka_sasl_mechanism {
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            };
            options.insert("sasl.mechanism".into(), mechanism.into());
            options.insert("sasl.username".into(), user);
            options.insert("sasl.password".into(), password.expose_secret().to_owned());
        }
        for (k, v) in &args.kafka_options {
            options.insert(k.clone(), v.clone());
        }
        Ok(BrokerConfig::Kafka {
            brokers: brokers.to_owned(),
            options,
        })
    }

    /// Whether this broker can carry the events of `store` to consumers.
    ///
    /// The in-process broker reads the outbox by sequence number, each reader from where it stopped, which misses
    /// no event only where events commit in sequence order. SQLite's single writer commits them so;
    /// PostgreSQL transactions commit in any order (one holding sequence 100 can commit after another's 101 was
    /// read), so a reader could pass an event for good. With PostgreSQL, events go through Kafka (the relay
    /// publishes every unpublished row, whatever the order of commits).
    ///
    /// # Errors
    /// A message naming the flag to set.
    pub fn check_store(&self, store: &StoreConfig) -> Result<(), String> {
        match (self, store) {
            (BrokerConfig::Embedded, StoreConfig::Postgres { .. }) => Err(
                "--kafka-brokers (TODO_KAFKA_BROKERS) is required with a PostgreSQL --database-url: the \
                 in-process broker reads the outbox in sequence order, which only SQLite commits in; \
                 PostgreSQL transactions commit out of that order, and a consumer could pass an event"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// A description without credentials, for start-up output.
    pub fn describe(&self) -> String {
        match self {
            BrokerConfig::Embedded => "in-process (events are read from the outbox)".into(),
            BrokerConfig::Kafka { brokers, options } => {
                format!(
                    "Kafka {brokers} ({})",
                    options
                        .get("security.protocol")
                        .map_or("plaintext", String::as_str)
                )
            }
        }
    }
}

/// Consumer retry settings.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Delays between attempts.
    pub delays: Vec<Duration>,
}

impl From<&RetryArgs> for RetryConfig {
    fn from(args: &RetryArgs) -> Self {
        RetryConfig {
            delays: args
                .retry_delays_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("todo").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn no_arguments_is_the_embedded_default() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        let cli = parse(&["serve"]);
        let Some(Command::Serve(s)) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            StoreConfig::from_args(&s.store),
            Ok(StoreConfig::Sqlite {
                path: "todo.db".into()
            })
        );
        assert!(matches!(
            BrokerConfig::from_args(&s.kafka),
            Ok(BrokerConfig::Embedded)
        ));
    }

    #[test]
    fn the_outbox_retention_is_a_week_unless_set_in_whole_hours() {
        let Some(Command::Serve(s)) = parse(&["serve"]).command else {
            panic!("serve expected")
        };
        assert_eq!(
            s.outbox.retention(),
            std::time::Duration::from_secs(7 * 24 * 3600)
        );
        let Some(Command::Worker(w)) = parse(&["worker", "--outbox-retention-hours", "36"]).command
        else {
            panic!("worker expected")
        };
        assert_eq!(
            w.outbox.retention(),
            std::time::Duration::from_secs(36 * 3600)
        );
        for bad in ["0", "-1", "2h", "9000"] {
            let flag = format!("--outbox-retention-hours={bad}");
            let err = Cli::try_parse_from(["todo", "serve", flag.as_str()])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("--outbox-retention-hours"), "{bad}: {err}");
        }
    }

    #[test]
    fn postgres_and_kafka_flags_select_the_distributed_wiring() {
        let cli = parse(&[
            "serve",
            "--database-url",
            "postgres://u:pw@db/todo",
            "--kafka-brokers",
            "k1:9092",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "svc",
            "--kafka-sasl-password",
            "pw",
            "--kafka-option",
            "ssl.ca.location=/ca.pem",
        ]);
        let Some(Command::Serve(s)) = cli.command else {
            panic!("serve expected")
        };
        let store = StoreConfig::from_args(&s.store).expect("valid");
        assert_eq!(store.describe(), "PostgreSQL postgres://u:***@db/todo");
        let BrokerConfig::Kafka { brokers, options } =
            BrokerConfig::from_args(&s.kafka).expect("valid")
        else {
            panic!("kafka expected")
        };
        assert_eq!(brokers, "k1:9092");
        assert_eq!(options["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(options["ssl.ca.location"], "/ca.pem");
    }

    #[test]
    fn postgres_without_kafka_names_the_flag() {
        for command in ["serve", "worker"] {
            let cli = parse(&[command, "--database-url", "postgres://db/todo"]);
            let (store, kafka) = match cli.command {
                Some(Command::Serve(s)) => (s.store, s.kafka),
                Some(Command::Worker(w)) => (w.store, w.kafka),
                _ => panic!("{command} expected"),
            };
            let store = StoreConfig::from_args(&store).expect("valid");
            let broker = BrokerConfig::from_args(&kafka).expect("valid");
            let err = broker.check_store(&store).expect_err("rejected");
            assert!(err.contains("--kafka-brokers"), "{err}");
        }
        let sqlite = StoreConfig::Sqlite {
            path: "todo.db".into(),
        };
        assert_eq!(BrokerConfig::Embedded.check_store(&sqlite), Ok(()));
        let kafka = BrokerConfig::Kafka {
            brokers: "k:9092".into(),
            options: BTreeMap::new(),
        };
        let postgres = StoreConfig::Postgres {
            url: "postgres://db/todo".into(),
            max_connections: 16,
        };
        assert_eq!(kafka.check_store(&postgres), Ok(()));
        assert_eq!(kafka.check_store(&sqlite), Ok(()));
    }

    #[test]
    fn sasl_without_credentials_names_the_flag() {
        let cli = parse(&[
            "serve",
            "--kafka-brokers",
            "k:9092",
            "--kafka-security-protocol",
            "sasl_ssl",
        ]);
        let Some(Command::Serve(s)) = cli.command else {
            panic!("serve expected")
        };
        let err = BrokerConfig::from_args(&s.kafka).expect_err("missing credentials");
        assert!(err.contains("--kafka-sasl-username"), "{err}");
    }

    #[test]
    fn unknown_database_scheme_names_the_flag() {
        let args = StoreArgs {
            database_url: "mysql://x".into(),
            database_max_connections: 1,
        };
        let err = StoreConfig::from_args(&args).expect_err("unsupported");
        assert!(err.starts_with("--database-url"), "{err}");
    }

    #[test]
    fn worker_only_lists_parse() {
        let cli = parse(&["worker", "--only", "audit,recurrence,relay"]);
        let Some(Command::Worker(w)) = cli.command else {
            panic!("worker expected")
        };
        assert_eq!(
            w.only,
            vec![Worker::Audit, Worker::Recurrence, Worker::Relay]
        );
    }
}
