//! Retrying etcd operations that etcd itself asks callers to retry (see
//! `ClusterError::is_retryable`), with exponential backoff, full jitter and a deadline.

use crate::cluster::ClusterError;
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::time::Duration;
use tracing::info;

pub async fn until_deadline<T, F, Fut>(what: &str, deadline: Duration, op: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(deadline));
    op.retry(backoff)
        .when(ClusterError::is_retryable)
        .notify(|e, wait| info!(error = %e, retry_in = ?wait, "{what}: retrying"))
        .await
}
