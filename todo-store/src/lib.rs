//! Persistence of the todo pipeline.
//!
//! Store traits typed in domain terms with PostgreSQL and SQLite adapters (sqlx), the transactional outbox,
//! idempotency markers for consumer effects, the audit log and due-reminder claiming. Depends on `todo-domain` and
//! [`todo_events`]; never on a broker.
