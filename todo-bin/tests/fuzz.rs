//! Random JSON bodies and query strings never produce a 5xx or a panic.

use axum::body::Body;
use axum::http::{Method, Request, header};
use proptest::prelude::*;
use serde_json::Value;
use todo_bin::testing::TestApp;
use tower::ServiceExt;
use uuid::Uuid;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("2026-02-10"),
            Just("25:99"),
            Just("Europe/Berlin"),
            Just("weekly"),
            Just("FREQ=MONTHLY;BYDAY=-1FR"),
            Just("30min"),
            Just("P1D"),
            Just("urgent"),
            Just("2026-02-10T09:30:00Z"),
            Just("every 2 weeks"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("title".to_owned()),
                    Just("description".to_owned()),
                    Just("priority".to_owned()),
                    Just("tags".to_owned()),
                    Just("due_date".to_owned()),
                    Just("due_time".to_owned()),
                    Just("time_zone".to_owned()),
                    Just("recurrence".to_owned()),
                    Just("reminders".to_owned()),
                    Just("version".to_owned()),
                    Just("lead_time".to_owned()),
                    Just("remind_at".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("status"),
                Just("priority"),
                Just("tags"),
                Just("tags_mode"),
                Just("due_from"),
                Just("due_to"),
                Just("q"),
                Just("sort"),
                Just("order"),
                Just("limit"),
                Just("cursor"),
                Just("x"),
            ],
            "[ -~]{0,12}",
        ),
        0..5,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let enc: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                format!("{k}={enc}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_requests_never_fail_with_5xx(bodies in prop::collection::vec(json_value(), 4), q in query()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let app = TestApp::spawn().await;
            let token = app.token(Uuid::new_v4());
            let send = |method: Method, uri: String, body: Option<String>| {
                let mut req = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
                if body.is_some() {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                }
                req.body(body.map_or_else(Body::empty, Body::from)).expect("request")
            };
            let created = app
                .router()
                .oneshot(send(Method::POST, "/api/v1/tasks".into(), Some(r#"{"title":"seed","due_date":"2099-01-01"}"#.into())))
                .await
                .expect("infallible");
            let bytes = axum::body::to_bytes(created.into_body(), 1 << 20).await.expect("body");
            let id = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["id"].as_str().map(str::to_owned)).unwrap_or_default();
            let requests = [
                (Method::POST, "/api/v1/tasks".to_owned(), Some(bodies[0].to_string())),
                (Method::PATCH, format!("/api/v1/tasks/{id}"), Some(bodies[1].to_string())),
                (Method::POST, format!("/api/v1/tasks/{id}/reminders"), Some(bodies[2].to_string())),
                (Method::POST, format!("/api/v1/tasks/{id}/reminders"), Some(bodies[3].to_string())),
                (Method::GET, format!("/api/v1/tasks?{q}"), None),
                (Method::GET, format!("/api/v1/audit?{q}"), None),
            ];
            for (method, uri, body) in requests {
                let response = app.router().oneshot(send(method.clone(), uri.clone(), body.clone())).await.expect("infallible");
                prop_assert!(response.status().as_u16() < 500, "{method} {uri} {body:?} -> {}", response.status());
            }
            Ok(())
        })?;
    }
}
