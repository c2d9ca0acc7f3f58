//! Wake-ups on commits, armed before the read they follow.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// Completes at the first commit, after it was armed, that may have changed what it watches
/// ([`Store::outbox_changed`](crate::Store::outbox_changed), [`Store::reminders_changed`](crate::Store::reminders_changed)).
///
/// It is armed when it is made, not when it is first polled: make it, read the state, then wait on it, and a commit
/// between the read and the wait still wakes it. Waiting on a wake-up made after the read would miss such a commit
/// until the waiter's own timeout. A commit in this process wakes the wake-ups armed before it by the time the
/// write returns; on PostgreSQL a commit of another process wakes them when its `NOTIFY` arrives.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use todo_store::{SqliteConfig, SqliteStore, Store};
///
/// let store = SqliteStore::connect(&SqliteConfig::memory()).await?;
/// store.migrate().await?;
/// let changed = store.outbox_changed();
/// if store.outbox_backlog().await? == 0 {
///     // Nothing to do yet: wait for the next commit with events, or a second.
///     let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "a wake-up does nothing unless awaited"]
pub struct Wakeup(Pin<Box<OwnedNotified>>);

impl Wakeup {
    /// Registers for the next `notify_waiters` of `notify`.
    pub(crate) fn armed(notify: &Arc<Notify>) -> Self {
        let mut notified = Box::pin(notify.clone().notified_owned());
        notified.as_mut().enable();
        Wakeup(notified)
    }
}

impl Future for Wakeup {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use tokio::sync::Notify;

    use super::Wakeup;

    fn poll(wakeup: &mut Wakeup) -> Poll<()> {
        std::pin::Pin::new(wakeup).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Armed when made: a notification between making it and its first poll is not lost, while one before it was
    /// made does not count.
    #[test]
    fn a_wakeup_counts_notifications_from_when_it_was_made() {
        let notify = Arc::new(Notify::new());
        notify.notify_waiters();
        let mut wakeup = Wakeup::armed(&notify);
        assert_eq!(poll(&mut wakeup), Poll::Pending);
        notify.notify_waiters();
        assert_eq!(poll(&mut wakeup), Poll::Ready(()));

        let mut unpolled = Wakeup::armed(&notify);
        notify.notify_waiters();
        assert_eq!(poll(&mut unpolled), Poll::Ready(()));
    }
}
