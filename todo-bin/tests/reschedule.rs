//! Lead-time reminders follow their task's due date: a PATCH that moves, re-zones or removes the due date moves
//! or cancels the pending reminders counted back from it, and the scheduler fires a moved one at its new time.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use chrono::{DateTime, Days, Timelike as _, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use todo_bin::testing::TestApp;
use tower::ServiceExt;
use uuid::Uuid;

async fn call(app: &TestApp, method: Method, uri: &str, token: &str, body: Option<Value>) -> Value {
    let req = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = app.router().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {uri}: {status} {body}");
    body
}

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let task = call(app, Method::POST, "/api/v1/tasks", token, Some(body)).await;
    task["id"].as_str().expect("id").to_owned()
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> Value {
    call(
        app,
        Method::PATCH,
        &format!("/api/v1/tasks/{id}"),
        token,
        Some(body),
    )
    .await
}

async fn reminders(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let page = call(
        app,
        Method::GET,
        &format!("/api/v1/tasks/{id}/reminders"),
        token,
        None,
    )
    .await;
    page["items"].as_array().expect("items").clone()
}

/// The reminder with lead time `lead` (or the absolute one, `None`).
fn by_lead<'a>(list: &'a [Value], lead: Option<&str>) -> &'a Value {
    list.iter()
        .find(|r| r["lead_time"].as_str() == lead)
        .unwrap_or_else(|| panic!("no reminder with lead {lead:?} in {list:?}"))
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

fn day(offset: i64) -> chrono::NaiveDate {
    let today = Utc::now().date_naive();
    if offset >= 0 {
        today + Days::new(offset.unsigned_abs())
    } else {
        today - Days::new(offset.unsigned_abs())
    }
}

fn utc(date: chrono::NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    date.and_hms_opt(h, m, 0).expect("time").and_utc()
}

/// Polls the task's reminders until the one with `lead` is `status`.
async fn wait_for_status(
    app: &TestApp,
    token: &str,
    id: &str,
    lead: Option<&str>,
    status: &str,
) -> Value {
    for _ in 0..300 {
        let list = reminders(app, token, id).await;
        let r = by_lead(&list, lead);
        if r["status"] == status {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reminder did not become {status}");
}

#[tokio::test]
async fn moving_the_due_date_moves_lead_time_reminders_and_leaves_absolute_ones() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    let (d, later) = (day(3), day(5));
    let id = create(
        &app,
        &token,
        json!({"title": "Dentist", "due_date": d.to_string(), "due_time": "10:00", "reminders": ["30min"]}),
    )
    .await;
    let absolute = utc(day(2), 8, 0);
    call(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/reminders"),
        &token,
        Some(json!({"remind_at": absolute.to_rfc3339()})),
    )
    .await;
    call(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/reminders"),
        &token,
        Some(json!({"lead_time": "1d"})),
    )
    .await;
    let list = reminders(&app, &token, &id).await;
    assert_eq!(
        time(&by_lead(&list, Some("30min"))["remind_at"]),
        utc(d, 9, 30)
    );
    assert_eq!(
        time(&by_lead(&list, Some("1d"))["remind_at"]),
        utc(day(2), 10, 0)
    );

    // A new date and time.
    let task = patch(
        &app,
        &token,
        &id,
        json!({"due_date": later.to_string(), "due_time": "11:15"}),
    )
    .await;
    assert_eq!(task["version"], 2);
    let list = reminders(&app, &token, &id).await;
    assert_eq!(
        time(&by_lead(&list, Some("30min"))["remind_at"]),
        utc(later, 10, 45)
    );
    assert_eq!(
        time(&by_lead(&list, Some("1d"))["remind_at"]),
        utc(day(4), 11, 15)
    );
    assert_eq!(time(&by_lead(&list, None)["remind_at"]), absolute);
    assert!(list.iter().all(|r| r["status"] == "PENDING"), "{list:?}");

    // A new zone moves the instant: 11:15 in Tokyo (UTC+9, no DST) is 02:15 UTC.
    patch(&app, &token, &id, json!({"time_zone": "Asia/Tokyo"})).await;
    let list = reminders(&app, &token, &id).await;
    assert_eq!(
        time(&by_lead(&list, Some("30min"))["remind_at"]),
        utc(later, 1, 45)
    );
    assert_eq!(time(&by_lead(&list, None)["remind_at"]), absolute);

    // Other fields leave reminders alone.
    patch(&app, &token, &id, json!({"title": "Dentist (Dr. Lee)"})).await;
    assert_eq!(reminders(&app, &token, &id).await, list);

    // No due date: nothing to count back from, so lead-time reminders are cancelled; the absolute one stays.
    let task = patch(&app, &token, &id, json!({"due_date": null})).await;
    assert_eq!(task["due_date"], Value::Null);
    let list = reminders(&app, &token, &id).await;
    assert_eq!(by_lead(&list, Some("30min"))["status"], "CANCELLED");
    assert_eq!(by_lead(&list, Some("1d"))["status"], "CANCELLED");
    assert_eq!(by_lead(&list, None)["status"], "PENDING");
    assert_eq!(time(&by_lead(&list, None)["remind_at"]), absolute);
}

#[tokio::test]
async fn a_reminder_moved_nearer_fires_at_its_new_time() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    // The new due time: a whole minute at least two minutes ahead. The lead time puts the reminder 4 s from now.
    let now = Utc::now();
    let soon = (now + chrono::Duration::minutes(3))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("minute");
    let lead = format!("{}s", (soon - now).num_seconds() - 4);
    let tomorrow = soon + chrono::Duration::days(1);
    let id = create(
        &app,
        &token,
        json!({"title": "Call back", "due_date": tomorrow.date_naive().to_string(),
               "due_time": tomorrow.format("%H:%M").to_string(), "reminders": [lead]}),
    )
    .await;
    let list = reminders(&app, &token, &id).await;
    let lead_label = list[0]["lead_time"].as_str().expect("lead").to_owned();
    let first = time(&list[0]["remind_at"]);
    assert!(first > now + chrono::Duration::hours(23));
    // Let the scheduler settle into its long sleep (the reminder is a day away).
    tokio::time::sleep(Duration::from_millis(300)).await;

    patch(
        &app,
        &token,
        &id,
        json!({"due_date": soon.date_naive().to_string(), "due_time": soon.format("%H:%M").to_string()}),
    )
    .await;
    let list = reminders(&app, &token, &id).await;
    let moved = time(&by_lead(&list, Some(&lead_label))["remind_at"]);
    assert_eq!(moved, first - chrono::Duration::days(1));
    assert!(
        moved > Utc::now(),
        "the test machine is too slow for this test"
    );

    let fired = wait_for_status(&app, &token, &id, Some(&lead_label), "TRIGGERED").await;
    let fired_at = time(&fired["fired_at"]);
    assert!(fired_at >= moved, "fired at {fired_at}, before {moved}");
    // The scheduler was woken by the update: it does not wait out its sleep (up to 30 s) for the old time.
    assert!(
        fired_at - moved < chrono::Duration::seconds(3),
        "fired at {fired_at}, {} s after {moved}",
        (fired_at - moved).num_milliseconds() as f64 / 1000.0
    );
}

#[tokio::test]
async fn an_overtaken_reminder_fires_at_once_and_one_of_an_overdue_task_is_cancelled() {
    let app = TestApp::spawn().await;
    let token = app.token(Uuid::new_v4());
    // Due in three days, reminded two days before; moved to tomorrow 00:00 the reminder's time has passed while
    // the task is not due yet: it fires now.
    let id = create(
        &app,
        &token,
        json!({"title": "Pack", "due_date": day(3).to_string(), "reminders": ["2d"]}),
    )
    .await;
    let before = Utc::now();
    patch(&app, &token, &id, json!({"due_date": day(1).to_string()})).await;
    let fired = wait_for_status(&app, &token, &id, Some("2d"), "TRIGGERED").await;
    assert!(time(&fired["remind_at"]) >= before - chrono::Duration::seconds(1));
    assert!(time(&fired["fired_at"]) - before < chrono::Duration::seconds(5));

    // Moved into the past, the task is overdue: its reminder is cancelled.
    let id = create(
        &app,
        &token,
        json!({"title": "Renew", "due_date": day(3).to_string(), "reminders": ["1h"]}),
    )
    .await;
    patch(&app, &token, &id, json!({"due_date": day(-1).to_string()})).await;
    let list = reminders(&app, &token, &id).await;
    assert_eq!(by_lead(&list, Some("1h"))["status"], "CANCELLED");
}
