//! The todo reference server.
//!
//! Composes `todo-events`, `todo-domain`, `todo-kafka` and `todo-store` into use cases, the REST API, MCP tools,
//! the outbox relay, the four consumers and the reminder scheduler, and the `todo` command line.
