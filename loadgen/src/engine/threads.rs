//! The load's own threads: one single-threaded runtime per core (or `load.threads` of them), each
//! driving a fixed share of the users, as wrk's threads each drive their own connections. A user's
//! task, its connection and its timer stay on one thread for the whole run: no work stealing, no
//! wake-ups across cores, one epoll per thread. The bench measured this against tokio's multi-threaded scheduler (docs/bench.md).
//! The run's clock, observers, setup and live feed stay on the main runtime.

use std::future::Future;
use std::thread::JoinHandle as ThreadHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Tasks polled between two looks at epoll (tokio: 61).
const EVENT_INTERVAL: u32 = 256;

/// Where the users run; cloned into the run's context. Dropping it does not stop the threads.
#[derive(Clone, Debug)]
pub struct Spawner {
    handles: Vec<Handle>,
}

impl Spawner {
    /// Run `task` on the thread that owns user (or worker) `index`.
    pub fn spawn<F>(&self, index: usize, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[index % self.handles.len()].spawn(task)
    }

    /// How many load threads there are.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    pub fn handle(&self, index: usize) -> &Handle {
        &self.handles[index % self.handles.len()]
    }
}

/// The threads themselves, owned by the run; stopped (their remaining tasks dropped) when dropped.
pub struct LoadThreads {
    spawner: Spawner,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<ThreadHandle<()>>,
}

impl LoadThreads {
    /// `count` threads, or one per core the process may use.
    pub fn start(count: Option<usize>) -> std::io::Result<LoadThreads> {
        let n = count.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .event_interval(EVENT_INTERVAL)
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("stampede-load-{i}"))
                    .spawn(move || {
                        crate::record::bind_thread(i);
                        let _ = runtime.block_on(stopped);
                        // Dropping the runtime here drops the tasks still on it, on their own thread.
                    })?,
            );
        }
        Ok(LoadThreads {
            spawner: Spawner { handles },
            stops,
            threads,
        })
    }

    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }
}

impl Drop for LoadThreads {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_load_threads_and_stop_with_them() {
        let threads = LoadThreads::start(None).unwrap();
        let spawner = threads.spawner();
        let name = spawner
            .spawn(0, async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("stampede-load-0"));
        // A task still running when the threads stop is dropped, not leaked.
        let (tx, rx) = oneshot::channel::<()>();
        let _forever = spawner.spawn(1, async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        tokio::task::spawn_blocking(move || drop(threads)).await.unwrap();
        assert!(rx.await.is_err(), "the task was dropped with its thread");
    }

    #[tokio::test]
    async fn as_many_threads_as_asked() {
        let threads = LoadThreads::start(Some(3)).unwrap();
        let spawner = threads.spawner();
        assert_eq!(spawner.threads(), 3);
        let name = spawner
            .spawn(5, async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("stampede-load-2"), "user 5 of 3 threads");
        tokio::task::spawn_blocking(move || drop(threads)).await.unwrap();
    }
}
