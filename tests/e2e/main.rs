//! End-to-end tests across real processes.
