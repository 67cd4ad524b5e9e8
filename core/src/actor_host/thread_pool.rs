//! An elastic thread pool for synchronous actor methods.
//!
//! Actors are many (a node hosts tens of thousands) and mostly idle, so they share threads. A
//! method may block (in `raya::get`, say) for as long as it likes: when no thread is free a new
//! one starts, up to a bound; threads idle for a while exit.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

struct Inner {
    state: Mutex<State>,
    cv: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
}

/// The pool (cloning shares it).
#[derive(Clone)]
pub(crate) struct ActorThreadPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ActorThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorThreadPool")
            .field("max_threads", &self.inner.max_threads)
            .finish_non_exhaustive()
    }
}

impl ActorThreadPool {
    pub(crate) fn new(max_threads: usize, idle_timeout: Duration) -> Self {
        ActorThreadPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                }),
                cv: Condvar::new(),
                max_threads: max_threads.max(1),
                idle_timeout,
            }),
        }
    }

    /// Runs `job` on a pool thread.
    pub(crate) fn execute(&self, job: impl FnOnce() + Send + 'static) {
        let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        st.jobs.push_back(Box::new(job));
        // Idle threads that were notified but have not yet taken a job still count as idle:
        // start a thread whenever queued jobs outnumber them.
        if st.idle >= st.jobs.len() {
            drop(st);
            self.inner.cv.notify_one();
        } else if st.threads < self.inner.max_threads {
            st.threads += 1;
            let n = st.threads;
            drop(st);
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name(format!("raya-actor-{n}"))
                .spawn(move || run(inner));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an actor thread");
                self.inner
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .threads -= 1;
            }
        } else if st.jobs.len() == 1 {
            tracing::warn!(
                max = self.inner.max_threads,
                "every actor thread is busy: calls wait for one"
            );
        }
    }

    /// Lets idle threads exit; queued jobs still run.
    pub(crate) fn shutdown(&self) {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shutdown = true;
        self.inner.cv.notify_all();
    }
}

fn run(inner: Arc<Inner>) {
    let mut st = inner.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("an actor thread job panicked outside the method guard");
            }
            st = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (guard, timeout) = inner
            .cv
            .wait_timeout(st, inner.idle_timeout)
            .unwrap_or_else(|p| p.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            break;
        }
    }
    st.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn blocked_jobs_do_not_starve_others() {
        let pool = ActorThreadPool::new(8, Duration::from_millis(100));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (done_tx, done_rx) = mpsc::channel();
        // Four jobs block until released; a fifth must still run.
        for _ in 0..4 {
            let rx = Arc::clone(&release_rx);
            pool.execute(move || {
                let _ = rx.lock().unwrap().recv();
            });
        }
        let tx = done_tx.clone();
        pool.execute(move || tx.send(5).unwrap());
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 5);
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        pool.shutdown();
    }

    #[test]
    fn jobs_queued_together_each_get_a_thread() {
        // Warm one idle thread, then queue four jobs at once that all wait for each other.
        let pool = ActorThreadPool::new(8, Duration::from_secs(5));
        let (tx, rx) = mpsc::channel();
        pool.execute(move || tx.send(()).unwrap());
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..4 {
            let b = Arc::clone(&barrier);
            let tx = done_tx.clone();
            pool.execute(move || {
                b.wait();
                tx.send(()).unwrap();
            });
        }
        for _ in 0..4 {
            done_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("all four jobs ran at once");
        }
        pool.shutdown();
    }
}
