//! The MCP tools, driven by rmcp's client: over streamable HTTP against the in-process application (store, embedded
//! broker and every consumer), and over stdio against the `todo mcp` binary. Covers initialize, tools/list, every
//! tool, the error cases, and the design's chat flows 4.2 to 4.4 with the events they commit.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt as _, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use todo_bin::testing::TestApp;
use todo_domain::{TaskId, UserId};
use todo_store::Store;
use uuid::Uuid;

type Client = RunningService<RoleClient, ()>;

const TOOLS: [&str; 9] = [
    "add_task",
    "cancel_reminder",
    "complete_task",
    "delete_task",
    "get_task",
    "list_reminders",
    "list_tasks",
    "set_reminder",
    "update_task",
];

/// The application served on a loopback port.
struct Served {
    app: TestApp,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve() -> Served {
    let app = TestApp::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served {
        app,
        url: format!("http://{addr}/mcp"),
        server,
    }
}

async fn http_client(served: &Served, user: Uuid) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(served.url.clone())
        .auth_header(served.app.token(user));
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP initialize over HTTP")
}

async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let args: JsonObject = args;
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured content of a successful call.
async fn ok(client: &Client, tool: &str, args: Value) -> Value {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(false), "{tool} failed: {}", text(&r));
    let s = r
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool}: no structured content"));
    let message = s["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool}: no message"));
    assert!(
        text(&r).starts_with(message),
        "{tool}: the first content block is the sentence"
    );
    s
}

/// The text of a failed call, which must be a tool error (not a protocol error).
async fn err(client: &Client, tool: &str, args: Value) -> String {
    let r = call(client, tool, args).await;
    assert_eq!(
        r.is_error,
        Some(true),
        "{tool} should fail, got {:?}",
        r.structured_content
    );
    text(&r)
}

fn tomorrow() -> NaiveDate {
    Utc::now()
        .date_naive()
        .checked_add_days(Days::new(1))
        .expect("date")
}

fn id_of(v: &Value) -> String {
    v["task"]["id"].as_str().expect("task id").to_owned()
}

/// The event types committed to the outbox for `task`, in commit order.
async fn outbox_events(store: &dyn Store, task: &str) -> Vec<String> {
    let task = Uuid::parse_str(task).expect("uuid");
    let mut all = Vec::new();
    for topic in ["todo.task-events", "todo.task-updates"] {
        for record in store.outbox_after(topic, 0, 10_000).await.expect("outbox") {
            let event = todo_events::binding::decode(&record.headers, &record.payload)
                .expect("decodable event");
            if event.data().task_id() == task {
                all.push((record.seq, event.event_type().as_str().to_owned()));
            }
        }
    }
    all.sort();
    all.into_iter().map(|(_, t)| t).collect()
}

/// Polls `check` until it returns `Some`, for effects of the asynchronous consumers.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn audited(store: &dyn Store, user: Uuid, task: &str, event_type: &str) -> bool {
    let page = store
        .list_audit(UserId::from_uuid(user), 200, None)
        .await
        .expect("audit");
    let task = Uuid::parse_str(task).expect("uuid");
    page.items
        .iter()
        .any(|e| e.task_id == Some(task) && e.event_type == event_type)
}

#[tokio::test]
async fn http_endpoint_requires_a_valid_bearer_token() {
    let served = serve().await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for auth in [None, Some("Bearer not-a-token".to_owned())] {
        let mut req = http
            .post(&served.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.to_string());
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let response = req.send().await.expect("response");
        assert_eq!(response.status(), 401, "auth {auth:?}");
        assert!(
            response
                .headers()
                .get("www-authenticate")
                .is_some_and(|v| v.as_bytes().starts_with(b"Bearer"))
        );
    }
    let expired = served
        .app
        .token_with_ttl(Uuid::new_v4(), chrono::Duration::hours(-2));
    let response = http
        .post(&served.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {expired}"))
        .body(init.to_string())
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn initialize_and_tools_list_describe_every_tool_with_schemas() {
    let served = serve().await;
    let client = http_client(&served, Uuid::new_v4()).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("todo")
    );
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.len() > 40,
            "{} needs a description for the model",
            tool.name
        );
        let schema = serde_json::to_value(&*tool.input_schema).expect("schema");
        assert_eq!(schema["type"], "object", "{}", tool.name);
        let properties = schema["properties"].as_object().expect("properties");
        assert!(
            !properties.keys().any(|k| k.contains("user")),
            "{}: the user comes from the token, never from an argument",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} declares its structured output",
            tool.name
        );
    }
    let add = tools
        .iter()
        .find(|t| t.name == "add_task")
        .expect("add_task");
    let schema = serde_json::to_value(&*add.input_schema).expect("schema");
    assert_eq!(schema["required"], json!(["title"]));
    assert!(
        schema["properties"]["recurrence"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("FREQ=MONTHLY"))
    );
    assert!(
        schema["properties"]["priority"]
            .to_string()
            .contains("\"urgent\""),
        "priorities are an enum: {}",
        schema["properties"]["priority"]
    );
    let list = tools
        .iter()
        .find(|t| t.name == "list_tasks")
        .expect("list_tasks");
    let schema = serde_json::to_value(&*list.input_schema).expect("schema");
    for p in [
        "status", "priority", "tags", "due_from", "due_to", "search", "sort", "limit",
    ] {
        assert!(
            schema["properties"].get(p).is_some(),
            "list_tasks takes {p}"
        );
    }
    let delete = tools
        .iter()
        .find(|t| t.name == "delete_task")
        .expect("delete_task");
    assert_eq!(
        delete.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(true)
    );
    client.cancel().await.expect("close");
}

/// Flow 4.2: "Add task: Buy groceries, due tomorrow, daily recurrence".
#[tokio::test]
async fn flow_4_2_add_task_commits_task_created_and_is_audited() {
    let served = serve().await;
    let user = Uuid::new_v4();
    let client = http_client(&served, user).await;
    let due = tomorrow();
    let created = ok(
        &client,
        "add_task",
        json!({"title": "Buy groceries", "due_date": due.to_string(), "recurrence": "daily"}),
    )
    .await;
    assert!(
        created["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Task created: Buy groceries")),
        "{created}"
    );
    assert_eq!(created["task"]["title"], "Buy groceries");
    assert_eq!(created["task"]["due_date"], due.to_string());
    assert_eq!(created["task"]["status"], "active");
    assert!(
        created["task"]["recurrence"]
            .as_str()
            .is_some_and(|r| r.contains("FREQ=DAILY"))
    );
    let id = id_of(&created);

    // Same use case as REST: the task belongs to the token's user, and task.created is in the outbox.
    let store = served.app.service().store().clone();
    let task = store
        .get_task(
            UserId::from_uuid(user),
            TaskId::from_uuid(Uuid::parse_str(&id).expect("uuid")),
        )
        .await
        .expect("stored for the token's user");
    assert_eq!(task.title.as_str(), "Buy groceries");
    assert_eq!(outbox_events(&*store, &id).await, ["task.created"]);
    // The audit consumer records it (asynchronously).
    eventually("task.created in the audit log", || {
        let store = store.clone();
        let id = id.clone();
        async move {
            audited(&*store, user, &id, "task.created")
                .await
                .then_some(())
        }
    })
    .await;
    client.cancel().await.expect("close");
}

/// Flow 4.3: "Complete task: Buy groceries" on a daily task.
#[tokio::test]
async fn flow_4_3_complete_task_schedules_the_next_instance() {
    let served = serve().await;
    let user = Uuid::new_v4();
    let client = http_client(&served, user).await;
    let due = tomorrow();
    let next = due.checked_add_days(Days::new(1)).expect("date");
    let created = ok(
        &client,
        "add_task",
        json!({"title": "Buy groceries", "due_date": due.to_string(), "recurrence": "daily"}),
    )
    .await;
    let id = id_of(&created);

    let done = ok(&client, "complete_task", json!({"task_id": id})).await;
    assert_eq!(done["completed_now"], true);
    assert_eq!(done["task"]["status"], "completed");
    assert_eq!(done["next_due_date"], next.to_string());
    let message = done["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("Next instance scheduled for {next}")),
        "{message}"
    );
    assert!(
        !message.contains("created for"),
        "the next instance is not created by this call: {message}"
    );

    let store = served.app.service().store().clone();
    assert_eq!(
        outbox_events(&*store, &id).await,
        ["task.created", "task.completed"]
    );

    // The recurrence consumer creates the next instance, which list_tasks then shows.
    let instance = eventually("the next instance", || {
        let client = &client;
        async move {
            let list = ok(
                client,
                "list_tasks",
                json!({"status": "active", "search": "groceries"}),
            )
            .await;
            list["tasks"].as_array().and_then(|tasks| {
                tasks
                    .iter()
                    .find(|t| t["due_date"] == next.to_string())
                    .cloned()
            })
        }
    })
    .await;
    assert_eq!(instance["title"], "Buy groceries");
    assert_eq!(instance["series_index"], 1);
    eventually("task.completed in the audit log", || {
        let store = store.clone();
        let id = id.clone();
        async move {
            audited(&*store, user, &id, "task.completed")
                .await
                .then_some(())
        }
    })
    .await;

    // Completing again changes nothing and says so.
    let again = ok(&client, "complete_task", json!({"task_id": id})).await;
    assert_eq!(again["completed_now"], false);
    assert!(
        again["message"]
            .as_str()
            .is_some_and(|m| m.contains("already completed"))
    );
    assert_eq!(
        outbox_events(&*store, &id).await,
        ["task.created", "task.completed"]
    );
    client.cancel().await.expect("close");
}

/// Flow 4.4: "Remind me about Buy groceries 30 minutes before".
#[tokio::test]
async fn flow_4_4_set_reminder_stores_a_pending_reminder() {
    let served = serve().await;
    let user = Uuid::new_v4();
    let client = http_client(&served, user).await;
    let due = tomorrow();
    let created = ok(
        &client,
        "add_task",
        json!({"title": "Buy groceries", "due_date": due.to_string(), "due_time": "10:00"}),
    )
    .await;
    let id = id_of(&created);

    // By title: exactly one active task has it.
    let set = ok(
        &client,
        "set_reminder",
        json!({"task_id": "buy GROCERIES", "lead_time": "30min"}),
    )
    .await;
    assert_eq!(set["reminder"]["task_id"], id);
    assert_eq!(set["reminder"]["status"], "PENDING");
    assert_eq!(set["reminder"]["lead_time"], "30min");
    assert_eq!(set["reminder"]["remind_at"], format!("{due}T09:30:00Z"));
    assert_eq!(
        set["message"],
        format!("Reminder set for {due} at 9:30 AM UTC (30min before Buy groceries is due).")
    );

    let store = served.app.service().store().clone();
    let task_id = TaskId::from_uuid(Uuid::parse_str(&id).expect("uuid"));
    let rows = store
        .list_reminders(UserId::from_uuid(user), task_id)
        .await
        .expect("reminders");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].id.to_string(),
        set["reminder"]["id"].as_str().expect("id")
    );
    assert_eq!(rows[0].status.as_str(), "PENDING");

    let listed = ok(&client, "list_reminders", json!({"task_id": id})).await;
    assert_eq!(listed["reminders"].as_array().map(Vec::len), Some(1));

    let cancelled = ok(
        &client,
        "cancel_reminder",
        json!({"reminder_id": set["reminder"]["id"]}),
    )
    .await;
    assert_eq!(cancelled["reminder"]["status"], "CANCELLED");
    let rows = store
        .list_reminders(UserId::from_uuid(user), task_id)
        .await
        .expect("reminders");
    assert_eq!(rows[0].status.as_str(), "CANCELLED");

    let absolute = format!("{due}T08:00:00Z");
    let at = ok(
        &client,
        "set_reminder",
        json!({"task_id": id, "remind_at": absolute}),
    )
    .await;
    assert_eq!(at["reminder"]["remind_at"], absolute);
    assert_eq!(at["reminder"]["lead_time"], Value::Null);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn get_update_list_and_delete_act_through_the_use_cases() {
    let served = serve().await;
    let user = Uuid::new_v4();
    let client = http_client(&served, user).await;
    let due = tomorrow();
    let a = id_of(
        &ok(&client, "add_task", json!({
            "title": "File taxes", "priority": "high", "tags": ["home", "money"], "due_date": due.to_string(),
            "description": "forms in the drawer"
        }))
        .await,
    );
    let b = id_of(
        &ok(
            &client,
            "add_task",
            json!({"title": "Call mom", "tags": ["family"]}),
        )
        .await,
    );

    let got = ok(&client, "get_task", json!({"task_id": a})).await;
    assert_eq!(got["task"]["priority"], "high");
    assert_eq!(got["task"]["tags"], json!(["home", "money"]));
    let version = got["task"]["version"].as_i64().expect("version");

    let updated = ok(&client, "update_task", json!({
        "task_id": a, "title": "File taxes 2025", "priority": "urgent", "description": "", "version": version
    }))
    .await;
    assert_eq!(updated["task"]["title"], "File taxes 2025");
    assert_eq!(updated["task"]["priority"], "urgent");
    assert_eq!(updated["task"]["description"], Value::Null);
    assert!(
        updated["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Task updated"))
    );
    let stale = err(
        &client,
        "update_task",
        json!({"task_id": a, "title": "x", "version": version}),
    )
    .await;
    assert!(stale.contains("get_task"), "{stale}");

    let by_priority = ok(&client, "list_tasks", json!({"priority": ["urgent"]})).await;
    let ids: Vec<&str> = by_priority["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, [a.as_str()]);
    let by_tag = ok(&client, "list_tasks", json!({"tags": ["family"]})).await;
    assert_eq!(by_tag["tasks"][0]["id"], b);
    assert_eq!(by_tag["tasks"].as_array().map(Vec::len), Some(1));
    let by_due = ok(
        &client,
        "list_tasks",
        json!({"due_from": due.to_string(), "due_to": due.to_string()}),
    )
    .await;
    assert_eq!(by_due["tasks"].as_array().map(Vec::len), Some(1));
    let searched = ok(&client, "list_tasks", json!({"search": "taxes"})).await;
    assert_eq!(searched["tasks"][0]["id"], a);
    let sorted = ok(
        &client,
        "list_tasks",
        json!({"sort": "title", "order": "asc", "limit": 1}),
    )
    .await;
    assert_eq!(sorted["tasks"][0]["title"], "Call mom");
    assert!(
        sorted["next_cursor"].is_string(),
        "a second page exists: {sorted}"
    );

    let deleted = ok(&client, "delete_task", json!({"task_id": b})).await;
    assert_eq!(deleted["task_id"], b);
    assert_eq!(deleted["message"], "Task deleted: Call mom.");
    let gone = err(&client, "get_task", json!({"task_id": b})).await;
    assert!(gone.contains("list_tasks"), "{gone}");

    let store = served.app.service().store().clone();
    assert_eq!(
        outbox_events(&*store, &a).await,
        ["task.created", "task.updated"]
    );
    assert_eq!(
        outbox_events(&*store, &b).await,
        ["task.created", "task.deleted"]
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn errors_are_tool_errors_that_say_how_to_fix_the_call() {
    let served = serve().await;
    let user = Uuid::new_v4();
    let client = http_client(&served, user).await;

    let rule = err(
        &client,
        "add_task",
        json!({"title": "Water plants", "recurrence": "every fortnight"}),
    )
    .await;
    assert!(rule.contains("recurrence"), "{rule}");
    for form in [
        "daily",
        "weekdays",
        "every N days|weeks|months|years",
        "every monday and thursday",
        "FREQ=MONTHLY;BYDAY=-1FR",
    ] {
        assert!(rule.contains(form), "the error lists `{form}`: {rule}");
    }
    let fields = err(
        &client,
        "add_task",
        json!({"title": " ", "due_date": "tomorrow"}),
    )
    .await;
    assert!(
        fields.contains("- title:")
            && fields.contains("- due_date:")
            && fields.contains("YYYY-MM-DD"),
        "{fields}"
    );

    let shape = err(
        &client,
        "add_task",
        json!({"title": "x", "user_id": Uuid::new_v4()}),
    )
    .await;
    assert!(shape.contains("user_id"), "{shape}");
    let priority = err(
        &client,
        "add_task",
        json!({"title": "x", "priority": "critical"}),
    )
    .await;
    assert!(priority.contains("urgent"), "{priority}");

    let unknown = err(&client, "complete_task", json!({"task_id": Uuid::new_v4()})).await;
    assert!(unknown.contains("list_tasks"), "{unknown}");
    let untitled = err(&client, "complete_task", json!({"task_id": "No such task"})).await;
    assert!(untitled.contains("list_tasks"), "{untitled}");

    let one = id_of(
        &ok(
            &client,
            "add_task",
            json!({"title": "Pay rent", "due_date": tomorrow().to_string()}),
        )
        .await,
    );
    let two = id_of(&ok(&client, "add_task", json!({"title": "pay rent"})).await);
    let ambiguous = err(&client, "complete_task", json!({"task_id": "Pay rent"})).await;
    assert!(ambiguous.contains("ambiguous"), "{ambiguous}");
    assert!(
        ambiguous.contains(&one) && ambiguous.contains(&two),
        "lists both candidates: {ambiguous}"
    );
    assert!(
        ambiguous.contains(&format!("due {}", tomorrow())) && ambiguous.contains("no due date"),
        "{ambiguous}"
    );
    // Nothing was completed.
    let store = served.app.service().store().clone();
    assert_eq!(outbox_events(&*store, &one).await, ["task.created"]);
    // Once one of them is done, the title names exactly one active task.
    ok(&client, "complete_task", json!({"task_id": one})).await;
    let by_title = ok(&client, "complete_task", json!({"task_id": "PAY RENT"})).await;
    assert_eq!(by_title["task"]["id"], two);

    let undated = id_of(&ok(&client, "add_task", json!({"title": "Someday"})).await);
    let lead = err(
        &client,
        "set_reminder",
        json!({"task_id": undated, "lead_time": "30min"}),
    )
    .await;
    assert!(lead.contains("due date"), "{lead}");
    let neither = err(&client, "set_reminder", json!({"task_id": undated})).await;
    assert!(neither.contains("lead_time"), "{neither}");
    let past = err(
        &client,
        "set_reminder",
        json!({"task_id": undated, "remind_at": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert!(past.contains("past"), "{past}");
    let bad_lead = err(
        &client,
        "set_reminder",
        json!({"task_id": one, "lead_time": "soonish"}),
    )
    .await;
    assert!(bad_lead.contains("30min"), "{bad_lead}");

    let reminder = err(
        &client,
        "cancel_reminder",
        json!({"reminder_id": Uuid::new_v4()}),
    )
    .await;
    assert!(reminder.contains("list_reminders"), "{reminder}");
    let range = err(
        &client,
        "list_tasks",
        json!({"due_from": "next week", "limit": 0}),
    )
    .await;
    assert!(
        range.contains("due_from") && range.contains("limit"),
        "{range}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn each_token_sees_only_its_users_tasks() {
    let served = serve().await;
    let alice = http_client(&served, Uuid::new_v4()).await;
    let bob = http_client(&served, Uuid::new_v4()).await;
    let id = id_of(&ok(&alice, "add_task", json!({"title": "Alice's secret"})).await);
    let denied = err(&bob, "get_task", json!({"task_id": id})).await;
    assert!(denied.contains("No task"), "{denied}");
    err(&bob, "delete_task", json!({"task_id": id})).await;
    err(&bob, "complete_task", json!({"task_id": "Alice's secret"})).await;
    let listed = ok(&bob, "list_tasks", json!({"status": "all"})).await;
    assert_eq!(listed["tasks"], json!([]));
    let still = ok(&alice, "get_task", json!({"task_id": id})).await;
    assert_eq!(still["task"]["status"], "active");
    alice.cancel().await.expect("close");
    bob.cancel().await.expect("close");
}

/// A temporary directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn stdio_serves_the_tools_for_the_user_of_the_command_line() {
    let dir = TempDir(std::env::temp_dir().join(format!("todo-mcp-{}", Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let db = dir.0.join("todo.db");
    let user = Uuid::new_v4();
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_todo")).configure(|c| {
        c.arg("mcp")
            .arg("--user")
            .arg(user.to_string())
            .arg("--database-url")
            .arg(format!("sqlite://{}", db.display()))
            .env("RUST_LOG", "warn")
            .env_remove("TODO_TOKEN")
            .env_remove("TODO_KAFKA_BROKERS");
    });
    let client =
        ().serve(TokioChildProcess::new(command).expect("spawn todo mcp"))
            .await
            .expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), TOOLS.len());

    let due = tomorrow();
    let created = ok(
        &client,
        "add_task",
        json!({"title": "Buy groceries", "due_date": due.to_string(), "recurrence": "daily"}),
    )
    .await;
    let id = id_of(&created);
    let done = ok(
        &client,
        "complete_task",
        json!({"task_id": "Buy groceries"}),
    )
    .await;
    assert_eq!(
        done["next_due_date"],
        due.checked_add_days(Days::new(1))
            .expect("date")
            .to_string()
    );
    let rule = err(
        &client,
        "update_task",
        json!({"task_id": id, "recurrence": "sometimes"}),
    )
    .await;
    assert!(rule.contains("every monday and thursday"), "{rule}");
    client.cancel().await.expect("close");

    // The same database, opened directly: the task is the user's, and its events are committed.
    let store = todo_store::SqliteStore::connect(&todo_store::SqliteConfig::file(&db))
        .await
        .expect("open database");
    store.migrate().await.expect("migrate");
    let task = store
        .get_task(
            UserId::from_uuid(user),
            TaskId::from_uuid(Uuid::parse_str(&id).expect("uuid")),
        )
        .await
        .expect("the user's task");
    assert_eq!(task.status.as_str(), "completed");
    assert_eq!(
        outbox_events(&store, &id).await,
        ["task.created", "task.completed"]
    );
}
