//! End-to-end tests across real processes.

mod deploy;
mod quickstart;
