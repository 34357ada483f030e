//! Everything that differs between the browser and a native process apart from the swarm's
//! transports (those are in `net::swarm`): how tasks are spawned and shared. The rest
//! of the crate is the same on both. Depends on nothing else in the crate.

/// Runs a task in the background: on the page's event loop in the browser.
#[cfg(target_arch = "wasm32")]
pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(task);
}

/// Runs `task` as a task of its own and waits for its output (`None` if the task was
/// dropped). IndexedDB fires a transaction's `complete` event once, and rexie listens for it
/// only from the first poll of `done()`: a caller polled late, as a stream feeding a full
/// `buffer_unordered` is, can miss it and wait forever (a 128 MiB upload stalled at its
/// eighth block that way). A task of its own is polled as soon as it is woken, in the
/// microtask before the event; its output waits in a channel for however late the caller.
#[cfg(target_arch = "wasm32")]
pub(crate) async fn own_task<T: 'static>(
    task: impl std::future::Future<Output = T> + 'static,
) -> Option<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    spawn(async move {
        let _ = tx.send(task.await);
    });
    rx.await.ok()
}

/// Runs a task in the background: on the current tokio runtime natively.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(task);
}

/// Shared ownership across tasks: `Arc` natively (tasks may move between threads), `Rc` in the
/// browser (one thread; the IndexedDB handle is not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub type Shared<T> = std::sync::Arc<T>;
/// Shared ownership across tasks: `Rc` in the browser.
#[cfg(target_arch = "wasm32")]
pub type Shared<T> = std::rc::Rc<T>;

/// `Send` natively, where tasks may move between threads; nothing in the browser (one thread,
/// and the IndexedDB and WebRTC handles are not `Send`). For bounds that hold on both.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send> MaybeSend for T {}
/// `Send` natively; nothing in the browser.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSend for T {}

/// The wall clock, in seconds since the Unix epoch (0 if the clock is before it): the time
/// owners sign into warrants and leases, which other peers compare with their own clocks.
pub(crate) fn unix_secs() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
