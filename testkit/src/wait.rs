//! Bounded waits: every wait of a test ends on an event or fails after a guard time;
//! none is a bare sleep for readiness.

use std::time::Duration;

/// The default bound on a wait (a hung test fails; never a timing assertion).
pub const GUARD: Duration = Duration::from_secs(60);

/// Waits (at most [`GUARD`]) until `f` holds, re-checking on a short interval: only to
/// observe other processes from outside (the sandbox, a daemon's state), never for
/// readiness of our own processes. Panics naming `what` when it gives up.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(GUARD, what, f).await;
}

/// [`eventually`] with another bound.
pub async fn eventually_within<F, Fut>(guard: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let r = tokio::time::timeout(guard, async {
        loop {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "gave up waiting for {what}");
}
