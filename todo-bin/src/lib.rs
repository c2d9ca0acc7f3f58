//! The todo reference server.
//!
//! Composes [`todo_events`], [`todo_domain`], [`todo_kafka`] and [`todo_store`] into the system of the design:
//!
//! - [`service`]: the use cases (create, update, complete, delete tasks; set, list, cancel reminders), shared by
//!   the REST API and the MCP tools; each commits its state change and its events in one transaction;
//! - [`http`]: the REST API (`/api/v1`), health, readiness, metrics, OpenAPI and the live event stream;
//! - [`mcp`]: the MCP tools for chat assistants (streamable HTTP at `/mcp`, stdio through `todo mcp`);
//! - [`consumers`]: the design's four consumer groups as handlers of the `todo-kafka` runtime;
//! - [`workers`]: the outbox relay and the reminder scheduler;
//! - [`embedded`]: the in-process broker over the outbox, for the single-process default;
//! - [`app`]: wiring of both deployments from typed [`config`]; [`cli`] runs the `todo` commands.
//!
//! `main` only parses the command line, sets up logging and calls [`cli::run`], so every piece here can be
//! driven from tests.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consumers;
pub mod embedded;
pub mod http;
pub mod mcp;
pub mod service;
pub mod telemetry;
pub mod testing;
pub mod trace;
pub mod workers;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
