//! Cheap deadlines for the request path.
//!
//! An operation that completes at once (most writes, a read whose bytes are already there)
//! never touches the timer wheel: the deadline is armed only when the operation would wait.
//! Each connection keeps one reusable timer, so a wait costs a reset rather than a new timer,
//! and the clock is read at each event-loop wake-up and every few uses in between (nginx
//! caches its time per loop iteration the same way); it is never more than a few requests old.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Uses of the cached time before the clock is read again.
const REUSE: u32 = 16;

thread_local! {
    static NOW: Cell<(Instant, u32)> = Cell::new((Instant::now(), REUSE));
}

/// Refreshes the cached clock; the worker runtime calls it each time it wakes up.
pub(crate) fn refresh() {
    NOW.with(|n| n.set((Instant::now(), 0)));
}

/// The current time, give or take the last few uses.
pub(crate) fn now() -> Instant {
    NOW.with(|n| {
        let (t, uses) = n.get();
        if uses >= REUSE {
            let t = Instant::now();
            n.set((t, 1));
            t
        } else {
            n.set((t, uses + 1));
            t
        }
    })
}

/// Milliseconds since `since`, by the cached clock.
pub(crate) fn ms_since(since: Instant) -> u64 {
    u64::try_from(now().saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
}

/// A reusable deadline.
#[derive(Default)]
pub(crate) struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

impl Timer {
    /// Runs `fut`, giving up after `limit` if it has to wait; `None` on timeout.
    pub(crate) async fn run<F: Future>(&mut self, limit: Duration, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut armed = false;
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            if !armed {
                // a deadline is worth a real clock read (the cached one may be a few uses old)
                let deadline = Instant::now() + limit;
                match self.sleep.as_mut() {
                    Some(s) => s.as_mut().reset(deadline),
                    None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                armed = true;
            }
            let Some(sleep) = self.sleep.as_mut() else { return Poll::Pending };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Polls the deadline for a poll-based reader: arms it on the first pending poll of a
    /// wait and reports whether it expired.
    pub(crate) fn poll_expired(
        &mut self,
        limit: Duration,
        armed: &mut bool,
        cx: &mut std::task::Context<'_>,
    ) -> bool {
        if !*armed {
            let deadline = Instant::now() + limit;
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            *armed = true;
        }
        self.sleep.as_mut().is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn immediate_work_needs_no_timer_and_waits_time_out() {
        let mut t = Timer::default();
        assert_eq!(t.run(Duration::from_secs(1), async { 5 }).await, Some(5));
        assert!(t.sleep.is_none(), "nothing waited, nothing armed");
        let never = std::future::pending::<()>();
        assert_eq!(t.run(Duration::from_secs(1), never).await, None);
        // the timer is reused, with a fresh deadline
        let soon = tokio::time::sleep(Duration::from_millis(10));
        assert_eq!(t.run(Duration::from_secs(1), soon).await, Some(()));
    }
}
