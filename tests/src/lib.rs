//! Shared helpers of the end-to-end tests.
//!
//! The test command (`bash tests/run.sh`) starts a PostgreSQL server and a Kafka-protocol broker process and
//! exports their addresses as `TODO_TEST_DATABASE_URL` and `TODO_TEST_KAFKA_BROKERS`. A test that needs one of them
//! asks [`require`]: under `CI=true` a missing server fails the test, elsewhere the test is skipped with a loud
//! message so that `cargo test` on a laptop without the servers still runs everything else.

/// The value of the environment variable `var`, which names a server the calling test needs.
///
/// Returns `None` (after printing a loud skip notice) when it is unset outside CI.
///
/// # Panics
/// When the variable is unset and `CI=true`: in CI a missing server is a failure, never a skip.
pub fn require(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ if is_ci() => panic!(
            "{var} is not set: under CI=true the server it names must be running (use tests/run.sh)"
        ),
        _ => {
            eprintln!(
                "\n*** SKIPPED: {var} is not set; run `bash tests/run.sh` to test against real servers ***\n"
            );
            None
        }
    }
}

/// Whether the tests run in CI (`CI=true`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub mod harness;
