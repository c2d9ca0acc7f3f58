//! End-to-end tests across real processes.

mod deploy;
mod drills;
mod quickstart;
mod replay;
mod scenarios;
mod system;
