//! Keeping a formed cluster healthy for years: defragmentation one member at a time,
//! recovery from the NOSPACE alarm, and the alarms themselves.

pub mod alarm;
pub mod defrag;
pub mod on_member;

use crate::cluster::{Cluster, ClusterError, EndpointStatus, MemberInfo, TlsFiles};
use std::time::Duration;

/// One voter as a maintenance run sees it: reached, healthy, and what it says of itself.
pub struct Voter {
    pub member: MemberInfo,
    /// A connection to this member alone, with calls allowed the run's timeout.
    pub conn: Cluster,
    pub status: EndpointStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("{name} is a learner; finish its join (or remove it) before maintenance. Nothing was changed")]
    Learner { name: String },
    #[error("{name} ({endpoint}) is not healthy: {cause}. Nothing was changed; repair it first (etcdadm status shows the cluster)")]
    Unhealthy { name: String, endpoint: String, cause: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Every member, each reached on its own and healthy (a leader, a linearizable read): else
/// an error that names the first member that is not. Learners are refused.
pub async fn survey(
    members: &[MemberInfo],
    tls: &TlsFiles,
    call_timeout: Duration,
) -> Result<Vec<Voter>, SurveyError> {
    if let Some(l) = members.iter().find(|m| m.is_learner) {
        return Err(SurveyError::Learner { name: l.name.clone() });
    }
    let mut voters = Vec::new();
    for m in members {
        let name = if m.name.is_empty() { crate::cluster::format_id(m.id) } else { m.name.clone() };
        let endpoint = m.client_urls.first().cloned().unwrap_or_default();
        let unhealthy = |cause: String| SurveyError::Unhealthy {
            name: name.clone(),
            endpoint: endpoint.clone(),
            cause,
        };
        if !m.started() {
            return Err(unhealthy("it has never started".into()));
        }
        let conn = Cluster::connect_for(&endpoint, tls, call_timeout)
            .await
            .map_err(|e| unhealthy(e.to_string()))?;
        conn.check_health().await.map_err(|e| unhealthy(e.to_string()))?;
        let status = conn.status().await.map_err(|e| unhealthy(e.to_string()))?;
        voters.push(Voter { member: m.clone(), conn, status });
    }
    Ok(voters)
}
