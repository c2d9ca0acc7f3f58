//! The task list query of the use cases.

use chrono::NaiveDate;
use todo_domain::{Priority, TaskStatus};

/// How tags filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagMode {
    /// A task with any of the tags.
    #[default]
    Any,
    /// A task with all of the tags.
    All,
}

/// Sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Due instant (tasks without a due date last).
    Due,
    /// Priority.
    Priority,
    /// Creation time (the default).
    #[default]
    Created,
    /// Title, case-insensitively.
    Title,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A task list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTasks {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks with one of these priorities (empty: any).
    pub priorities: Vec<Priority>,
    /// Tag filter (empty: none).
    pub tags: Vec<String>,
    /// Whether a task needs any or all of `tags`.
    pub tag_mode: TagMode,
    /// Due on or after.
    pub due_from: Option<NaiveDate>,
    /// Due on or before.
    pub due_to: Option<NaiveDate>,
    /// Full-text search in title and description.
    pub search: Option<String>,
    /// Sort key.
    pub sort: SortKey,
    /// Direction (default: ascending for due and title, descending for priority and created).
    pub order: Option<Order>,
    /// Page size.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

impl Default for ListTasks {
    fn default() -> Self {
        ListTasks {
            status: None,
            priorities: Vec::new(),
            tags: Vec::new(),
            tag_mode: TagMode::Any,
            due_from: None,
            due_to: None,
            search: None,
            sort: SortKey::Created,
            order: None,
            limit: 50,
            cursor: None,
        }
    }
}
