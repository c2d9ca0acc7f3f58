//! In-process HTTP tests of the REST API over an in-memory SQLite store and the embedded pipeline.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use todo_bin::testing::TestApp;
use tower::ServiceExt;
use uuid::Uuid;

struct Response {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn call(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = app.router().oneshot(req).await.expect("infallible");
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    Response {
        status,
        content_type,
        body,
    }
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = call(app, Method::POST, "/api/v1/tasks", Some(token), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn complete(app: &TestApp, token: &str, id: &str) -> Response {
    call(
        app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/complete"),
        Some(token),
        None,
    )
    .await
}

fn tomorrow() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string()
}

#[tokio::test]
async fn create_get_update_complete_delete_round_trip() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let task = create(
        &app,
        &token,
        json!({"title": " Buy groceries ", "description": "Milk, eggs, bread", "priority": "HIGH",
               "tags": ["Personal", "errands", "personal"], "due_date": tomorrow(), "recurrence": "daily"}),
    )
    .await;
    assert_eq!(task["title"], "Buy groceries");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["tags"], json!(["personal", "errands"]));
    assert_eq!(task["status"], "active");
    assert_eq!(task["version"], 1);
    let id = task["id"].as_str().expect("id").to_owned();

    let got = call(
        &app,
        Method::GET,
        &format!("/api/v1/tasks/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, task);

    let patched = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/tasks/{id}"),
        Some(&token),
        Some(json!({"title": "Buy groceries and supplies", "priority": "medium", "version": 1})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["version"], 2);

    let stale = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/tasks/{id}"),
        Some(&token),
        Some(json!({"title": "x", "version": 1})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.content_type, "application/problem+json");

    let done = complete(&app, &token, &id).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["completed_now"], true);
    assert_eq!(done.body["task"]["status"], "completed");
    assert!(done.body["next_due_date"].is_string(), "{}", done.body);
    let again = complete(&app, &token, &id).await;
    assert_eq!(again.body["completed_now"], false);

    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/tasks/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = call(
        &app,
        Method::GET,
        &format!("/api/v1/tasks/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_users_task_is_not_found() {
    let app = TestApp::spawn().await;
    let alice = app.token(Uuid::new_v4());
    let bob = app.token(Uuid::new_v4());
    let task = create(&app, &alice, json!({"title": "private"})).await;
    let id = task["id"].as_str().expect("id");
    for (method, uri, body) in [
        (Method::GET, format!("/api/v1/tasks/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tasks/{id}"),
            Some(json!({"title": "mine now"})),
        ),
        (Method::DELETE, format!("/api/v1/tasks/{id}"), None),
        (Method::POST, format!("/api/v1/tasks/{id}/complete"), None),
        (Method::GET, format!("/api/v1/tasks/{id}/reminders"), None),
    ] {
        let r = call(&app, method.clone(), &uri, Some(&bob), body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {uri}: {}",
            r.body
        );
    }
    let list = call(&app, Method::GET, "/api/v1/tasks", Some(&bob), None).await;
    assert_eq!(list.body["items"], json!([]));
    let still = call(
        &app,
        Method::GET,
        &format!("/api/v1/tasks/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(still.body["title"], "private");
}

#[tokio::test]
async fn auth_failures_are_401_problems() {
    let app = TestApp::spawn().await;
    let other = todo_bin::auth::Authenticator::shared_secret(
        &"not-the-secret".to_owned().into(),
        None,
        None,
    );
    let foreign = other
        .mint(
            todo_domain::UserId::from_uuid(Uuid::new_v4()),
            chrono::Duration::hours(1),
        )
        .expect("mint");
    let expired = app.token_with_ttl(Uuid::new_v4(), chrono::Duration::hours(-1));
    for token in [
        None,
        Some("garbage"),
        Some(foreign.as_str()),
        Some(expired.as_str()),
    ] {
        let r = call(&app, Method::GET, "/api/v1/tasks", token, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.content_type, "application/problem+json");
        assert!(r.body["detail"].is_string());
    }
    for open in ["/healthz", "/metrics", "/api/openapi.json"] {
        let r = call(&app, Method::GET, open, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn validation_errors_name_every_field() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let r = call(
        &app,
        Method::POST,
        "/api/v1/tasks",
        Some(&token),
        Some(json!({"title": "  ", "priority": "soon", "due_date": "2026-13-01", "recurrence": "every blue moon",
                    "time_zone": "Mars/Olympus"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in ["title", "priority", "due_date", "recurrence", "time_zone"] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
    let unknown = call(
        &app,
        Method::POST,
        "/api/v1/tasks",
        Some(&token),
        Some(json!({"title": "x", "titel": "y"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], "titel");
    let wrong_type = call(
        &app,
        Method::POST,
        "/api/v1/tasks",
        Some(&token),
        Some(json!({"title": 5})),
    )
    .await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_type.body["errors"][0]["field"], "title");
    let bad_query = call(
        &app,
        Method::GET,
        "/api/v1/tasks?limit=0&sort=color",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(bad_query.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_are_4xx() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let req = |body: Body, ct: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/tasks")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, ct)
            .body(body)
            .expect("request")
    };
    let r = app
        .router()
        .oneshot(req(Body::from("{\"title\": "), "application/json"))
        .await
        .expect("ok");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .router()
        .oneshot(req(Body::from("title=x"), "text/plain"))
        .await
        .expect("ok");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"title\": \"{}\"}}", "x".repeat(200_000));
    let r = app
        .router()
        .oneshot(req(Body::from(big), "application/json"))
        .await
        .expect("ok");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn list_filters_sorts_searches_and_pages() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    for (title, priority, tags) in [
        ("Buy milk", "low", vec!["home"]),
        ("Write report", "urgent", vec!["work"]),
        (
            "Call plumber about the sink",
            "high",
            vec!["home", "urgent-ish"],
        ),
        ("Plan the trip", "medium", vec!["travel"]),
    ] {
        create(
            &app,
            &token,
            json!({"title": title, "priority": priority, "tags": tags}),
        )
        .await;
    }
    let r = call(
        &app,
        Method::GET,
        "/api/v1/tasks?priority=high,urgent&sort=priority",
        Some(&token),
        None,
    )
    .await;
    let titles: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(titles, ["Write report", "Call plumber about the sink"]);
    let r = call(
        &app,
        Method::GET,
        "/api/v1/tasks?tags=home",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 2);
    let r = call(
        &app,
        Method::GET,
        "/api/v1/tasks?q=plumber",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.body["items"][0]["title"], "Call plumber about the sink");
    let mut seen = Vec::new();
    let mut uri = "/api/v1/tasks?sort=title&limit=3".to_owned();
    loop {
        let r = call(&app, Method::GET, &uri, Some(&token), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for t in r.body["items"].as_array().expect("items") {
            seen.push(t["title"].as_str().expect("title").to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/tasks?sort=title&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "Buy milk",
            "Call plumber about the sink",
            "Plan the trip",
            "Write report"
        ]
    );
}

#[tokio::test]
async fn reminders_are_set_listed_and_cancelled() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let task = create(
        &app,
        &token,
        json!({"title": "Dentist", "due_date": tomorrow(), "due_time": "10:00"}),
    )
    .await;
    let id = task["id"].as_str().expect("id");
    let r = call(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/reminders"),
        Some(&token),
        Some(json!({"lead_time": "30min"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "PENDING");
    assert!(
        r.body["remind_at"]
            .as_str()
            .expect("remind_at")
            .ends_with("09:30:00Z")
    );
    let reminder = r.body["id"].as_str().expect("id").to_owned();
    let past = call(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/reminders"),
        Some(&token),
        Some(json!({"remind_at": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(past.body["errors"][0]["field"], "remind_at");
    let bad = call(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/reminders"),
        Some(&token),
        Some(json!({"lead_time": "soonish"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let list = call(
        &app,
        Method::GET,
        &format!("/api/v1/tasks/{id}/reminders"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(list.body["items"].as_array().expect("items").len(), 1);
    let cancelled = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/reminders/{reminder}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["status"], "CANCELLED");
}

#[tokio::test]
async fn events_reach_the_audit_log_and_recurrence_creates_the_next_instance() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let task = create(
        &app,
        &token,
        json!({"title": "Water plants", "due_date": tomorrow(), "recurrence": "weekly"}),
    )
    .await;
    let id = task["id"].as_str().expect("id");
    complete(&app, &token, id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let audit = call(&app, Method::GET, "/api/v1/audit", Some(&token), None).await;
        let active = call(
            &app,
            Method::GET,
            "/api/v1/tasks?status=active",
            Some(&token),
            None,
        )
        .await;
        let types: Vec<&str> = audit.body["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["event_type"].as_str()).collect())
            .unwrap_or_default();
        let next = active.body["items"]
            .as_array()
            .and_then(|a| a.first())
            .cloned();
        if types.iter().filter(|t| **t == "task.created").count() == 2
            && types.contains(&"task.completed")
        {
            let next = next.expect("next instance");
            assert_eq!(next["title"], "Water plants");
            assert_eq!(next["series_index"], 1);
            assert_eq!(next["series_id"], task["series_id"]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "audit {types:?}, active {next:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/v1/events/stream` with `token` and, when given, a `Last-Event-ID` header.
async fn stream_request(
    app: &TestApp,
    token: &str,
    last_event_id: Option<&str>,
) -> axum::response::Response {
    let mut req = Request::builder()
        .uri("/api/v1/events/stream")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    app.router()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

/// One server-sent message: its fields (a field the message does not have is `None`).
#[derive(Debug, Default)]
struct Message {
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl Message {
    /// The `id`, a position in the outbox.
    fn id(&self) -> i64 {
        let id = self.id.as_deref().expect("an id");
        id.parse().unwrap_or_else(|_| panic!("id {id:?}"))
    }
}

/// An open live stream, read message by message.
struct Sse {
    body: Body,
    text: String,
}

impl Sse {
    /// Opens `/api/v1/events/stream` with `token`, resuming after `last_event_id` when given.
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Self {
        let res = stream_request(app, token, last_event_id).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).expect("type"),
            "text/event-stream"
        );
        Sse {
            body: res.into_body(),
            text: String::new(),
        }
    }

    /// The next message with a field (comments, such as keep-alives, are skipped); fails after 20 s.
    async fn next(&mut self) -> Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Messages end with a blank line; each line is `field: value`.
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut message = Message::default();
                for line in block.lines() {
                    let (field, value) = line.split_once(": ").unwrap_or((line, ""));
                    let slot = match field {
                        "event" => &mut message.event,
                        "id" => &mut message.id,
                        "data" => &mut message.data,
                        _ => continue,
                    };
                    *slot = Some(value.to_owned());
                }
                if message.event.is_some() || message.id.is_some() || message.data.is_some() {
                    return message;
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no message within 20 s; unread: {:?}", self.text))
                .expect("open stream")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                self.text
                    .push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
    }

    /// The next message, which must be an event.
    async fn next_event(&mut self) -> Received {
        let message = self.next().await;
        let kind = message
            .event
            .clone()
            .unwrap_or_else(|| panic!("an event: {message:?}"));
        let data = message.data.as_deref().expect("data");
        let event: Value = serde_json::from_str(data).expect("CloudEvents JSON");
        assert_eq!(event["type"], kind.as_str());
        Received {
            kind,
            id: message.id(),
            event,
        }
    }
}

/// An event received on a live stream.
#[derive(Debug)]
struct Received {
    /// The SSE `event` field: the event type.
    kind: String,
    /// The SSE `id`: where a stream resumes from to get what follows (the event's outbox sequence, or less).
    id: i64,
    /// The CloudEvents JSON.
    event: Value,
}

impl Received {
    /// `type title`, for comparing what a stream sent.
    fn summary(&self) -> String {
        format!(
            "{} {}",
            self.kind,
            self.event["data"]["title"].as_str().unwrap_or("?")
        )
    }
}

/// The live stream carries the user's own events as server-sent events (type, a position in the outbox as id,
/// CloudEvents JSON), in the order they were committed, and none of another user's. It begins with a message
/// holding only the id it starts at.
#[tokio::test]
async fn the_live_stream_carries_the_users_own_events() {
    let app = TestApp::spawn().await;
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (token, other_token) = (app.token(user), app.token(other));
    let mut stream = Sse::open(&app, &token, None).await;
    let start = stream.next().await;
    assert!(start.event.is_none() && start.data.is_none(), "{start:?}");
    let start = start.id();

    let foreign = create(&app, &other_token, json!({"title": "Not yours"})).await;
    let task = create(&app, &token, json!({"title": "Yours"})).await;
    let id = task["id"].as_str().expect("id");
    complete(&app, &token, id).await;

    let (created, completed) = (stream.next_event().await, stream.next_event().await);
    assert_eq!(
        [created.kind.as_str(), completed.kind.as_str()],
        ["task.created", "task.completed"]
    );
    assert!(
        start < created.id && created.id < completed.id,
        "ids in commit order"
    );
    for received in [&created, &completed] {
        assert_eq!(received.event["data"]["task_id"], id);
        assert_eq!(received.event["data"]["user_id"], user.to_string());
        assert_ne!(received.event["data"]["task_id"], foreign["id"]);
    }
}

/// A stream opened again with `Last-Event-ID` gets the user's events it missed, from the outbox and in order,
/// then the live ones, each once; another user's are not among them.
#[tokio::test]
async fn a_stream_resumed_with_last_event_id_gets_what_it_missed_and_goes_on() {
    let app = TestApp::spawn().await;
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (token, other_token) = (app.token(user), app.token(other));
    let mut first = Sse::open(&app, &token, None).await;
    first.next().await;
    let task = create(&app, &token, json!({"title": "Seen"})).await;
    let seen = first.next_event().await;
    assert_eq!(seen.summary(), "task.created Seen");
    drop(first);

    // Missed while no stream was open.
    let id = task["id"].as_str().expect("id");
    create(&app, &token, json!({"title": "Missed"})).await;
    create(&app, &other_token, json!({"title": "Not yours"})).await;
    complete(&app, &token, id).await;

    let mut resumed = Sse::open(&app, &token, Some(&seen.id.to_string())).await;
    let (a, b) = (resumed.next_event().await, resumed.next_event().await);
    assert_eq!(
        [a.summary(), b.summary()],
        ["task.created Missed", "task.completed Seen"]
    );
    assert!(seen.id <= a.id && a.id <= b.id, "ids never go back");

    create(&app, &token, json!({"title": "Live"})).await;
    let c = resumed.next_event().await;
    assert_eq!(
        c.summary(),
        "task.created Live",
        "the caught-up events are not sent again"
    );
    assert!(b.id < c.id);

    // Resuming from just before the first event sends every event since, once each.
    let mut again = Sse::open(&app, &token, Some(&(seen.id - 1).to_string())).await;
    let mut sent = Vec::new();
    for _ in 0..4 {
        sent.push(again.next_event().await.summary());
    }
    assert_eq!(
        sent,
        [
            "task.created Seen",
            "task.created Missed",
            "task.completed Seen",
            "task.created Live",
        ]
    );
}

/// A `Last-Event-ID` before what the outbox still holds (rows after it were pruned) gets a `reset` message, whose
/// id a client resumes from without being reset again, and the live events after it.
#[tokio::test]
async fn a_stream_resumed_from_before_a_pruned_row_is_reset() {
    let app = TestApp::spawn().await;
    let user = Uuid::new_v4();
    let token = app.token(user);
    for title in ["One", "Two", "Three"] {
        create(&app, &token, json!({ "title": title })).await;
    }
    let store = app.service().store();
    let reader = todo_store::OutboxReader {
        consumer: "stream-test".into(),
        topic: todo_events::Topic::TaskEvents.name().into(),
    };
    store
        .set_cursor(&reader.consumer, i64::MAX)
        .await
        .expect("cursor");
    let pruned = store
        .prune_outbox(
            chrono::Utc::now() + chrono::Duration::minutes(1),
            &[reader],
            100,
        )
        .await
        .expect("prune");
    assert_eq!(pruned, 2, "all but the newest row of the topic");
    let through = store.outbox_pruned_through().await.expect("pruned");

    let mut stream = Sse::open(&app, &token, Some(&(through - 1).to_string())).await;
    let reset = stream.next().await;
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    let from = reset.id();
    assert!(from >= through, "{from} < {through}");
    /// The next events up to "Four": the reset's id is where the feed was, which may be before "Three" (never
    /// before the pruned rows).
    async fn up_to_four(stream: &mut Sse) {
        let mut received = stream.next_event().await.summary();
        if received == "task.created Three" {
            received = stream.next_event().await.summary();
        }
        assert_eq!(received, "task.created Four");
    }
    create(&app, &token, json!({"title": "Four"})).await;
    up_to_four(&mut stream).await;

    // From the reset's id there is nothing to reset: what follows it comes.
    up_to_four(&mut Sse::open(&app, &token, Some(&from.to_string())).await).await;
}

/// A `Last-Event-ID` that is not an id of this stream is a 422 naming the header; an empty one starts a new stream.
#[tokio::test]
async fn a_malformed_last_event_id_is_a_field_error() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
        let res = stream_request(&app, &token, Some(bad)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let problem: Value = serde_json::from_slice(&bytes).expect("problem");
        assert_eq!(
            problem["errors"][0]["field"], "header.Last-Event-ID",
            "{bad}"
        );
    }
    let mut stream = Sse::open(&app, &token, Some("")).await;
    assert!(stream.next().await.event.is_none(), "an id-only start");

    // The OpenAPI document names the header.
    let doc = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    let params = &doc.body["paths"]["/api/v1/events/stream"]["get"]["parameters"];
    assert!(
        params.as_array().is_some_and(|ps| ps
            .iter()
            .any(|p| p["name"] == "Last-Event-ID" && p["in"] == "header")),
        "{params}"
    );
}
