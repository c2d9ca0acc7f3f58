//! The checkpointer: copies committed pages from the write-ahead log into the database file on a thread of its
//! own, off the writers' path.
//!
//! Left to itself, SQLite checkpoints inside a `COMMIT`: the connection whose commit takes the log past 1,000 pages
//! copies every page back into the database file and syncs both files before its caller gets an answer. Under
//! load that was a third of the group writer's time, spent while every other write waited. Here every connection
//! of the store turns automatic checkpoints off, and this thread, with a connection of its own, runs them instead:
//!
//! - shortly after the group writer commits ([`INTERVAL`] after the previous checkpoint at the earliest, so that one
//!   checkpoint copies the pages of many commits), and at least every [`IDLE`]: `PASSIVE` checkpoints, which copy
//!   what no reader still needs while writers and readers go on;
//! - once the log holds [`RESTART_FRAMES`] pages, a last checkpoint while holding the store's place in its writer
//!   queue, so that no commit lands between the end of the copy and the next write, which then starts the log over
//!   from its beginning. A checkpoint running beside a steady stream of commits never catches up with the end of
//!   the log on its own, and a log that only grows makes every read and write slower. Before taking its place, the
//!   thread catches up outside the queue, so writes wait only for the copy of what committed meanwhile. Under
//!   sustained load the log file therefore grows to about [`RESTART_FRAMES`] pages;
//! - after [`IDLE`] without commits, a `TRUNCATE` checkpoint empties the log file.
//!
//! Durability is unchanged in kind and better bounded: with `synchronous = NORMAL` a commit reaches the disk when a
//! checkpoint syncs the log, which now happens within about [`IDLE`] of any commit instead of whenever the log next
//! reached 1,000 pages.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Mutex;

use super::writer::sqlite_err;
use crate::Result;

/// The shortest time between two checkpoints under load.
pub(super) const INTERVAL: Duration = Duration::from_millis(20);

/// How long the thread waits for a commit before it checks the log anyway (writes of other connections of the
/// store do not wake it).
pub(super) const IDLE: Duration = Duration::from_secs(1);

/// Log size, in pages, from which a checkpoint holds the writer queue to start the log over under load (256 MiB of
/// 4 KiB pages). Each start-over disturbs the writes around it (measured: at 64 clients creating tasks, p99 latency
/// 31 ms with a start-over every 16,384 pages, 19 ms every 65,536), so under load the log is started over seldom.
/// A store that goes quiet needs no help: its log is copied completely, and the next write starts it over.
pub(super) const RESTART_FRAMES: i64 = 65_536;

/// Wakes the checkpointer after a commit. Cheap and never blocking: wake-ups coalesce.
#[derive(Debug)]
pub(super) struct Wake(SyncSender<()>);

impl Wake {
    pub(super) fn committed(&self) {
        let _ = self.0.try_send(());
    }
}

/// Opens the checkpointer's connection to the database file `filename` and starts its thread, which starts the log
/// over once it holds `restart_frames` pages ([`RESTART_FRAMES`] unless a test asks for less); it ends when every
/// [`Wake`] is gone.
pub(super) fn spawn(filename: &str, gate: Arc<Mutex<()>>, restart_frames: i64) -> Result<Wake> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(filename, flags)
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    // No waiting for locks: a checkpoint that finds readers in its way copies what it can (or gives up) at once
    // instead of holding the writer queue while it waits.
    conn.busy_timeout(Duration::ZERO).map_err(sqlite_err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
        .map_err(sqlite_err)?;
    let (wake, woken) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("todo-sqlite-checkpointer".into())
        .spawn(move || run(&conn, &gate, &woken, restart_frames))
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    Ok(Wake(wake))
}

fn run(conn: &Connection, gate: &Mutex<()>, woken: &Receiver<()>, restart_frames: i64) {
    let mut last = Instant::now();
    // The log's size when it was last copied completely with the writer queue held: the next write starts it over,
    // and until then a checkpoint finds it at that size with nothing to do.
    let mut restarted = None;
    loop {
        match woken.recv_timeout(IDLE) {
            Ok(()) => {
                // Let the commits of the next few milliseconds join this checkpoint.
                let since = last.elapsed();
                if since < INTERVAL {
                    std::thread::sleep(INTERVAL - since);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if truncate_when_quiet(conn, gate) {
                    continue;
                }
                // Other connections of the store are writing (they do not wake this thread): a usual round.
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        last = Instant::now();
        let mut log = match checkpoint(conn) {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed");
                continue;
            }
        };
        if log.frames < restart_frames || restarted == Some(log.frames) {
            continue;
        }
        // Copy what was committed during that checkpoint too, still outside the queue: what is left to copy while
        // writes wait is then only what commits meanwhile.
        for _ in 0..3 {
            if log.copied == log.frames {
                break;
            }
            match checkpoint(conn) {
                Ok(next) => log = next,
                Err(_) => break,
            }
        }
        let _turn = gate.blocking_lock();
        match checkpoint(conn) {
            Ok(log) if log.copied == log.frames => restarted = Some(log.frames),
            // A reader of an older snapshot kept pages from being copied: the log is started over at a later round.
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
        }
    }
}

/// After a second without a commit of the group writer: copies the rest of the log and cuts the log file to
/// nothing, holding the writer queue if nobody else holds it (nobody waits then), so that a burst of writes leaves
/// no file of the burst's size behind. Cutting the file under load would stall the write that finds it cut
/// (measured: about 100 ms for 200 MiB). Returns `false` when another write held the queue.
fn truncate_when_quiet(conn: &Connection, gate: &Mutex<()>) -> bool {
    let Ok(turn) = gate.try_lock() else {
        return false;
    };
    // Readers of the log make the checkpoint give up at once; the next quiet second tries again.
    let truncated = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    drop(turn);
    if let Err(e) = truncated {
        tracing::warn!(error = %e, "SQLite checkpoint failed");
    }
    true
}

/// The write-ahead log after a checkpoint.
#[derive(Debug, Clone, Copy)]
struct Log {
    /// Pages in the log.
    frames: i64,
    /// Pages of the log copied into the database file.
    copied: i64,
}

/// Runs a `PASSIVE` checkpoint: copies what no reader still needs from the log, without waiting for anyone.
fn checkpoint(conn: &Connection) -> Result<Log> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Log {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
    .map_err(sqlite_err)
}
