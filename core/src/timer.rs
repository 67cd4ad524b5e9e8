//! One thread that wakes async waits when their timeouts expire.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(Instant, u64)>>>,
    wakers: Mutex<std::collections::HashMap<u64, Waker>>,
    cv: Condvar,
    next: std::sync::atomic::AtomicU64,
}

fn timers() -> &'static Timers {
    static T: OnceLock<&'static Timers> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static Timers = Box::leak(Box::new(Timers {
            heap: Mutex::new(BinaryHeap::new()),
            wakers: Mutex::new(Default::default()),
            cv: Condvar::new(),
            next: std::sync::atomic::AtomicU64::new(1),
        }));
        let spawned = std::thread::Builder::new()
            .name("raya-timer".into())
            .spawn(move || run(t));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the timer thread: async timeouts will not fire");
        }
        t
    })
}

fn run(t: &'static Timers) {
    let mut heap = t.heap.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = heap.peek().copied() {
            if at > now {
                break;
            }
            heap.pop();
            if let Some(w) = t
                .wakers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id)
            {
                w.wake();
            }
        }
        heap = match heap.peek() {
            Some(Reverse((at, _))) => {
                let wait = at.saturating_duration_since(Instant::now());
                t.cv.wait_timeout(heap, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => t.cv.wait(heap).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// A registered timeout; dropping it cancels the wake-up.
#[derive(Debug)]
pub(crate) struct Timeout(u64);

impl Drop for Timeout {
    fn drop(&mut self) {
        timers()
            .wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// Wakes `waker` at `at` (unless the returned guard is dropped first).
pub(crate) fn wake_at(at: Instant, waker: Waker) -> Timeout {
    let t = timers();
    let id = t.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    t.wakers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, waker);
    t.heap
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Reverse((at, id)));
    t.cv.notify_one();
    Timeout(id)
}

/// Waits `d`, on whatever runtime polls it (woken by the timer thread).
pub(crate) fn sleep(d: std::time::Duration) -> Sleep {
    Sleep {
        at: Instant::now() + d,
        timer: None,
    }
}

/// The future of [`sleep`].
pub(crate) struct Sleep {
    at: Instant,
    /// The wake-up asked for at the last poll (dropping it cancels it).
    timer: Option<Timeout>,
}

impl std::future::Future for Sleep {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if Instant::now() >= self.at {
            self.timer = None;
            return std::task::Poll::Ready(());
        }
        let at = self.at;
        self.timer = Some(wake_at(at, cx.waker().clone()));
        std::task::Poll::Pending
    }
}
