//! The cluster's alarms: listed with each member's name, and disarmed only when that is safe
//! (a NOSPACE alarm disarmed while a database is still above the quota comes straight back).

use crate::cluster::{format_id, Cluster, ClusterError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Alarm {
    #[serde(skip)]
    pub id: u64,
    /// The member's id in hex, as etcdctl prints it.
    pub member: String,
    pub name: String,
    pub alarm: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("{name}'s database is {size} bytes, not below the quota of {quota} bytes: the NOSPACE alarm would come straight back. Nothing was changed; run `etcdadm defrag`, which compacts, defragments and then disarms")]
    StillFull { name: String, size: i64, quota: u64 },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The active alarms, each with its member's name.
pub async fn list(cl: &Cluster) -> Result<Vec<Alarm>, ClusterError> {
    let members = cl.members().await?;
    Ok(cl
        .alarms()
        .await?
        .into_iter()
        .map(|(id, alarm)| Alarm {
            id,
            member: format_id(id),
            name: members.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_default(),
            alarm,
        })
        .collect())
}

/// Disarms every active alarm; a NOSPACE alarm only when the member's database (as it says
/// itself) is below `quota` bytes. Returns what was disarmed.
pub async fn disarm(
    cl: &Cluster,
    tls: &crate::cluster::TlsFiles,
    quota: u64,
) -> Result<Vec<Alarm>, AlarmError> {
    let active = list(cl).await?;
    let members = cl.members().await?;
    for a in active.iter().filter(|a| a.alarm == "NOSPACE") {
        let Some(m) = members.iter().find(|m| m.id == a.id) else { continue };
        let size = Cluster::connect_any(&m.client_urls, tls).await?.status().await?.db_size;
        if size.max(0) as u64 >= quota {
            return Err(AlarmError::StillFull { name: a.name.clone(), size, quota });
        }
    }
    for a in &active {
        cl.disarm(a.id, &a.alarm).await?;
    }
    Ok(active)
}
