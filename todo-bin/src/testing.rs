//! An in-process application for tests: an in-memory SQLite store, the embedded broker, every worker and the
//! router, with a known token secret. Used by this crate's HTTP and MCP tests and by other crates' tests.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use secrecy::SecretString;
use todo_domain::UserId;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::{self, Broker, WorkerSettings};
use crate::auth::Authenticator;
use crate::config::{BrokerConfig, RetryConfig, StoreConfig, Worker};
use crate::consumers::FaultInjection;
use crate::http::{self, AppState, HttpLimits, StreamHub};
use crate::service::{SystemClock, TaskService};

/// A running in-process application. Dropping it stops the workers.
pub struct TestApp {
    router: Router,
    auth: Authenticator,
    service: TaskService,
    shutdown: CancellationToken,
    _workers: app::Workers,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    /// Starts an application over a fresh SQLite database with all workers and short retry delays.
    ///
    /// # Panics
    /// When the database cannot be created (a test set-up failure).
    pub async fn spawn() -> Self {
        Self::spawn_with_auth(Authenticator::shared_secret(
            &SecretString::from("test-secret"),
            None,
            None,
        ))
        .await
    }

    /// [`TestApp::spawn`] verifying tokens with `auth` (for example against a JWKS). [`TestApp::token`] mints
    /// tokens only with a shared secret.
    ///
    /// # Panics
    /// When the database cannot be created (a test set-up failure).
    pub async fn spawn_with_auth(auth: Authenticator) -> Self {
        let dir = std::env::temp_dir().join(format!("todo-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = app::open_store(&StoreConfig::Sqlite {
            path: dir.join("todo.db"),
        })
        .await
        .expect("store");
        let broker = Broker::new(&BrokerConfig::Embedded, &store).expect("broker");
        let shutdown = CancellationToken::new();
        let settings = WorkerSettings {
            retry: RetryConfig {
                delays: vec![Duration::from_millis(10), Duration::from_millis(20)],
            },
            faults: FaultInjection::default(),
            reminder_lease: Duration::from_secs(30),
            relay: crate::workers::RelayConfig::default(),
        };
        let workers = app::spawn_workers(&Worker::ALL, &store, &broker, &settings, &shutdown);
        let service = TaskService::new(store.clone(), Arc::new(SystemClock));
        let hub = StreamHub::default();
        app::spawn_stream_feed(store.clone(), hub.clone(), shutdown.clone()).await;
        let state = AppState {
            service: service.clone(),
            auth: auth.clone(),
            hub,
            readiness: Arc::new(app::Ready { store, broker }),
            metrics: crate::telemetry::metrics_handle(),
        };
        let router = http::router(state, HttpLimits::default())
            .merge(crate::mcp::router(service.clone(), auth.clone()));
        TestApp {
            router,
            auth,
            service,
            shutdown,
            _workers: workers,
            _dir: TempDir(dir),
        }
    }

    /// The router (clone it per request with `oneshot`).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The use cases.
    pub fn service(&self) -> &TaskService {
        &self.service
    }

    /// A valid token for `user`.
    pub fn token(&self, user: Uuid) -> String {
        self.token_with_ttl(user, chrono::Duration::hours(1))
    }

    /// A token for `user` with a lifetime (negative: already expired).
    pub fn token_with_ttl(&self, user: Uuid, ttl: chrono::Duration) -> String {
        self.auth
            .mint(UserId::from_uuid(user), ttl)
            .unwrap_or_default()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh, migrated in-memory SQLite store.
///
/// # Panics
/// When it cannot be opened (a test set-up failure).
pub async fn memory_store() -> Arc<dyn todo_store::Store> {
    let store = todo_store::SqliteStore::connect(&todo_store::SqliteConfig::memory())
        .await
        .expect("connect");
    todo_store::Store::migrate(&store).await.expect("migrate");
    Arc::new(store)
}

/// A `task.deleted` event of `user`, for a task of its own.
pub fn task_deleted(user: Uuid) -> todo_events::Event {
    let data = todo_events::TaskDeleted {
        task_id: Uuid::new_v4(),
        user_id: user,
        title: "Gone".into(),
        deleted_at: chrono::Utc::now(),
    };
    todo_events::Event::new("todo-backend", chrono::Utc::now(), data)
}
