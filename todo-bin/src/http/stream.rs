//! `GET /api/v1/events/stream`: the user's task events and triggered reminders as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use todo_events::Event;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::AppState;
use super::extract::AuthUser;

/// Fans committed events out to the open streams of their users.
#[derive(Debug, Clone)]
pub struct StreamHub {
    tx: broadcast::Sender<Arc<Event>>,
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
        }
    }

    /// Sends an event to every open stream of its user.
    pub fn publish(&self, event: Event) {
        // No receiver (no open stream) is fine.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Number of open streams.
    pub fn receivers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

/// `GET /api/v1/events/stream`
///
/// Each SSE message has the event type as its `event` field, the event id as its `id`, and the CloudEvents JSON
/// as its data. A stream that falls behind receives a `lagged` message with the number of events it missed.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    responses((status = 200, description = "text/event-stream of CloudEvents", content_type = "text/event-stream")),
    security(("bearer" = [])))]
pub(crate) async fn stream(
    State(state): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let user = user.as_uuid();
    let events = BroadcastStream::new(state.hub.subscribe()).filter_map(move |item| async move {
        match item {
            Ok(event) if event.data().user_id() == user => Some(Ok(SseEvent::default()
                .event(event.event_type().as_str())
                .id(event.id().to_string())
                .data(event.to_json()))),
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Some(Ok(SseEvent::default().event("lagged").data(n.to_string())))
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
