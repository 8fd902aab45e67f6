//! Retrying operations whose errors say they are transient, with exponential backoff, full
//! jitter and a deadline.

use crate::cluster::ClusterError;
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::time::Duration;
use std::sync::Mutex;

/// The last error a retry loop waited on, for errors that end the wait from outside (a
/// deadline around the whole operation).
static LAST_RETRIED: Mutex<Option<String>> = Mutex::new(None);

pub fn last_retried_error() -> Option<String> {
    LAST_RETRIED.lock().ok().and_then(|l| l.clone())
}

fn backoff(deadline: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(deadline))
}

/// Retries `op` while `retryable` says so, until `deadline` has been spent waiting.
pub async fn retry_while<T, E, F, Fut>(what: &str, deadline: Duration, retryable: fn(&E) -> bool, op: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    op.retry(backoff(deadline))
        .when(retryable)
        .notify(|e, wait| {
            if let Ok(mut l) = LAST_RETRIED.lock() {
                *l = Some(format!("{what}: {e}"));
            }
            // sets the unit's status line under systemd, and logs it
            crate::notify::status(&format!("{what}: retrying in {:.1}s: {e}", wait.as_secs_f64()));
        })
        .await
}

/// Retries an etcd operation on the errors etcd asks callers to retry.
pub async fn until_deadline<T, F, Fut>(what: &str, deadline: Duration, op: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    retry_while(what, deadline, ClusterError::is_retryable, op).await
}
