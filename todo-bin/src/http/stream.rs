//! `GET /api/v1/events/stream`: the user's task events and triggered reminders as server-sent events.
//!
//! Each message's `id` is a position in the outbox such that every event before it was sent: the event's sequence,
//! or less while an earlier row is still being written. A client that reconnects with `Last-Event-ID` (as a
//! browser's `EventSource` does by itself) is sent what it missed from the outbox before the live events; so is a
//! stream that fell behind the live events. Where the outbox no longer holds all of that, the stream says `reset`.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use todo_events::Event;
use todo_store::Store;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::AppState;
use super::extract::AuthUser;
use super::problem::ApiError;

/// An event the feed read from the outbox, with its sequence there.
#[derive(Debug)]
pub(crate) struct Published {
    /// The outbox sequence.
    pub(crate) seq: i64,
    /// The message's SSE `id`: every row up to it was published (or given up) when this one was, so a stream
    /// resuming from it misses nothing. The sequence itself unless an earlier row was still missing.
    pub(crate) resume_from: i64,
    /// The event.
    pub(crate) event: Event,
}

/// Fans committed events out to the open streams of their users.
#[derive(Debug, Clone)]
pub struct StreamHub {
    tx: broadcast::Sender<Arc<Published>>,
    /// Every outbox sequence up to this one has been handed to the streams open at the time (or passed while none
    /// was): where a stream opening now starts.
    position: Arc<AtomicI64>,
}

impl Default for StreamHub {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl StreamHub {
    /// A hub that buffers up to `capacity` events for slow streams.
    pub fn new(capacity: usize) -> Self {
        StreamHub {
            tx: broadcast::channel(capacity).0,
            position: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Sends an event, the outbox row `seq`, to every open stream of its user; every row up to `resume_from` (at
    /// most `seq`) has been published or given up.
    pub fn publish(&self, seq: i64, resume_from: i64, event: Event) {
        // No receiver (no open stream) is fine.
        let _ = self.tx.send(Arc::new(Published {
            seq,
            resume_from,
            event,
        }));
    }

    /// Records that every sequence up to `done` has been published or passed over.
    pub fn advance(&self, done: i64) {
        self.position.store(done, Ordering::Release);
    }

    /// Number of open streams.
    pub fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    fn position(&self) -> i64 {
        self.position.load(Ordering::Acquire)
    }
}

/// Most outbox rows (of every user) one catch-up reads; a stream further behind gets `reset` instead.
const CATCH_UP_ROWS: usize = 10_000;

/// Rows read per topic and query in a catch-up.
const CATCH_UP_PAGE: usize = 256;

/// `GET /api/v1/events/stream`
///
/// Each SSE message has the event type as its `event` field, a position in the outbox as its `id` (the event's
/// sequence, or less while an earlier write is still in flight) and the CloudEvents JSON as its data. The stream
/// begins with a message holding only an `id` (where it starts), so that a client that reconnects before any event
/// arrived can resume too. With a `Last-Event-ID` header, the stream first sends the user's events after that
/// position, read from the outbox, then the live ones; none is lost, and one the client already had is sent again
/// only when its id was below its sequence. A stream that falls behind the live events catches up the same way.
/// When the outbox no longer holds every event after the id (it was pruned, or more than 10,000 rows were written
/// since), the stream sends a `reset` message instead: reload what you show, the events since are not all coming.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(("Last-Event-ID" = Option<i64>, Header,
        description = "The `id` of the last message received: resume after it")),
    responses(
        (status = 200, description = "text/event-stream of CloudEvents", content_type = "text/event-stream"),
        (status = 422, description = "`Last-Event-ID` is not an id of this stream",
            body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database did not answer the catch-up read",
            body = super::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn stream(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let resume = last_event_id(&headers)?;
    let mut feed = UserFeed::new(&state.hub, state.service.store().clone(), user.as_uuid());
    match resume {
        Some(after) => feed
            .catch_up(after)
            .await
            .map_err(|e| ApiError::from(crate::service::store_error(e)))?,
        None => feed
            .queue
            .push_back(SseEvent::default().id(feed.last.to_string())),
    }
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let message = feed.next().await?;
        Some((Ok(message), feed))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The `Last-Event-ID` request header: an id this stream sent.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::field(
            "header.Last-Event-ID",
            "not an id of this stream (a whole number of 0 or more)",
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text.is_empty() {
        // What a client sends when it has no id yet.
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(seq) if seq >= 0 => Ok(Some(seq)),
        _ => Err(invalid()),
    }
}

/// One user's stream: the messages queued for it and the live events after them.
struct UserFeed {
    live: broadcast::Receiver<Arc<Published>>,
    hub: StreamHub,
    store: Arc<dyn Store>,
    user: Uuid,
    /// The outbox rows' key of this user's events.
    key: Vec<u8>,
    queue: VecDeque<SseEvent>,
    /// Live events at or before this sequence were sent before the last catch-up or by it (or a reset passed them).
    caught_up_from: i64,
    /// What the last catch-up sent after `caught_up_from`: a live event among them is not sent again.
    replayed: HashSet<i64>,
    /// The highest id sent (or where the stream started): where a stream that falls behind catches up from.
    last: i64,
    /// [`CATCH_UP_ROWS`], smaller in tests.
    max_rows: usize,
}

impl UserFeed {
    /// A stream of `user`'s events, subscribed to `hub` from now on, starting where the hub's feed is.
    fn new(hub: &StreamHub, store: Arc<dyn Store>, user: Uuid) -> Self {
        // Subscribed before the position is read: every event published after that position reaches the stream.
        let live = hub.subscribe();
        UserFeed {
            live,
            hub: hub.clone(),
            store,
            user,
            key: user.to_string().into_bytes(),
            queue: VecDeque::new(),
            caught_up_from: i64::MIN,
            replayed: HashSet::new(),
            last: hub.position(),
            max_rows: CATCH_UP_ROWS,
        }
    }

    /// The next message; `None` once the server shuts down.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some(message);
            }
            match self.live.recv().await {
                Ok(published) => {
                    if published.event.data().user_id() == self.user
                        && published.seq > self.caught_up_from
                        && !self.replayed.contains(&published.seq)
                    {
                        self.last = self.last.max(published.resume_from);
                        return Some(message(published.resume_from, &published.event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Err(e) = self.catch_up(self.last).await {
                        tracing::warn!(error = %e, "a live stream could not catch up from the outbox");
                        self.reset().await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Queues the user's events after `after` from the outbox, or a `reset` when the outbox no longer holds them
    /// all.
    async fn catch_up(&mut self, after: i64) -> todo_store::Result<()> {
        // Every row up to the feed's position was committed before it is read here, and so is among the rows read
        // below: a replayed row's id can be its sequence up to there, and no more (after it, a row with a lower
        // sequence may still be in flight).
        let committed = after.max(self.hub.position());
        // Every row after `pruned` is still in the outbox. The pruner may go on while the rows are read: it is
        // asked again after them.
        let pruned = self.store.outbox_pruned_through().await?;
        if after < pruned {
            self.reset().await;
            return Ok(());
        }
        let mut rows = Vec::new();
        let mut scanned = 0;
        for topic in todo_events::Topic::ALL.map(todo_events::Topic::name) {
            let mut from = after;
            loop {
                let page = self.store.outbox_after(topic, from, CATCH_UP_PAGE).await?;
                scanned += page.len();
                if scanned > self.max_rows {
                    self.reset().await;
                    return Ok(());
                }
                let full = page.len() == CATCH_UP_PAGE;
                from = page.last().map_or(from, |r| r.seq);
                rows.extend(
                    page.into_iter()
                        .filter(|r| r.key.as_deref() == Some(self.key.as_slice())),
                );
                if !full {
                    break;
                }
            }
        }
        if self.store.outbox_pruned_through().await? > after {
            // Pruned while it was read: some of it may be gone.
            self.reset().await;
            return Ok(());
        }
        rows.sort_unstable_by_key(|r| r.seq);
        self.caught_up_from = after;
        self.replayed.clear();
        for row in rows {
            let Ok(event) = todo_events::binding::decode(&row.headers, &row.payload) else {
                continue;
            };
            let id = row.seq.min(committed);
            self.replayed.insert(row.seq);
            self.last = self.last.max(id);
            self.queue.push_back(message(id, &event));
        }
        metrics::counter!("todo_stream_catch_ups_total", "outcome" => "replayed").increment(1);
        Ok(())
    }

    /// Queues a `reset`: events were missed that the stream cannot send. Its `id` is where the feed is (and at
    /// least past what was pruned), and the stream goes on with the events after it: a client that reloads what it
    /// shows once it gets the message misses nothing, and resumes from that id without being reset again.
    async fn reset(&mut self) {
        let pruned = self.store.outbox_pruned_through().await.unwrap_or(0);
        let from = self.hub.position().max(pruned).max(self.last);
        self.caught_up_from = from;
        self.replayed.clear();
        self.last = from;
        self.queue.push_back(
            SseEvent::default()
                .event("reset")
                .id(from.to_string())
                .data("some events since your last id cannot be sent: reload, the stream goes on after this id"),
        );
        metrics::counter!("todo_stream_catch_ups_total", "outcome" => "reset").increment(1);
    }
}

fn message(id: i64, event: &Event) -> SseEvent {
    SseEvent::default()
        .event(event.event_type().as_str())
        .id(id.to_string())
        .data(event.to_json())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::response::IntoResponse as _;
    use axum::response::sse::Sse;
    use todo_kafka::OutgoingRecord;
    use todo_store::Store;
    use uuid::Uuid;

    use super::{StreamHub, UserFeed};
    use crate::app::StoreLog;
    use crate::embedded::OutboxLog as _;
    use crate::testing::{memory_store, task_deleted};

    /// Commits `event` to the outbox; returns its sequence.
    async fn append(store: &Arc<dyn Store>, event: &todo_events::Event) -> i64 {
        StoreLog(store.clone())
            .append(&[OutgoingRecord::from_event(event)])
            .await
            .expect("append")[0]
    }

    /// Commits an event of `user` to the outbox and publishes it to `hub`, as the feed does when no write is in
    /// flight before it; returns its sequence.
    async fn commit(store: &Arc<dyn Store>, hub: &StreamHub, user: Uuid) -> i64 {
        let event = task_deleted(user);
        let seq = append(store, &event).await;
        hub.publish(seq, seq, event);
        hub.advance(seq);
        seq
    }

    /// The next message's text as sent (`event: …`, `id: …`, `data: …` lines).
    async fn next(feed: &mut UserFeed) -> String {
        let message = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("a message within 10 s")
            .expect("the stream goes on");
        // axum's event does not show its fields: render it as a client receives it.
        let one = futures::stream::iter([Ok::<_, Infallible>(message)]);
        let body = Sse::new(one).into_response().into_body();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    /// A file store whose outbox can no longer be read: another connection dropped the table of its pruned
    /// watermark, which every catch-up reads first. Returns the store and its directory (to remove).
    async fn broken_store() -> (Arc<dyn Store>, std::path::PathBuf) {
        use sqlx::Connection as _;
        let dir = std::env::temp_dir().join(format!("todo-stream-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("todo.db");
        let store = todo_store::SqliteStore::connect(&todo_store::SqliteConfig::file(&path))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open");
        sqlx::query("DROP TABLE outbox_pruned")
            .execute(&mut other)
            .await
            .expect("drop");
        other.close().await.expect("close");
        (Arc::new(store), dir)
    }

    fn id_of(text: &str) -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap_or_else(|| panic!("no id in {text:?}"))
            .parse()
            .expect("a sequence")
    }

    /// A stream that falls behind the live events (more than the hub buffers) gets the user's events it missed
    /// from the outbox, in order and once: the live events it then finds buffered are not sent again.
    #[tokio::test]
    async fn a_stream_that_falls_behind_catches_up_from_the_outbox_once() {
        let store = memory_store().await;
        let hub = StreamHub::new(2);
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        let mut mine = Vec::new();
        for i in 0..6 {
            let seq = commit(&store, &hub, if i == 2 { other } else { user }).await;
            if i != 2 {
                mine.push(seq);
            }
        }
        let mut sent = Vec::new();
        for _ in 0..mine.len() {
            let text = next(&mut feed).await;
            assert!(text.contains("event: task.deleted"), "{text}");
            sent.push(id_of(&text));
        }
        assert_eq!(sent, mine);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), feed.next())
                .await
                .is_err(),
            "nothing is sent twice"
        );
        let live = commit(&store, &hub, user).await;
        assert_eq!(id_of(&next(&mut feed).await), live);
    }

    /// While an earlier row is missing (a write in flight on PostgreSQL), a live event's id stays before it, so a
    /// client that resumes from that id gets the late row and, again, the event: nothing is lost.
    #[tokio::test]
    async fn an_id_stays_before_a_row_still_in_flight() {
        let store = memory_store().await;
        let hub = StreamHub::default();
        let user = Uuid::new_v4();
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        let first = commit(&store, &hub, user).await;
        assert_eq!(id_of(&next(&mut feed).await), first);
        // Two more rows commit; the feed has read only the second, as when the first was still in flight.
        let (late, early) = (task_deleted(user), task_deleted(user));
        append(&store, &late).await;
        let seq = append(&store, &early).await;
        hub.publish(seq, first, early.clone());
        let text = next(&mut feed).await;
        assert!(text.contains(&early.id().to_string()), "{text}");
        assert_eq!(id_of(&text), first, "the id stays before the missing row");

        // A client that resumes from that id gets the late row, and the other again.
        let mut resumed = UserFeed::new(&hub, store.clone(), user);
        resumed.catch_up(first).await.expect("catch up");
        let (a, b) = (next(&mut resumed).await, next(&mut resumed).await);
        assert!(a.contains(&late.id().to_string()), "{a}");
        assert!(b.contains(&early.id().to_string()), "{b}");
    }

    /// A resume whose catch-up read fails is an error (which the handler answers with a problem), not a catch-up
    /// that queued nothing: the stream would then start with the events after the client's id lost without a word.
    #[tokio::test]
    async fn a_failed_catch_up_is_an_error_and_queues_nothing() {
        let (store, dir) = broken_store().await;
        let hub = StreamHub::default();
        let user = Uuid::new_v4();
        let seq = commit(&store, &hub, user).await;
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        let result = feed.catch_up(seq - 1).await;
        assert!(result.is_err(), "{result:?}");
        assert!(feed.queue.is_empty(), "nothing is sent for a failed read");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A stream that falls behind while its catch-up read fails is not ended: it sends `reset` with the feed's
    /// position as its id and goes on with the live events after it.
    #[tokio::test]
    async fn a_stream_whose_catch_up_fails_sends_reset_and_goes_on() {
        let (store, dir) = broken_store().await;
        let hub = StreamHub::new(2);
        let user = Uuid::new_v4();
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        let mut seqs = Vec::new();
        for _ in 0..4 {
            seqs.push(commit(&store, &hub, user).await);
        }
        let text = next(&mut feed).await;
        assert!(text.contains("event: reset"), "{text}");
        assert_eq!(id_of(&text), seqs[3]);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), feed.next())
                .await
                .is_err(),
            "the events the reset passed over are not sent"
        );
        let live = commit(&store, &hub, user).await;
        let text = next(&mut feed).await;
        assert!(text.contains("event: task.deleted"), "{text}");
        assert_eq!(id_of(&text), live);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A catch-up that would read more rows than its limit sends `reset` with the feed's position as its id, and
    /// the stream goes on with the events after it.
    #[tokio::test]
    async fn a_catch_up_past_its_limit_is_a_reset_to_the_feeds_position() {
        let store = memory_store().await;
        let hub = StreamHub::default();
        let user = Uuid::new_v4();
        let mut seqs = Vec::new();
        for _ in 0..5 {
            seqs.push(commit(&store, &hub, user).await);
        }
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        feed.max_rows = 3;
        feed.catch_up(seqs[0] - 1).await.expect("catch up");
        let text = next(&mut feed).await;
        assert!(text.contains("event: reset"), "{text}");
        assert_eq!(id_of(&text), seqs[4]);
        let live = commit(&store, &hub, user).await;
        assert_eq!(id_of(&next(&mut feed).await), live);

        // Within the limit: every event after the id.
        let mut feed = UserFeed::new(&hub, store.clone(), user);
        feed.max_rows = 3;
        feed.catch_up(seqs[2]).await.expect("catch up");
        for seq in [seqs[3], seqs[4], live] {
            assert_eq!(id_of(&next(&mut feed).await), seq);
        }
    }
}
