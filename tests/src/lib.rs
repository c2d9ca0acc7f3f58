//! Shared helpers of the end-to-end tests: locating the PostgreSQL server and the broker process that the test
//! command started, and deciding whether a missing one fails the run (under `CI=true`) or skips loudly.
