//! Pure domain rules of the todo pipeline.
//!
//! Task values, recurrence rules and their next occurrence, reminder lead times and the reminder state machine,
//! and the decision each consumer takes. No I/O and no clock: functions take `now`. Depends only on
//! [`todo_events`]; `todo-store` and `todo-bin` build on it.
