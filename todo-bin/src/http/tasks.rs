//! `/api/v1/tasks`, `/api/v1/reminders`, `/api/v1/audit`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use todo_domain::{Priority, ReminderId, TaskId, TaskStatus};
use utoipa::ToSchema;

use super::AppState;
use super::extract::{AuthUser, Json, parse_id};
use super::problem::{ApiError, FieldError};
use crate::service::{
    AuditView, CreateTask, ListTasks, Order, Page, ReminderView, SetReminder, SortKey, TagMode,
    TaskView, UpdateTask,
};

/// The answer to a completion.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Completion {
    /// The task after completion.
    pub(crate) task: TaskView,
    /// Whether this request completed it (false: it was already completed; nothing changed, no event).
    pub(crate) completed_now: bool,
    /// For a recurring task, the due date of the next instance that the recurrence consumer creates.
    pub(crate) next_due_date: Option<NaiveDate>,
}

/// `POST /api/v1/tasks`
#[utoipa::path(post, path = "/api/v1/tasks", request_body = CreateTask, tag = "tasks",
    responses((status = 201, body = TaskView), (status = 422, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Json(input): Json<CreateTask>,
) -> Result<Response, ApiError> {
    let task = state.service.create_task(user, input).await?;
    let location = format!("/api/v1/tasks/{}", task.id.as_uuid());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(TaskView::from(&task)),
    )
        .into_response())
}

/// `GET /api/v1/tasks`
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(
        ("status" = Option<String>, Query, description = "active or completed"),
        ("priority" = Option<String>, Query, description = "comma-separated priorities"),
        ("tags" = Option<String>, Query, description = "comma-separated tags"),
        ("tags_mode" = Option<String>, Query, description = "any (default) or all"),
        ("due_from" = Option<String>, Query, description = "YYYY-MM-DD, inclusive"),
        ("due_to" = Option<String>, Query, description = "YYYY-MM-DD, inclusive"),
        ("q" = Option<String>, Query, description = "full-text search in title and description"),
        ("sort" = Option<String>, Query, description = "due, priority, created (default) or title"),
        ("order" = Option<String>, Query, description = "asc or desc"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = Page<TaskView>)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<TaskView>>, ApiError> {
    let query = parse_list(&params)?;
    let page = state.service.list_tasks(user, query).await?;
    Ok(axum::Json(Page {
        items: page.items.iter().map(TaskView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn parse_list(params: &HashMap<String, String>) -> Result<ListTasks, ApiError> {
    const KNOWN: [&str; 11] = [
        "status",
        "priority",
        "tags",
        "tags_mode",
        "due_from",
        "due_to",
        "q",
        "sort",
        "order",
        "limit",
        "cursor",
    ];
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| {
        errors.push(FieldError {
            field: format!("query.{field}"),
            message,
        })
    };
    for k in params.keys() {
        if !KNOWN.contains(&k.as_str()) {
            err(
                k,
                format!("unknown parameter; expected one of {}", KNOWN.join(", ")),
            );
        }
    }
    let mut q = ListTasks::default();
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(s) = get("status") {
        match s {
            "active" => q.status = Some(TaskStatus::Active),
            "completed" => q.status = Some(TaskStatus::Completed),
            "all" => {}
            _ => err(
                "status",
                format!("`{s}`: expected active, completed or all"),
            ),
        }
    }
    if let Some(s) = get("priority") {
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<Priority>() {
                Ok(p) => q.priorities.push(p),
                Err(_) => err(
                    "priority",
                    format!("`{p}`: expected low, medium, high or urgent"),
                ),
            }
        }
    }
    if let Some(s) = get("tags") {
        q.tags = s
            .split(',')
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
    }
    if let Some(s) = get("tags_mode") {
        match s {
            "any" => q.tag_mode = TagMode::Any,
            "all" => q.tag_mode = TagMode::All,
            _ => err("tags_mode", format!("`{s}`: expected any or all")),
        }
    }
    for (k, slot) in [("due_from", &mut q.due_from), ("due_to", &mut q.due_to)] {
        if let Some(s) = get(k) {
            match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) => *slot = Some(d),
                Err(_) => err(k, format!("`{s}`: expected YYYY-MM-DD")),
            }
        }
    }
    if let (Some(from), Some(to)) = (q.due_from, q.due_to)
        && from > to
    {
        err("due_to", "must not be before due_from".into());
    }
    if let Some(s) = get("q") {
        if s.chars().count() > 200 {
            err("q", "at most 200 characters".into());
        } else {
            q.search = Some(s.to_owned());
        }
    }
    if let Some(s) = get("sort") {
        match s {
            "due" => q.sort = SortKey::Due,
            "priority" => q.sort = SortKey::Priority,
            "created" => q.sort = SortKey::Created,
            "title" => q.sort = SortKey::Title,
            _ => err(
                "sort",
                format!("`{s}`: expected due, priority, created or title"),
            ),
        }
    }
    if let Some(s) = get("order") {
        match s {
            "asc" => q.order = Some(Order::Asc),
            "desc" => q.order = Some(Order::Desc),
            _ => err("order", format!("`{s}`: expected asc or desc")),
        }
    }
    if let Some(s) = get("limit") {
        match s.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => q.limit = n,
            _ => err("limit", format!("`{s}`: expected a number from 1 to 200")),
        }
    }
    q.cursor = get("cursor").map(str::to_owned);
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// `GET /api/v1/tasks/{id}`
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 404, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    let task = state.service.get_task(user, id).await?;
    Ok(axum::Json(TaskView::from(&task)))
}

/// `PATCH /api/v1/tasks/{id}`
///
/// Changing the due date, time or time zone of an active task moves its pending lead-time reminders with it (one
/// whose new time has passed fires at once while the task is not yet due, and is cancelled once the task is
/// overdue); removing the due date cancels them. Reminders set at an absolute time stay.
#[utoipa::path(patch, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    request_body = UpdateTask,
    responses((status = 200, body = TaskView), (status = 409, body = super::problem::Problem),
        (status = 422, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(mut input): Json<UpdateTask>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    if input.version.is_none()
        && let Some(v) = headers.get(header::IF_MATCH)
    {
        let raw = v
            .to_str()
            .unwrap_or("")
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"');
        input.version = Some(
            raw.parse()
                .map_err(|_| ApiError::field("If-Match", "expected the task's version number"))?,
        );
    }
    let task = state.service.update_task(user, id, input).await?;
    Ok(axum::Json(TaskView::from(&task)))
}

/// `DELETE /api/v1/tasks/{id}`
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    state.service.delete_task(user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/tasks/{id}/complete`
#[utoipa::path(post, path = "/api/v1/tasks/{id}/complete", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Completion), (status = 404, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn complete(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Completion>, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    let done = state.service.complete_task(user, id).await?;
    Ok(axum::Json(Completion {
        task: TaskView::from(&done.task),
        completed_now: done.completed_now,
        next_due_date: done.next_due.map(|d| d.date),
    }))
}

/// `POST /api/v1/tasks/{id}/reminders`
#[utoipa::path(post, path = "/api/v1/tasks/{id}/reminders", tag = "reminders", params(("id" = String, Path)),
    request_body = SetReminder,
    responses((status = 201, body = ReminderView), (status = 422, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn set_reminder(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    Json(input): Json<SetReminder>,
) -> Result<Response, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    let reminder = state.service.set_reminder(user, id, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ReminderView::from(&reminder)),
    )
        .into_response())
}

/// `GET /api/v1/tasks/{id}/reminders`
#[utoipa::path(get, path = "/api/v1/tasks/{id}/reminders", tag = "reminders", params(("id" = String, Path)),
    responses((status = 200, body = Page<ReminderView>)),
    security(("bearer" = [])))]
pub(crate) async fn list_reminders(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<Page<ReminderView>>, ApiError> {
    let id = TaskId::from_uuid(parse_id(&id, "task")?);
    let reminders = state.service.list_reminders(user, id).await?;
    Ok(axum::Json(Page {
        items: reminders.iter().map(ReminderView::from).collect(),
        next_cursor: None,
    }))
}

/// `DELETE /api/v1/reminders/{id}`
#[utoipa::path(delete, path = "/api/v1/reminders/{id}", tag = "reminders", params(("id" = String, Path)),
    responses((status = 200, body = ReminderView), (status = 404, body = super::problem::Problem)),
    security(("bearer" = [])))]
pub(crate) async fn cancel_reminder(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<ReminderView>, ApiError> {
    let id = ReminderId::from_uuid(parse_id(&id, "reminder")?);
    let reminder = state.service.cancel_reminder(user, id).await?;
    Ok(axum::Json(ReminderView::from(&reminder)))
}

/// `GET /api/v1/audit`
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<AuditView>)),
    security(("bearer" = [])))]
pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Query(params): Query<HashMap<String, String>>,
) -> Result<axum::Json<Page<AuditView>>, ApiError> {
    let limit = match params.get("limit").map(|s| s.trim()) {
        None | Some("") => 50,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "query.limit",
                    format!("`{s}`: expected a number from 1 to 500"),
                ));
            }
        },
    };
    let page = state
        .service
        .audit(user, limit, params.get("cursor").map(String::as_str))
        .await?;
    Ok(axum::Json(page))
}
