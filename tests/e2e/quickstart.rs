//! The README's quick start, run against the real `todo` binary in its embedded default.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The `todo` binary that `cargo test --workspace` builds next to the test executables.
fn todo_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("todo");
    bin.exists().then_some(bin)
}

#[tokio::test]
async fn readme_quick_start_creates_completes_and_audits() {
    let Some(bin) = todo_binary() else {
        assert!(
            !todo_e2e::is_ci(),
            "the todo binary was not built: run `cargo test --workspace`"
        );
        eprintln!("*** SKIPPED: build the todo binary first (cargo test --workspace) ***");
        return;
    };
    let dir = std::env::temp_dir().join(format!("todo-quickstart-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Exactly `todo serve` with no configuration, in an empty working directory, on a free port.
    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .env_remove("TODO_JWT_SECRET")
        .env_remove("TODO_DATABASE_URL")
        .env_remove("TODO_KAFKA_BROKERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn todo");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let token = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Some(t) = line.strip_prefix("token: ") {
                return t.to_owned();
            }
        }
        panic!("no token printed")
    })
    .await
    .expect("token within 30 s");
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.trim().to_owned();
            }
        }
        panic!("no listening line")
    })
    .await
    .expect("listening within 30 s");
    assert!(
        dir.join("todo.db").exists(),
        "the embedded default keeps a SQLite file in the working directory"
    );

    let http = reqwest::Client::new();
    let auth = format!("Bearer {token}");
    let task: Value = http
        .post(format!("{base}/api/v1/tasks"))
        .header("Authorization", &auth)
        .json(&json!({"title":"Water plants","due_date":"2030-02-10","due_time":"10:00","recurrence":"weekly","reminders":["30min"]}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = task["id"].as_str().expect("id");
    let done: Value = http
        .post(format!("{base}/api/v1/tasks/{id}/complete"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("complete")
        .json()
        .await
        .expect("json");
    assert_eq!(done["next_due_date"], "2030-02-17");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The audit first: once it holds the next instance's task.created, that instance is committed, so the
        // list read after it must show it (read the other way round, the list could predate it).
        let audit: Value = http
            .get(format!("{base}/api/v1/audit"))
            .header("Authorization", &auth)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let active: Value = http
            .get(format!("{base}/api/v1/tasks?status=active"))
            .header("Authorization", &auth)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let types: Vec<&str> = audit["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["event_type"].as_str()).collect())
            .unwrap_or_default();
        if types == ["task.created", "task.completed", "task.created"] {
            assert_eq!(active["items"][0]["due_date"], "2030-02-17", "{active}");
            assert_eq!(active["items"][0]["series_index"], 1, "{active}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "audit {types:?}, active {active}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
