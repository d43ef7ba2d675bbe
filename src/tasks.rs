//! A call an actor waits for, run as a task of its own. An actix context polls every future
//! it holds each time anything wakes it (a message, a timer, any one response), so an actor
//! with dozens of AWS calls out at once (a LeaseManager renewing its leases) would poll each of
//! them again for each response: a few milliseconds of CPU per round of renewals, spent on
//! calls that are still waiting. Run as tasks of their own, each call is polled when its own
//! I/O wakes it, and the actor holds only cheap handles to them.

use std::future::Future;

use tokio_util::task::AbortOnDropHandle;

/// Runs `fut` as a task of its own on this thread (an arbiter's) and yields its output.
/// Dropping the returned future aborts the task, as dropping `fut` would have cancelled it,
/// and a panic in `fut` resumes in whoever polls the returned future, as if `fut` were polled
/// there.
pub fn own_task<F>(fut: F) -> impl Future<Output = F::Output> + 'static
where
    F: Future + 'static,
    F::Output: 'static,
{
    let handle = AbortOnDropHandle::new(actix_rt::spawn(fut));
    async move {
        match handle.await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled, and not by the handle (it is still here): the runtime is shutting
            // down, and this future goes with it.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_rt::test]
    async fn yields_the_output_and_dropping_it_aborts_the_task() {
        assert_eq!(own_task(async { 7 }).await, 7);

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = own_task(async move {
            let _tx = tx; // dropped when the task is
            std::future::pending::<()>().await
        });
        drop(waiting);
        let closed = tokio::time::timeout(Duration::from_secs(2), rx).await;
        assert!(matches!(closed, Ok(Err(_))), "the task was aborted: {closed:?}");
    }

    #[actix_rt::test]
    async fn a_panic_in_the_task_resumes_in_the_waiter() {
        let waiter = actix_rt::spawn(own_task(async { panic!("in the task") }));
        let e = waiter.await.expect_err("the waiter panicked");
        assert!(e.is_panic());
    }
}
