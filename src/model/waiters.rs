//! `Waiters`: callers waiting for something an actor will do later (a drain to finish, a
//! checkpoint to be written). Each gets a receiver; the actor wakes them all at once.

use tokio::sync::oneshot;

#[derive(Debug, Default)]
pub struct Waiters(Vec<oneshot::Sender<()>>);

impl Waiters {
    /// A receiver that resolves at the next [`Waiters::wake_all`] (or when these waiters are
    /// dropped: a waiter never hangs on an actor that is gone).
    pub fn wait(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0.push(tx);
        rx
    }

    pub fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            let _ = w.send(());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
