//! The REST API: router, state, middleware, health, metrics, OpenAPI and the live event stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;

use crate::auth::Authenticator;
use crate::service::TaskService;

mod extract;
mod openapi;
pub mod problem;
mod stream;
mod tasks;

#[cfg(test)]
pub(crate) use self::stream::Published;
pub use self::stream::StreamHub;

/// Answers whether the process's dependencies are reachable (for `/readyz`).
#[async_trait::async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready; otherwise what is not.
    async fn check(&self) -> Result<(), String>;
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: TaskService,
    /// Bearer-token verification.
    pub auth: Authenticator,
    /// Live events for `/api/v1/events/stream`.
    pub hub: StreamHub,
    /// Dependency checks for `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// The Prometheus recorder.
    pub metrics: PrometheusHandle,
}

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request may take (not applied to the event stream).
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The whole HTTP application (API, MCP endpoint excluded).
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let api = Router::new()
        .route("/api/v1/tasks", post(tasks::create).get(tasks::list))
        .route(
            "/api/v1/tasks/{id}",
            get(tasks::get).patch(tasks::update).delete(tasks::delete),
        )
        .route("/api/v1/tasks/{id}/complete", post(tasks::complete))
        .route(
            "/api/v1/tasks/{id}/reminders",
            post(tasks::set_reminder).get(tasks::list_reminders),
        )
        .route("/api/v1/reminders/{id}", delete(tasks::cancel_reminder))
        .route("/api/v1/audit", get(tasks::audit))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            timeout,
        ))
        .route("/api/v1/events/stream", get(stream::stream))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(openapi::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::trace::middleware))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
            },
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            problem::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed to process the request")
                .into_response()
        }))
        // One shared copy: the router clones its state for every request, and a clone of the `Arc` is one count
        // where a clone of the state is one per service it holds.
        .with_state(Arc::new(state))
}

/// The operations endpoints of a worker process: `/healthz`, `/readyz`, `/metrics`.
pub fn operations_router(readiness: Arc<dyn Readiness>, metrics: PrometheusHandle) -> Router {
    #[derive(Clone)]
    struct Ops {
        readiness: Arc<dyn Readiness>,
        metrics: PrometheusHandle,
    }
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(|State(ops): State<Ops>| async move {
                ops.readiness
                    .check()
                    .await
                    .map(|()| "ready")
                    .map_err(problem::ApiError::unavailable)
            }),
        )
        .route(
            "/metrics",
            get(|State(ops): State<Ops>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    ops.metrics.render(),
                )
            }),
        )
        .fallback(not_found)
        .with_state(Ops { readiness, metrics })
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => problem::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    metrics::histogram!(
        "todo_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}

async fn not_found() -> problem::ApiError {
    problem::ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database and the broker are reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, body = problem::Problem)))]
pub(crate) async fn readyz(
    State(state): State<Arc<AppState>>,
) -> Result<&'static str, problem::ApiError> {
    state
        .readiness
        .check()
        .await
        .map(|()| "ready")
        .map_err(problem::ApiError::unavailable)
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics")))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}
