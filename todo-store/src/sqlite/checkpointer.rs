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
//! - once the log holds [`RESTART_FRAMES`] pages, a start-over: a checkpoint running beside a steady stream of
//!   commits never catches up with the end of the log on its own, and a log that only grows makes every read and
//!   write slower. The thread catches up with the end of the log, then asks the group writer for a last pass right
//!   after its next commit, while the writer still holds the store's place in its queue: no commit lands between the
//!   end of that copy and the next write, which then starts the log over from its beginning. Writes wait only for
//!   the copy of what the writer committed since the thread's last pass. (If the group writer does not commit for
//!   [`IDLE`] while other connections of the store write, the thread takes the queue and runs the last pass itself.)
//!   Before it asks, the thread has the file system write out the pages written to the database file and the log
//!   so far ([`Thread::flush`]), so that the two syncs of the last pass find little left to write. Under sustained
//!   load the log file therefore grows to about [`RESTART_FRAMES`] pages;
//! - after [`IDLE`] without commits, a `TRUNCATE` checkpoint empties the log file.
//!
//! Durability is unchanged in kind and better bounded: with `synchronous = NORMAL` a commit reaches the disk when a
//! checkpoint syncs the log, which now happens within about [`IDLE`] of any commit instead of whenever the log next
//! reached 1,000 pages.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, LazyLock, PoisonError};
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

/// Log size, in pages, from which the log is started over under load (512 MiB of 4 KiB pages). Each start-over
/// stalls every write for its last pass, so under load the log is started over seldom (measured at 64 clients creating
/// tasks: p99 latency 31 ms with a start-over every 16,384 pages, 19 ms every 65,536 on a fast day; with the files
/// written out before the last pass, p99 21.6 against 26.5 ms every 131,072 pages against 65,536, and no lower every
/// 262,144). A store that goes quiet needs no help: its log is copied completely, and the next write starts it over.
pub(super) const RESTART_FRAMES: i64 = 131_072;

/// Passes of the checkpoint thread that prepare a start-over: it catches up with the end of the log until a pass
/// copies fewer than [`CAUGHT_UP`] pages (or this many passes ran), so that the last pass, which writes wait for,
/// copies little.
const CATCH_UP_PASSES: usize = 4;

/// See [`CATCH_UP_PASSES`]: a pass that copied fewer pages than this one was short, and so is the next.
const CAUGHT_UP: i64 = 1_024;

/// The group writer's side of the checkpointer: wakes it after a commit, and runs the last pass of a start-over
/// when asked. Cheap and never blocking: wake-ups coalesce.
#[derive(Debug)]
pub(super) struct Checkpoints {
    wake: SyncSender<()>,
    start_over: Arc<StartOver>,
}

impl Checkpoints {
    /// Called by the group writer right after it commits, on its connection and while it still holds the writer
    /// queue. When the checkpoint thread asked for a start-over, this is its last pass: the writer copies what it
    /// committed since the thread's last pass, and its next transaction starts the log over. Doing it here rather
    /// than on the checkpoint thread spares the writes the hand-over of the queue to that thread and back (measured
    /// at 64 clients creating tasks: 6 to 17 ms per pass here, 9 to 36 ms when the thread held the queue).
    pub(super) fn committed(&self, conn: &Connection) {
        if self.start_over.asked.swap(false, Ordering::AcqRel) {
            self.start_over.last_pass(conn);
        }
        let _ = self.wake.try_send(());
    }
}

/// Opens the checkpointer's connection to the database file `filename` and starts its thread, which starts the log
/// over once it holds `restart_frames` pages ([`RESTART_FRAMES`] unless a test asks for less); it ends when the
/// [`Checkpoints`] handle is gone.
pub(super) fn spawn(
    filename: &str,
    gate: Arc<Mutex<()>>,
    restart_frames: i64,
) -> Result<Checkpoints> {
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
    let start_over = Arc::new(StartOver::default());
    let thread = Thread {
        filename: filename.to_owned(),
        conn,
        gate,
        woken,
        start_over: start_over.clone(),
        restart_frames,
    };
    std::thread::Builder::new()
        .name("todo-sqlite-checkpointer".into())
        .spawn(move || thread.run())
        .map_err(|e| crate::Error::Unavailable(Box::new(e)))?;
    Ok(Checkpoints { wake, start_over })
}

/// The checkpoint thread's state.
struct Thread {
    /// The database file's name, as SQLite opened it.
    filename: String,
    conn: Connection,
    gate: Arc<Mutex<()>>,
    woken: Receiver<()>,
    start_over: Arc<StartOver>,
    restart_frames: i64,
}

impl Thread {
    fn run(&self) {
        let mut last = Instant::now();
        // When this thread last asked the group writer for a start-over.
        let mut asked: Option<Instant> = None;
        loop {
            match self.woken.recv_timeout(IDLE) {
                Ok(()) => {
                    // Let the commits of the next few milliseconds join this checkpoint.
                    let since = last.elapsed();
                    if since < INTERVAL {
                        std::thread::sleep(INTERVAL - since);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.truncate_when_quiet() {
                        continue;
                    }
                    // Other connections of the store are writing (they do not wake this thread): a usual round.
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some(at) = asked {
                if !self.start_over.asked.load(Ordering::Acquire) {
                    // The group writer ran the last pass.
                    asked = None;
                } else if at.elapsed() < IDLE {
                    // It will after its next commit; a pass now would only contend with it.
                    continue;
                } else if self.start_over.asked.swap(false, Ordering::AcqRel) {
                    // The group writer has not committed for a second while the store's other connections wrote:
                    // this thread runs the last pass, holding the writer queue itself.
                    asked = None;
                    let _turn = self.gate.blocking_lock();
                    self.start_over.last_pass(&self.conn);
                    continue;
                }
            }
            last = Instant::now();
            let mut log = match checkpoint(&self.conn) {
                Ok(log) => log,
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                    continue;
                }
            };
            if log.frames < self.restart_frames
                || log.frames == self.start_over.copied.load(Ordering::Acquire)
            {
                continue;
            }
            // Catch up outside the queue: what is left for the last pass, which writes wait for, is then only what
            // commits meanwhile.
            for _ in 0..CATCH_UP_PASSES {
                let copied_before = log.copied;
                match checkpoint(&self.conn) {
                    Ok(next) => log = next,
                    Err(_) => break,
                }
                if log.copied - copied_before < CAUGHT_UP {
                    break;
                }
            }
            self.flush();
            self.start_over.asked.store(true, Ordering::Release);
            asked = Some(Instant::now());
        }
    }

    /// Has the file system write out the written pages of the database file and of the log, off the writers' path.
    ///
    /// The last pass of a start-over syncs the log before it copies and the database file after, while every write
    /// waits. The passes before it copy into the database file without syncing it (SQLite syncs the file only when a
    /// pass reaches the end of the log, which under load a commit seldom allows), so that sync would otherwise write
    /// out every page they copied (measured at 64 clients creating tasks: 38 ms at the median, against 10 ms after
    /// this flush).
    fn flush(&self) {
        for name in [self.filename.clone(), format!("{}-wal", self.filename)] {
            if let Some(file) = kept_open(name)
                && let Err(e) = file.sync_data()
            {
                tracing::warn!(error = %e, "syncing the SQLite files before a start-over failed");
            }
        }
    }

    /// After a second without a commit of the group writer: copies the rest of the log and cuts the log file to
    /// nothing, holding the writer queue if nobody else holds it (nobody waits then), so that a burst of writes leaves
    /// no file of the burst's size behind. Cutting the file under load would stall the write that finds it cut
    /// (measured: about 100 ms for 200 MiB). Returns `false` when another write held the queue.
    fn truncate_when_quiet(&self) -> bool {
        let Ok(turn) = self.gate.try_lock() else {
            return false;
        };
        // Readers of the log make the checkpoint give up at once; the next quiet second tries again.
        let truncated = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
        drop(turn);
        // An empty log needs no start-over.
        self.start_over.asked.store(false, Ordering::Release);
        if let Err(e) = truncated {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
        true
    }
}

/// A start-over, between the checkpoint thread and whoever runs its last pass.
#[derive(Debug, Default)]
struct StartOver {
    /// Set by the checkpoint thread to ask the group writer for the last pass; cleared by whoever runs it.
    asked: AtomicBool,
    /// The log's size when a last pass last copied all of it: the next write starts it over, and until then a
    /// checkpoint finds it at that size with nothing to do (and no start-over to ask for).
    copied: AtomicI64,
}

impl StartOver {
    /// The last pass, by whoever holds the writer queue: copies the rest of the log, so that the next write starts
    /// it over. A reader of an older snapshot can keep pages from being copied; the log is then started over at a
    /// later round.
    fn last_pass(&self, conn: &Connection) {
        match checkpoint(conn) {
            // An empty log, or a pass that found another checkpoint running, prepares nothing.
            Ok(log) => {
                if log.frames > 0 && log.copied == log.frames {
                    self.copied.store(log.frames, Ordering::Release);
                }
            }
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
        }
    }
}

/// The file `name`, opened once per process for [`Thread::flush`] and never closed (`None` when it cannot be opened).
///
/// Closing a descriptor of a file drops every POSIX lock the process holds on that file through any descriptor, and
/// SQLite's connections lock the database file that way; SQLite keeps its own descriptors open for that reason, and
/// so does this. One descriptor per file per process, whatever the number of stores opened on it. A file removed and
/// made again under the same name (SQLite removes the log when the last connection to the database closes; a store
/// opened again makes a new one) keeps the first descriptor: the flush then does nothing for it, and the last pass
/// syncs as it would without the flush.
fn kept_open(name: String) -> Option<Arc<File>> {
    static KEPT: LazyLock<std::sync::Mutex<HashMap<String, Arc<File>>>> =
        LazyLock::new(Default::default);
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(file) = kept.get(&name) {
        return Some(file.clone());
    }
    let file = Arc::new(File::open(&name).ok()?);
    kept.insert(name, file.clone());
    Some(file)
}

/// The write-ahead log after a checkpoint. Both counts are -1 when another connection was checkpointing (SQLite
/// then copies nothing and reports no size).
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::kept_open;

    /// One descriptor per file for the whole process: asking again gives the same one (a second one, later closed,
    /// would drop SQLite's locks on the file), and a file that does not exist yet is opened once it does.
    #[test]
    fn each_file_is_opened_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("todo-kept-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let name = dir.join("todo.db").to_string_lossy().into_owned();
        assert!(kept_open(name.clone()).is_none(), "no file yet");
        std::fs::write(&name, b"pages").expect("write");
        let first = kept_open(name.clone()).expect("opened");
        let again = kept_open(name.clone()).expect("kept");
        assert!(Arc::ptr_eq(&first, &again), "opened twice");
        first.sync_data().expect("a descriptor that can sync");
        let _ = std::fs::remove_dir_all(dir);
    }
}
