//! Promoting a learner to a voting member once it has caught up with the leader.

use super::error::{MembershipError, Result};
use crate::cluster::{format_id, poll_until, Cluster};
use std::time::Duration;
use tracing::info;

/// Promotes learner `id` through `cl`, retrying until `deadline` while it catches up.
pub async fn promote_when_caught_up(cl: &Cluster, id: u64, deadline: Duration) -> Result<()> {
    poll_until("promoting this learner once it has caught up", deadline, || cl.promote(id))
        .await
        .map_err(MembershipError::NotCaughtUp)?;
    info!(id = %format_id(id), "promoted to voting member");
    Ok(())
}
