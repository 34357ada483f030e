//! A counting gate for the futures of one task: at most `n` hold a slot at once, the others
//! wait their turn. An upload uses it to send at most [`super::Settings::pipeline`] blocks to
//! holders at once while more are being walked for (`place_blocks`).
//!
//! Built from `futures`' channel and lock alone (the peer has no runtime with a semaphore
//! in the browser): the free slots are tokens in a bounded channel, taken one waiter at a
//! time and sent back when a [`Slot`] drops.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{channel::mpsc, lock::Mutex, StreamExt};

/// `n` slots, shared by reference among the futures that take them.
pub(super) struct Slots {
    free: Mutex<mpsc::Receiver<()>>,
    give_back: mpsc::Sender<()>,
    closed: AtomicBool,
}

/// A slot held until dropped.
pub(super) struct Slot<'a>(&'a Slots);

impl Slots {
    /// `n` free slots (at least one).
    pub(super) fn new(n: usize) -> Self {
        let n = n.max(1);
        let (mut give_back, free) = mpsc::channel(n);
        for _ in 0..n {
            // Room for `n` tokens and one more for each sender: never full here.
            let _ = give_back.try_send(());
        }
        Self {
            free: Mutex::new(free),
            give_back,
            closed: AtomicBool::new(false),
        }
    }

    /// Waits for a free slot (waiters are served one at a time, in the order the lock hands
    /// itself on); `None` once [`Slots::close`] was called, before or while waiting.
    pub(super) async fn take(&self) -> Option<Slot<'_>> {
        let mut free = self.free.lock().await;
        // The sender lives in `self`, so the channel never ends while a slot can be taken.
        let _ = free.next().await;
        let slot = Slot(self);
        (!self.closed.load(Ordering::Relaxed)).then_some(slot)
    }

    /// No slot is given from now on: an upload that failed or was cancelled sends no more
    /// blocks (those already sending finish, so every block that reached a holder is known).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // At most `n` tokens are ever out, so there is room for this one.
        let _ = self.0.give_back.clone().try_send(());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::FutureExt;

    #[test]
    fn no_more_than_n_hold_a_slot_and_a_dropped_one_lets_the_next_in() {
        futures::executor::block_on(async {
            let slots = Slots::new(2);
            let one = slots.take().await.unwrap();
            let two = slots.take().await.unwrap();
            let mut third = Box::pin(slots.take());
            assert!((&mut third).now_or_never().is_none(), "a third slot of 2");
            drop(one);
            let three = third.await.unwrap();
            assert!(slots.take().now_or_never().is_none());
            drop((two, three));
            // All free again, many times over: tokens are not lost.
            for _ in 0..10 {
                let (a, b) = (slots.take().await, slots.take().await);
                assert!(a.is_some() && b.is_some());
            }
            // Closed: a waiter and every later taker get none.
            let held = slots.take().await.unwrap();
            let _other = slots.take().await.unwrap();
            let mut waiting = Box::pin(slots.take());
            assert!((&mut waiting).now_or_never().is_none());
            slots.close();
            drop(held);
            assert!(waiting.await.is_none());
            assert!(slots.take().await.is_none());
        });
    }
}
