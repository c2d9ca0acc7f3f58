//! Measures the create-task transaction (task row + outbox row in one transaction) of the stores.
//!
//! ```sh
//! # SQLite file in WAL mode at 1, 4 and 16 concurrent writers (a fresh file per run)
//! cargo run --release -p todo-store --example create_rate -- sqlite 5000
//! # PostgreSQL at 1, 4 and 16 concurrent writers (a fresh database is created and dropped)
//! cargo run --release -p todo-store --example create_rate -- postgres 20000 postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Prints one line per run: backend, writers, transactions, seconds, transactions per second.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use todo_domain::{NewTask, Task, TaskId, Title, UserId};
use todo_events::{Event, SOURCE_BACKEND};
use todo_store::Store;

fn task(owner: UserId, i: usize) -> (Task, Event) {
    let new = NewTask::titled(Title::parse(&format!("task {i}")).expect("a short title is valid"));
    let t = Task::create(TaskId::new(), owner, new, Utc::now());
    let e = Event::new(SOURCE_BACKEND, t.created_at, t.created_payload());
    (t, e)
}

async fn run(store: Arc<dyn Store>, backend: &str, writers: usize, total: usize) {
    let per = total / writers;
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let owner = UserId::from_uuid(uuid::Uuid::new_v4());
            for i in 0..per {
                let (t, e) = task(owner, i);
                if let Err(err) = store.create_task(&t, &[], &[e]).await {
                    eprintln!("create failed: {err}");
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = per * writers;
    println!(
        "{backend:<9} writers={writers:<3} tx={n:<7} seconds={secs:>7.2} tx/s={:>9.0}",
        n as f64 / secs
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str);
    let total: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5000);
    match backend {
        "sqlite" => {
            for writers in [1, 4, 16] {
                let dir = std::env::temp_dir().join(format!("todo-bench-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir)?;
                let store = todo_store::SqliteStore::connect(&todo_store::SqliteConfig::file(
                    dir.join("bench.db"),
                ))
                .await?;
                store.migrate().await?;
                run(Arc::new(store), "sqlite", writers, total).await;
                std::fs::remove_dir_all(dir)?;
            }
        }
        "postgres" => {
            let url = args
                .get(3)
                .cloned()
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("todo_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&url).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await?;
            let db = format!(
                "{}/{name}",
                url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b)
            );
            let store = todo_store::PgStore::connect(
                &todo_store::PgConfig::new(db).with_max_connections(20),
            )
            .await?;
            store.migrate().await?;
            let store: Arc<dyn Store> = Arc::new(store);
            for writers in [1, 4, 16] {
                run(store.clone(), "postgres", writers, total).await;
            }
            drop(store);
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await?;
        }
        other => return Err(format!("unknown backend `{other}` (sqlite or postgres)").into()),
    }
    Ok(())
}
