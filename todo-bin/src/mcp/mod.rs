//! MCP tools for chat assistants: the design's `add_task`, `complete_task` and `set_reminder` (flows 4.2 to 4.4)
//! and the rest of the task use cases, over the Model Context Protocol.
//!
//! - [`router`] serves streamable HTTP at `/mcp`, stateless (every POST stands alone, so any replica can answer
//!   it). Each request needs `Authorization: Bearer <token>`; the user is the token's subject, read from the HTTP
//!   request that carries the tool call (rmcp hands the request's `http::request::Parts` to the tool through the
//!   request context). No tool takes a user argument.
//! - [`serve_stdio`] serves one user over stdin/stdout, for desktop assistants that spawn `todo mcp`.
//!
//! Every tool calls the same [`TaskService`] use case as the REST API, so a chat action commits the same state
//! change and the same events (`task.created`, `task.completed`, ...) to the outbox. Tools answer with structured
//! content (tasks and reminders in the REST shape) plus a short sentence; failures are tool errors
//! (`isError: true`) whose text says how to fix the call. Tasks are addressed by id; a tool also accepts the exact
//! title of one of the user's active tasks, and lists the candidates when the title is ambiguous.

use std::sync::{Arc, LazyLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServiceExt as _, tool, tool_handler, tool_router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use todo_domain::{ReminderId, Task, TaskId, TaskStatus, UserId};

use crate::auth::Authenticator;
use crate::http::problem::ApiError;
use crate::service::{
    CreateTask, ListTasks, Order, SetReminder, SortKey, TagMode, TaskService, UpdateTask,
};

mod args;
mod error;
mod out;

use self::args::{
    AddTask, ListTasksArgs, OrderArg, ReminderRef, SetReminderArgs, SortArg, StatusArg,
    TagsModeArg, TaskRef, UpdateTaskArgs,
};
use self::error::ToolError;
use self::out::{
    CompleteResult, DeleteResult, ReminderListResult, ReminderOut, ReminderResult, TaskListResult,
    TaskOut, TaskResult,
};

/// The MCP endpoint: streamable HTTP at `/mcp`, each request authenticated by its bearer token.
///
/// Requests without a valid token get `401` with `WWW-Authenticate: Bearer` before reaching the MCP layer. The
/// endpoint is stateless (no `Mcp-Session-Id`), answers with JSON, and does not check the `Host` header: the
/// bearer token, which a DNS-rebinding page cannot attach, already protects it.
pub fn router(service: TaskService, auth: Authenticator) -> axum::Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    let mcp = StreamableHttpService::new(
        move || Ok(TodoMcp::new(service.clone(), Identity::Http)),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    axum::Router::new()
        .route_service("/mcp", mcp)
        .route_layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// Serves the tools over stdin/stdout for `user` until the client closes the connection.
///
/// Logs must go to stderr: stdout carries the protocol.
///
/// # Errors
/// When the MCP handshake or the transport fails.
pub async fn serve_stdio(service: TaskService, user: UserId) -> anyhow::Result<()> {
    let running = TodoMcp::new(service, Identity::Fixed(user))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake over stdio failed: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("MCP stdio server stopped: {e}"))?;
    Ok(())
}

/// The verified user of an HTTP request, put in its extensions by [`authenticate`].
#[derive(Debug, Clone, Copy)]
struct Caller(UserId);

async fn authenticate(State(auth): State<Authenticator>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    match auth.authenticate_header(header.as_deref()).await {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
            next.run(req).await
        }
        Err(crate::auth::AuthError::KeysUnavailable(m)) => ApiError::unavailable(m).into_response(),
        Err(e) => {
            let mut response = ApiError::unauthorized(e.to_string()).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"todo\""),
            );
            response
        }
    }
}

/// Whose tasks the tools act on.
#[derive(Debug, Clone, Copy)]
enum Identity {
    /// One user for the whole connection (stdio).
    Fixed(UserId),
    /// The bearer token's user of each HTTP request.
    Http,
}

/// The MCP server: the tools over the use cases.
#[derive(Debug, Clone)]
struct TodoMcp {
    service: TaskService,
    identity: Identity,
}

static TOOLS: LazyLock<ToolRouter<TodoMcp>> = LazyLock::new(TodoMcp::tool_router);

/// The input schema of a tool taking `T`.
fn input<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::tool::schema_for_input::<T>()
        .unwrap_or_else(|_| rmcp::handler::server::tool::schema_for_type::<T>())
}

/// Parses tool arguments, turning a wrong shape into a tool error that names the problem.
fn parse<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(serde_json::Value::Object(args)).map_err(|e| {
        ToolError(format!(
            "Invalid arguments for {tool}: {e}. Check the tool's input schema and call it again."
        ))
    })
}

/// A successful result: the sentence, then the structured content as JSON text (for clients that ignore
/// `structuredContent`).
fn success<T: Serialize>(message: &str, value: &T) -> Result<CallToolResult, ToolError> {
    let json = serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise a tool result");
        ToolError::new("The server failed to encode the result.")
    })?;
    let mut result = CallToolResult::success(vec![
        ContentBlock::text(message.to_owned()),
        ContentBlock::text(json.to_string()),
    ]);
    result.structured_content = Some(json);
    Ok(result)
}

fn finish(r: Result<CallToolResult, ToolError>) -> CallToolResult {
    r.unwrap_or_else(ToolError::into_result)
}

fn task_not_found(reference: &str) -> String {
    format!(
        "No task `{reference}` was found among your tasks. Call list_tasks to see your tasks and their ids."
    )
}

/// `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM` with the zone when not UTC.
fn due_text(t: &TaskOut) -> Option<String> {
    let date = t.due_date?;
    let mut s = date.to_string();
    if let Some(time) = t.due_time {
        s.push_str(&format!(" {}", time.format("%H:%M")));
    }
    if t.time_zone != "UTC" {
        s.push_str(&format!(" {}", t.time_zone));
    }
    Some(s)
}

fn describe(t: &TaskOut) -> String {
    let mut parts = Vec::new();
    if let Some(due) = due_text(t) {
        parts.push(format!("due {due}"));
    }
    if t.priority != "medium" {
        parts.push(format!("{} priority", t.priority));
    }
    if let Some(rule) = &t.recurrence {
        parts.push(format!("repeats {rule}"));
    }
    if parts.is_empty() {
        t.title.clone()
    } else {
        format!("{} ({})", t.title, parts.join(", "))
    }
}

fn parse_date(field: &str, s: &str, errors: &mut Vec<String>) -> Option<chrono::NaiveDate> {
    match chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(format!(
                "- {field}: `{s}` is not a date; expected YYYY-MM-DD such as 2026-02-10"
            ));
            None
        }
    }
}

/// An empty string means "clear" for the clearable fields of `update_task`.
fn clearable(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| if s.trim().is_empty() { None } else { Some(s) })
}

impl TodoMcp {
    fn new(service: TaskService, identity: Identity) -> Self {
        TodoMcp { service, identity }
    }

    /// The user of this call: fixed for stdio, the bearer token's subject for HTTP.
    fn user(&self, ctx: &RequestContext<RoleServer>) -> Result<UserId, ToolError> {
        match self.identity {
            Identity::Fixed(user) => Ok(user),
            Identity::Http => ctx
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Caller>())
                .map(|caller| caller.0)
                .ok_or_else(|| {
                    ToolError::new("Not authenticated: send `Authorization: Bearer <token>`.")
                }),
        }
    }

    /// The task a `task_id` argument names: by id, or by the exact title of one active task.
    async fn resolve(&self, user: UserId, reference: &str) -> Result<Task, ToolError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ToolError::new(
                "task_id is empty: pass the task's id (from add_task or list_tasks) or its exact title.",
            ));
        }
        if let Ok(id) = reference.parse::<TaskId>() {
            return self
                .service
                .get_task(user, id)
                .await
                .map_err(|e| ToolError::service(e, || task_not_found(reference)));
        }
        let mut matches = self.active_titled(user, reference).await?;
        match matches.len() {
            0 => Err(ToolError(format!(
                "`{reference}` is neither a task id nor the exact title of one of your active tasks. Call \
                 list_tasks with `search` to find the task, then pass its id as task_id."
            ))),
            1 => Ok(matches.remove(0)),
            n => {
                let mut text = format!(
                    "`{reference}` is ambiguous: {n} of your active tasks have this title. Ask the user which one \
                     they mean, then pass its id as task_id:"
                );
                for t in &matches {
                    let out = TaskOut::from(t);
                    let due = due_text(&out)
                        .map_or_else(|| "no due date".to_owned(), |d| format!("due {d}"));
                    text.push_str(&format!("\n- {}: {} ({due})", out.id, out.title));
                }
                Err(ToolError(text))
            }
        }
    }

    /// The user's active tasks titled `title` (case-insensitively): a search first, then a bounded scan of the
    /// active tasks when the search finds none (search tokenises; the title match must be exact).
    async fn active_titled(&self, user: UserId, title: &str) -> Result<Vec<Task>, ToolError> {
        let wanted = title.to_lowercase();
        let is_match = |t: &Task| {
            t.status == TaskStatus::Active && t.title.as_str().trim().to_lowercase() == wanted
        };
        let not_found = || task_not_found(title);
        let query = ListTasks {
            status: Some(TaskStatus::Active),
            search: Some(title.to_owned()),
            limit: 100,
            ..ListTasks::default()
        };
        // A search the store cannot run (punctuation in a title), or one with more than a page of hits (which
        // could hide a second exact match), falls back to the scan below.
        if let Ok(page) = self.service.list_tasks(user, query).await {
            let complete = page.next_cursor.is_none();
            let found: Vec<Task> = page.items.into_iter().filter(|t| is_match(t)).collect();
            if complete && !found.is_empty() {
                return Ok(found);
            }
        }
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let query = ListTasks {
                status: Some(TaskStatus::Active),
                limit: 200,
                cursor: cursor.clone(),
                ..ListTasks::default()
            };
            let page = self
                .service
                .list_tasks(user, query)
                .await
                .map_err(|e| ToolError::service(e, not_found))?;
            found.extend(page.items.into_iter().filter(|t| is_match(t)));
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => break,
            }
        }
        found.dedup_by_key(|t| t.id);
        Ok(found)
    }
}

#[tool_router]
impl TodoMcp {
    /// add_task
    #[tool(
        description = "Create a task for the user. Use when the user asks to add, create or remember to do \
                       something. Resolve relative dates (\"tomorrow\") to YYYY-MM-DD before calling. Set \
                       `recurrence` for repeating tasks (\"daily\", \"every monday and thursday\", an RRULE). \
                       Returns the task with its id, which the other tools take as task_id.",
        input_schema = input::<AddTask>(),
        output_schema = schema_for_output::<TaskResult>(),
        annotations(title = "Add task", read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    async fn add_task(&self, ctx: RequestContext<RoleServer>, args: JsonObject) -> CallToolResult {
        finish(self.add_task_impl(&ctx, args).await)
    }

    /// list_tasks
    #[tool(
        description = "List the user's tasks, newest first by default. Filters: status (active by default, \
                       completed, all), priority, tags, a due date range, and search words in title or \
                       description. Use it to find a task's id, or to answer \"what do I have to do this week?\".",
        input_schema = input::<ListTasksArgs>(),
        output_schema = schema_for_output::<TaskListResult>(),
        annotations(title = "List tasks", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_tasks(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.list_tasks_impl(&ctx, args).await)
    }

    /// get_task
    #[tool(
        description = "Get one task with all its fields (due date, recurrence, status, version).",
        input_schema = input::<TaskRef>(),
        output_schema = schema_for_output::<TaskResult>(),
        annotations(title = "Get task", read_only_hint = true, open_world_hint = false)
    )]
    async fn get_task(&self, ctx: RequestContext<RoleServer>, args: JsonObject) -> CallToolResult {
        finish(self.get_task_impl(&ctx, args).await)
    }

    /// update_task
    #[tool(
        description = "Change fields of a task: title, description, priority, tags, due date/time/zone, \
                       recurrence. Only the given fields change; an empty string clears description, due_date, \
                       due_time, time_zone or recurrence. To mark a task done use complete_task instead.",
        input_schema = input::<UpdateTaskArgs>(),
        output_schema = schema_for_output::<TaskResult>(),
        annotations(title = "Update task", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn update_task(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.update_task_impl(&ctx, args).await)
    }

    /// complete_task
    #[tool(
        description = "Mark a task as done. For a recurring task, the next instance is created automatically in \
                       the background; the result gives its due date (next_due_date). Pending reminders of the \
                       completed task are cancelled. Completing a completed task changes nothing.",
        input_schema = input::<TaskRef>(),
        output_schema = schema_for_output::<CompleteResult>(),
        annotations(title = "Complete task", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn complete_task(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.complete_task_impl(&ctx, args).await)
    }

    /// delete_task
    #[tool(
        description = "Delete a task permanently, with its reminders. Only when the user asks to delete or \
                       remove it; to mark it done use complete_task.",
        input_schema = input::<TaskRef>(),
        output_schema = schema_for_output::<DeleteResult>(),
        annotations(title = "Delete task", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn delete_task(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.delete_task_impl(&ctx, args).await)
    }

    /// set_reminder
    #[tool(
        description = "Remind the user about a task: either lead_time before the task is due (\"30min\", \"1h\", \
                       \"1d\"; the task needs a due date) or at an absolute time remind_at (RFC 3339). The \
                       reminder fires once.",
        input_schema = input::<SetReminderArgs>(),
        output_schema = schema_for_output::<ReminderResult>(),
        annotations(title = "Set reminder", read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    async fn set_reminder(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.set_reminder_impl(&ctx, args).await)
    }

    /// list_reminders
    #[tool(
        description = "List the reminders of a task, with their status (PENDING, TRIGGERED or CANCELLED) and ids.",
        input_schema = input::<TaskRef>(),
        output_schema = schema_for_output::<ReminderListResult>(),
        annotations(title = "List reminders", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_reminders(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.list_reminders_impl(&ctx, args).await)
    }

    /// cancel_reminder
    #[tool(
        description = "Cancel a pending reminder by its id (from set_reminder or list_reminders). A reminder that \
                       already fired stays as it is.",
        input_schema = input::<ReminderRef>(),
        output_schema = schema_for_output::<ReminderResult>(),
        annotations(title = "Cancel reminder", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn cancel_reminder(
        &self,
        ctx: RequestContext<RoleServer>,
        args: JsonObject,
    ) -> CallToolResult {
        finish(self.cancel_reminder_impl(&ctx, args).await)
    }
}

#[tool_handler(
    router = TOOLS,
    name = "todo",
    instructions = "Task tools for the user's todo list. Tasks are identified by id: get ids from add_task or \
                    list_tasks. Dates are YYYY-MM-DD; resolve relative dates before calling. Recurring tasks \
                    create their next instance in the background when completed."
)]
impl rmcp::ServerHandler for TodoMcp {}

impl TodoMcp {
    async fn add_task_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: AddTask = parse("add_task", args)?;
        let input = CreateTask {
            title: a.title,
            description: a.description,
            priority: a.priority.map(|p| p.as_str().to_owned()),
            tags: a.tags,
            due_date: a.due_date,
            due_time: a.due_time,
            time_zone: a.time_zone,
            recurrence: a.recurrence,
            reminders: a.reminders,
        };
        let task = self
            .service
            .create_task(user, input)
            .await
            .map_err(|e| ToolError::service(e, String::new))?;
        let task = TaskOut::from(&task);
        let message = format!("Task created: {}.", describe(&task));
        success(
            &message,
            &TaskResult {
                message: message.clone(),
                task,
            },
        )
    }

    async fn list_tasks_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: ListTasksArgs = parse("list_tasks", args)?;
        let mut errors = Vec::new();
        let due_from = a
            .due_from
            .as_deref()
            .and_then(|d| parse_date("due_from", d, &mut errors));
        let due_to = a
            .due_to
            .as_deref()
            .and_then(|d| parse_date("due_to", d, &mut errors));
        let limit = a.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            errors.push(format!("- limit: {limit} is out of range; use 1 to 100"));
        }
        if !errors.is_empty() {
            return Err(ToolError(format!(
                "Invalid input:\n{}\nFix these arguments and call the tool again.",
                errors.join("\n")
            )));
        }
        let status = a.status.unwrap_or_default();
        let query = ListTasks {
            status: match status {
                StatusArg::Active => Some(TaskStatus::Active),
                StatusArg::Completed => Some(TaskStatus::Completed),
                StatusArg::All => None,
            },
            priorities: a
                .priority
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.as_str().parse().ok())
                .collect(),
            tags: a.tags.unwrap_or_default(),
            tag_mode: match a.tags_mode.unwrap_or_default() {
                TagsModeArg::Any => TagMode::Any,
                TagsModeArg::All => TagMode::All,
            },
            due_from,
            due_to,
            search: a.search.filter(|s| !s.trim().is_empty()),
            sort: match a.sort.unwrap_or_default() {
                SortArg::Due => SortKey::Due,
                SortArg::Priority => SortKey::Priority,
                SortArg::Created => SortKey::Created,
                SortArg::Title => SortKey::Title,
            },
            order: a.order.map(|o| match o {
                OrderArg::Asc => Order::Asc,
                OrderArg::Desc => Order::Desc,
            }),
            limit,
            cursor: a.cursor.filter(|c| !c.trim().is_empty()),
        };
        let page = self
            .service
            .list_tasks(user, query)
            .await
            .map_err(|e| ToolError::service(e, || "Nothing found.".to_owned()))?;
        let tasks: Vec<TaskOut> = page.items.iter().map(TaskOut::from).collect();
        let which = match status {
            StatusArg::Active => "active ",
            StatusArg::Completed => "completed ",
            StatusArg::All => "",
        };
        let mut message = match tasks.len() {
            0 => format!("No {which}tasks match."),
            1 => format!("1 {which}task: {}.", describe(&tasks[0])),
            n => format!("{n} {which}tasks."),
        };
        if page.next_cursor.is_some() {
            message
                .push_str(" More are available: call list_tasks again with cursor = next_cursor.");
        }
        success(
            &message,
            &TaskListResult {
                message: message.clone(),
                tasks,
                next_cursor: page.next_cursor,
            },
        )
    }

    async fn get_task_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: TaskRef = parse("get_task", args)?;
        let task = TaskOut::from(&self.resolve(user, &a.task_id).await?);
        let message = format!("{}: {}.", describe(&task), task.status);
        success(
            &message,
            &TaskResult {
                message: message.clone(),
                task,
            },
        )
    }

    async fn update_task_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: UpdateTaskArgs = parse("update_task", args)?;
        let current = self.resolve(user, &a.task_id).await?;
        let input = UpdateTask {
            title: a.title,
            description: clearable(a.description),
            priority: a.priority.map(|p| p.as_str().to_owned()),
            tags: a.tags,
            due_date: clearable(a.due_date),
            due_time: clearable(a.due_time),
            time_zone: clearable(a.time_zone),
            recurrence: clearable(a.recurrence),
            version: a.version,
        };
        let reference = a.task_id;
        let task = self
            .service
            .update_task(user, current.id, input)
            .await
            .map_err(|e| ToolError::service(e, || task_not_found(&reference)))?;
        let changed = task.version != current.version;
        let task = TaskOut::from(&task);
        let message = if changed {
            format!("Task updated: {}.", describe(&task))
        } else {
            format!("Nothing changed: {} already has these values.", task.title)
        };
        success(
            &message,
            &TaskResult {
                message: message.clone(),
                task,
            },
        )
    }

    async fn complete_task_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: TaskRef = parse("complete_task", args)?;
        let task = self.resolve(user, &a.task_id).await?;
        let done = self
            .service
            .complete_task(user, task.id)
            .await
            .map_err(|e| ToolError::service(e, || task_not_found(&a.task_id)))?;
        let next_due_date = done.next_due.as_ref().map(|d| d.date);
        let out = TaskOut::from(&done.task);
        let message = match (done.completed_now, next_due_date) {
            (false, _) => format!("{} was already completed; nothing changed.", out.title),
            (true, Some(next)) => format!(
                "Task completed: {}. Next instance scheduled for {next}; it is created in the background and \
                 appears in list_tasks shortly.",
                out.title
            ),
            (true, None) if out.recurrence.is_some() => {
                format!(
                    "Task completed: {}. Its recurrence has ended: no further instance.",
                    out.title
                )
            }
            (true, None) => format!("Task completed: {}.", out.title),
        };
        success(
            &message,
            &CompleteResult {
                message: message.clone(),
                task: out,
                completed_now: done.completed_now,
                next_due_date,
            },
        )
    }

    async fn delete_task_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: TaskRef = parse("delete_task", args)?;
        let task = self.resolve(user, &a.task_id).await?;
        self.service
            .delete_task(user, task.id)
            .await
            .map_err(|e| ToolError::service(e, || task_not_found(&a.task_id)))?;
        let message = format!("Task deleted: {}.", task.title.as_str());
        success(
            &message,
            &DeleteResult {
                message: message.clone(),
                task_id: task.id.as_uuid(),
                title: task.title.as_str().to_owned(),
            },
        )
    }

    async fn set_reminder_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: SetReminderArgs = parse("set_reminder", args)?;
        let task = self.resolve(user, &a.task_id).await?;
        let input = SetReminder {
            lead_time: a.lead_time,
            remind_at: a.remind_at,
        };
        let reminder = self
            .service
            .set_reminder(user, task.id, input)
            .await
            .map_err(|e| ToolError::service(e, || task_not_found(&a.task_id)))?;
        let when = match task.due.as_ref() {
            Some(due) => {
                let local = reminder.remind_at.with_timezone(&due.zone.tz());
                format!(
                    "{} at {} {}",
                    local.format("%Y-%m-%d"),
                    local.format("%-I:%M %p"),
                    due.zone.name()
                )
            }
            None => format!(
                "{} at {} UTC",
                reminder.remind_at.format("%Y-%m-%d"),
                reminder.remind_at.format("%-I:%M %p")
            ),
        };
        let out = ReminderOut::from(&reminder);
        let message = match &out.lead_time {
            Some(lead) => format!(
                "Reminder set for {when} ({lead} before {} is due).",
                task.title.as_str()
            ),
            None => format!("Reminder set for {when} for {}.", task.title.as_str()),
        };
        success(
            &message,
            &ReminderResult {
                message: message.clone(),
                reminder: out,
            },
        )
    }

    async fn list_reminders_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: TaskRef = parse("list_reminders", args)?;
        let task = self.resolve(user, &a.task_id).await?;
        let reminders = self
            .service
            .list_reminders(user, task.id)
            .await
            .map_err(|e| ToolError::service(e, || task_not_found(&a.task_id)))?;
        let reminders: Vec<ReminderOut> = reminders.iter().map(ReminderOut::from).collect();
        let pending = reminders.iter().filter(|r| r.status == "PENDING").count();
        let message = match reminders.len() {
            0 => format!("{} has no reminders.", task.title.as_str()),
            n => format!(
                "{} has {n} reminder(s), {pending} pending.",
                task.title.as_str()
            ),
        };
        success(
            &message,
            &ReminderListResult {
                message: message.clone(),
                reminders,
            },
        )
    }

    async fn cancel_reminder_impl(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: JsonObject,
    ) -> Result<CallToolResult, ToolError> {
        let user = self.user(ctx)?;
        let a: ReminderRef = parse("cancel_reminder", args)?;
        let not_found = || {
            format!(
                "No reminder `{}` was found among your reminders. Call list_reminders for the task to see its \
                 reminders and their ids.",
                a.reminder_id
            )
        };
        let id: ReminderId = a.reminder_id.parse().map_err(|_| ToolError(not_found()))?;
        let reminder = self
            .service
            .cancel_reminder(user, id)
            .await
            .map_err(|e| ToolError::service(e, not_found))?;
        let out = ReminderOut::from(&reminder);
        let at = out.remind_at.format("%Y-%m-%d %H:%M UTC");
        let message = match out.status.as_str() {
            "CANCELLED" => format!("Reminder for {at} cancelled."),
            "TRIGGERED" => {
                format!("That reminder already fired (it was due {at}); nothing to cancel.")
            }
            other => format!("The reminder for {at} is {other}."),
        };
        success(
            &message,
            &ReminderResult {
                message: message.clone(),
                reminder: out,
            },
        )
    }
}
