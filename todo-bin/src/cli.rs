//! The `todo` commands.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::SecretString;
use todo_domain::UserId;
use todo_kafka::TopicAdmin;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Broker, WorkerSettings};
use crate::auth::Authenticator;
use crate::config::{
    AuthArgs, BrokerConfig, Cli, Command, DlqArgs, DlqCommand, KafkaArgs, RetryConfig, ServeArgs,
    StoreArgs, StoreConfig, TokenArgs, TopicsCommand, Worker, WorkerArgs,
};
use crate::consumers::FaultInjection;
use crate::http::{self, AppState, HttpLimits, StreamHub};
use crate::service::{SystemClock, TaskService};

/// Runs a parsed command line until it finishes or `shutdown` resolves.
///
/// # Errors
/// Configuration errors (naming the flag), unreachable dependencies, failed commands.
pub async fn run(
    cli: Cli,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let command = match cli.command {
        Some(command) => command,
        None => {
            use clap::Parser;
            // No subcommand: `serve` with its flags read from the environment.
            Cli::try_parse_from(["todo", "serve"])?
                .command
                .context("no command")?
        }
    };
    match command {
        Command::Serve(args) => serve(args, shutdown).await,
        Command::Worker(args) => worker(args, shutdown).await,
        Command::Migrate(args) => {
            let store = app::open_store(&store_config(&args)?).await?;
            println!("migrations applied ({})", store_config(&args)?.describe());
            drop(store);
            Ok(())
        }
        Command::Topics(TopicsCommand::List) => {
            println!(
                "{:<24} {:>10} {:>10} {:>6} {:>6}  dead-letter topic",
                "topic", "partitions", "retention", "rf", "rf"
            );
            println!(
                "{:<24} {:>10} {:>10} {:>6} {:>6}",
                "", "", "", "local", "cloud"
            );
            for t in todo_events::TOPICS {
                println!(
                    "{:<24} {:>10} {:>9}d {:>6} {:>6}  {}",
                    t.name,
                    t.partitions,
                    t.retention_days,
                    t.replication(todo_events::Profile::Local),
                    t.replication(todo_events::Profile::Cloud),
                    t.dlq.unwrap_or("-")
                );
            }
            Ok(())
        }
        Command::Topics(TopicsCommand::Ensure { profile, kafka }) => {
            let BrokerConfig::Kafka { brokers, options } =
                BrokerConfig::from_args(&kafka).map_err(anyhow::Error::msg)?
            else {
                bail!(
                    "--kafka-brokers (TODO_KAFKA_BROKERS) is required: the embedded broker needs no topics"
                );
            };
            let mut cfg = todo_kafka::KafkaConfig::new(brokers);
            cfg.extra = options;
            let broker = todo_kafka::KafkaBroker::new(&cfg)
                .context("--kafka-brokers: cannot create the client")?;
            let report = broker
                .ensure_topics(profile)
                .await
                .context("ensuring topics")?;
            for t in &report.topics {
                let checked = if t.retention_checked {
                    ""
                } else {
                    " (retention not reported by the broker)"
                };
                println!("{:<24} {:?}{checked}", t.name, t.outcome);
            }
            report
                .into_result()
                .context("topics differ from the registry")?;
            Ok(())
        }
        Command::Dlq(cmd) => dlq(cmd).await,
        Command::Token(args) => {
            println!("{}", mint(&args)?);
            Ok(())
        }
        Command::Mcp(args) => {
            let store = app::open_store(&store_config(&args.store)?).await?;
            let user = match (args.user, &args.token) {
                (Some(user), _) => UserId::from_uuid(user),
                (None, Some(token)) => {
                    use secrecy::ExposeSecret;
                    let auth = authenticator(&args.auth, false)?.0;
                    auth.authenticate(token.expose_secret())
                        .await
                        .context("--token")?
                }
                (None, None) => bail!("todo mcp needs --token <jwt> or --user <uuid>"),
            };
            let service = TaskService::new(store, Arc::new(SystemClock));
            crate::mcp::serve_stdio(service, user).await
        }
        Command::Healthcheck(args) => {
            let response = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?
                .get(&args.url)
                .send()
                .await
                .with_context(|| format!("--url: {} does not answer", args.url))?;
            if response.status().is_success() {
                Ok(())
            } else {
                bail!("{} answered {}", args.url, response.status())
            }
        }
    }
}

fn store_config(args: &StoreArgs) -> anyhow::Result<StoreConfig> {
    StoreConfig::from_args(args).map_err(anyhow::Error::msg)
}

/// The database and the broker `serve` and `worker` run with, checked to go together
/// ([`BrokerConfig::check_store`]).
fn wiring(store: &StoreArgs, kafka: &KafkaArgs) -> anyhow::Result<(StoreConfig, BrokerConfig)> {
    let store = store_config(store)?;
    let broker = BrokerConfig::from_args(kafka).map_err(anyhow::Error::msg)?;
    broker.check_store(&store).map_err(anyhow::Error::msg)?;
    Ok((store, broker))
}

/// The authenticator from the flags; `Some(token)` is a ready token for a local user when the secret was
/// generated at start.
fn authenticator(
    args: &AuthArgs,
    allow_generated: bool,
) -> anyhow::Result<(Authenticator, Option<String>)> {
    let (iss, aud) = (args.jwt_issuer.as_deref(), args.jwt_audience.as_deref());
    if let Some(url) = &args.jwks_url {
        return Ok((Authenticator::jwks(url.clone(), iss, aud), None));
    }
    if let Some(secret) = &args.jwt_secret {
        return Ok((Authenticator::shared_secret(secret, iss, aud), None));
    }
    if !allow_generated {
        bail!("--jwt-secret (TODO_JWT_SECRET) or --jwks-url (TODO_JWKS_URL) is required here");
    }
    let secret: SecretString = Authenticator::random_secret();
    let auth = Authenticator::shared_secret(&secret, iss, aud);
    let token = auth.mint(
        UserId::from_uuid(uuid::Uuid::new_v4()),
        chrono::Duration::days(7),
    )?;
    Ok((auth, Some(token)))
}

/// `todo token`: an HS256 token for `--user`, with the issuer and audience a server may require.
fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    if args.ttl_hours <= 0 {
        bail!("--ttl-hours must be at least 1");
    }
    let auth = Authenticator::shared_secret(
        &args.jwt_secret,
        args.jwt_issuer.as_deref(),
        args.jwt_audience.as_deref(),
    );
    Ok(auth.mint(
        UserId::from_uuid(args.user),
        chrono::Duration::hours(args.ttl_hours),
    )?)
}

fn worker_selection(chosen: &[Worker]) -> Vec<Worker> {
    if chosen.is_empty() {
        Worker::ALL.to_vec()
    } else {
        chosen.to_vec()
    }
}

fn settings(
    retry: &crate::config::RetryArgs,
    outbox: &crate::config::OutboxArgs,
) -> anyhow::Result<WorkerSettings> {
    Ok(WorkerSettings {
        retry: RetryConfig::from(retry),
        faults: FaultInjection::parse(retry.fault_inject.as_deref()).map_err(anyhow::Error::msg)?,
        reminder_lease: Duration::from_secs(30),
        relay: crate::workers::RelayConfig {
            retention: outbox.retention(),
            ..crate::workers::RelayConfig::default()
        },
    })
}

async fn serve(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (store_cfg, broker_cfg) = wiring(&args.store, &args.kafka)?;
    let loopback = args.listen.ip().is_loopback();
    let (auth, local_token) = authenticator(&args.auth, loopback)?;
    if local_token.is_none() && args.auth.jwt_secret.is_none() && args.auth.jwks_url.is_none() {
        bail!("--jwt-secret or --jwks-url is required when --listen is not a loopback address");
    }
    let selection = if args.api_only {
        Vec::new()
    } else {
        worker_selection(&args.workers)
    };
    let settings = settings(&args.retry, &args.outbox)?;
    let store = app::open_store(&store_cfg).await?;
    let broker = Broker::new(&broker_cfg, &store)?;
    let token = CancellationToken::new();
    let workers = app::spawn_workers(&selection, &store, &broker, &settings, &token);
    let hub = StreamHub::default();
    app::spawn_stream_feed(store.clone(), hub.clone(), token.clone()).await;
    let service = TaskService::new(store.clone(), Arc::new(SystemClock));
    let state = AppState {
        service: service.clone(),
        auth: auth.clone(),
        hub,
        readiness: Arc::new(app::Ready {
            store: store.clone(),
            broker: broker.clone(),
        }),
        metrics: crate::telemetry::metrics_handle(),
    };
    let limits = HttpLimits {
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
    };
    let router = http::router(state, limits).merge(crate::mcp::router(service, auth));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen: cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    announce(
        addr,
        &store_cfg,
        &broker_cfg,
        &selection,
        true,
        local_token.as_deref(),
    );
    serve_http(listener, router, shutdown, &token).await?;
    workers.join().await;
    Ok(())
}

fn announce(
    addr: SocketAddr,
    store: &StoreConfig,
    broker: &BrokerConfig,
    workers: &[Worker],
    api: bool,
    token: Option<&str>,
) {
    let names: Vec<&str> = workers.iter().map(|w| w.name()).collect();
    eprintln!("todo {}", env!("CARGO_PKG_VERSION"));
    eprintln!("  database: {}", store.describe());
    eprintln!("  broker:   {}", broker.describe());
    eprintln!(
        "  workers:  {}",
        if names.is_empty() {
            "none (API only)".to_owned()
        } else {
            names.join(", ")
        }
    );
    if api {
        eprintln!(
            "  api:      http://{addr}/api/v1 (docs: http://{addr}/api/docs, MCP: http://{addr}/mcp)"
        );
    } else {
        eprintln!(
            "  health:   http://{addr}/healthz, http://{addr}/readyz, metrics: http://{addr}/metrics"
        );
    }
    if let Some(token) = token {
        eprintln!(
            "  no --jwt-secret given: a random secret was generated for this run; a token for a local user:"
        );
        println!("token: {token}");
    }
    tracing::info!("listening on http://{addr}");
    eprintln!("listening on http://{addr}");
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    token: &CancellationToken,
) -> anyhow::Result<()> {
    let stop = token.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: draining requests and workers");
        stop.cancel();
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(graceful)
        .await
        .context("HTTP server failed")?;
    token.cancel();
    Ok(())
}

async fn worker(
    args: WorkerArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (store_cfg, broker_cfg) = wiring(&args.store, &args.kafka)?;
    let selection = worker_selection(&args.only);
    let settings = settings(&args.retry, &args.outbox)?;
    let store = app::open_store(&store_cfg).await?;
    let broker = Broker::new(&broker_cfg, &store)?;
    let token = CancellationToken::new();
    let workers = app::spawn_workers(&selection, &store, &broker, &settings, &token);
    let ready = Arc::new(app::Ready {
        store: store.clone(),
        broker,
    });
    let router = http::operations_router(ready, crate::telemetry::metrics_handle());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen: cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    announce(addr, &store_cfg, &broker_cfg, &selection, false, None);
    serve_http(listener, router, shutdown, &token).await?;
    workers.join().await;
    Ok(())
}

async fn dlq(cmd: DlqCommand) -> anyhow::Result<()> {
    let (args, offset, replay) = match cmd {
        DlqCommand::List(args) => (args, None, false),
        DlqCommand::Show { args, offset } => (args, Some(offset), false),
        DlqCommand::Replay { args, offset } => (args, offset, true),
    };
    let DlqArgs {
        topic,
        limit,
        store,
        kafka,
    } = args;
    let store = app::open_store(&store_config(&store)?).await?;
    let broker = Broker::new(
        &BrokerConfig::from_args(&kafka).map_err(anyhow::Error::msg)?,
        &store,
    )?;
    let topics: Vec<String> = match topic {
        Some(t) => {
            if todo_events::TopicSpec::by_name(&t).is_none_or(|s| !s.is_dlq()) {
                bail!(
                    "--topic: `{t}` is not a dead-letter topic (todo.task-events.dlq, todo.task-updates.dlq, todo.reminders.dlq)"
                );
            }
            vec![t]
        }
        None => todo_events::Topic::ALL
            .iter()
            .map(|t| t.dlq_name().to_owned())
            .collect(),
    };
    let reader = broker.reader();
    for topic in &topics {
        if replay {
            let selection = match offset {
                Some(offset) => todo_kafka::dlq::ReplaySelection::One {
                    partition: 0,
                    offset,
                },
                None => todo_kafka::dlq::ReplaySelection::All,
            };
            let done = todo_kafka::dlq::replay(
                reader.as_ref(),
                broker.publisher().as_ref(),
                topic,
                selection,
            )
            .await?;
            println!("{topic}: replayed {} message(s)", done.len());
            for r in done {
                println!(
                    "  offset {} -> {} partition {} offset {}",
                    r.dlq_offset, r.topic, r.ack.partition, r.ack.offset
                );
            }
        } else if let Some(offset) = offset {
            let m = todo_kafka::dlq::inspect(reader.as_ref(), topic, 0, offset).await?;
            println!("topic:      {topic}\noffset:     {}", m.delivery.offset);
            println!("error:      {} ({})", m.info.error, m.info.error_class);
            println!(
                "attempts:   {}\ngroup:      {}",
                m.info.attempts, m.info.consumer_group
            );
            println!(
                "original:   {} partition {} offset {}",
                m.info.original_topic, m.info.original_partition, m.info.original_offset
            );
            println!(
                "payload:    {}",
                String::from_utf8_lossy(m.delivery.payload())
            );
        } else {
            let messages = todo_kafka::dlq::list(reader.as_ref(), topic)
                .await
                .unwrap_or_default();
            println!("{topic}: {} message(s)", messages.len());
            for m in messages.iter().take(limit) {
                let ty = m
                    .delivery
                    .event()
                    .map(|e| e.event_type().to_string())
                    .unwrap_or_else(|_| "undecodable".into());
                println!(
                    "  offset {:<8} {:<20} attempts {} group {:<22} error: {}",
                    m.delivery.offset, ty, m.info.attempts, m.info.consumer_group, m.info.error
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn the_outbox_retention_flag_reaches_the_relay_and_the_pruner() {
        let argv = ["todo", "worker", "--outbox-retention-hours", "36"];
        let Some(Command::Worker(args)) = Cli::try_parse_from(argv).expect("flags").command else {
            panic!("worker expected")
        };
        let settings = settings(&args.retry, &args.outbox).expect("settings");
        assert_eq!(settings.relay.retention, Duration::from_secs(36 * 3600));
        assert_eq!(
            settings.relay.prune_every,
            crate::workers::RelayConfig::default().prune_every
        );
    }

    /// `serve` and `worker` stop at start-up, naming the flag, on PostgreSQL without a Kafka broker (before they
    /// connect to anything: the database here does not exist).
    #[tokio::test]
    async fn serve_and_worker_refuse_postgres_without_kafka() {
        for command in ["serve", "worker"] {
            let argv = [
                "todo",
                command,
                "--database-url",
                "postgres://127.0.0.1:1/none",
            ];
            let cli = Cli::try_parse_from(argv).expect("flags");
            let err = run(cli, std::future::pending()).await.expect_err("refused");
            assert!(
                err.to_string().contains("--kafka-brokers"),
                "{command}: {err:#}"
            );
        }
    }

    fn token_args(flags: &[&str]) -> TokenArgs {
        let mut argv = vec!["todo", "token"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).expect("flags").command {
            Some(Command::Token(args)) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// `todo token --jwt-issuer --jwt-audience` mints what a server requiring them accepts; without them, such a
    /// server refuses the token.
    #[tokio::test]
    async fn tokens_carry_the_issuer_and_audience_asked_for() {
        let user = uuid::Uuid::new_v4();
        let id = user.to_string();
        let strict = Authenticator::shared_secret(
            &SecretString::from("s3cret"),
            Some("https://id.example"),
            Some("todo-api"),
        );
        let token = mint(&token_args(&[
            "--user",
            &id,
            "--jwt-secret",
            "s3cret",
            "--jwt-issuer",
            "https://id.example",
            "--jwt-audience",
            "todo-api",
        ]))
        .expect("mint");
        assert_eq!(
            strict.authenticate(&token).await,
            Ok(UserId::from_uuid(user))
        );
        let plain = mint(&token_args(&["--user", &id, "--jwt-secret", "s3cret"])).expect("mint");
        assert!(strict.authenticate(&plain).await.is_err());
        let zero = mint(&token_args(&[
            "--user",
            &id,
            "--jwt-secret",
            "s3cret",
            "--ttl-hours",
            "0",
        ]));
        assert!(
            zero.expect_err("refused")
                .to_string()
                .contains("--ttl-hours")
        );
    }
}
