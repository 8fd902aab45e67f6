//! What is already on this machine when `init` or `join` runs: nothing, a healthy member
//! (the re-run is a no-op), or an unfinished or broken member to complete or repair.

use super::error::{MembershipError, Result};
use crate::cluster::MemberInfo;
use crate::config::Config;
use crate::member::LocalMember;
use crate::state::{drift, Origin, Progress, State};
use tracing::info;

pub enum Existing {
    Fresh,
    HealthyMember,
    Resume(State),
    /// An unfinished member set up by the other command (state Installing), now continued by
    /// this one: an interrupted `init` becomes a join when a cluster runs by now, an
    /// interrupted join becomes an init when none does (spec/README.md, F1). The member list
    /// and the data-directory checks of the command that continues decide what is safe.
    TakeOver(State),
}

pub async fn check_existing(c: &Config, m: &LocalMember, origin: Origin) -> Result<Existing> {
    let Some(mut state) = State::load(&c.state_file)? else { return Ok(Existing::Fresh) };
    let take_over = state.origin != origin && state.progress == Progress::Installing;
    if state.origin != origin && !take_over {
        return Err(MembershipError::Refused(format!(
            "this machine already holds member {} set up by `etcdadm {}` (see {}); run `etcdadm reset` before `etcdadm {}`",
            state.config.name.as_deref().unwrap_or("?"), state.origin.as_str(), c.state_file.display(), origin.as_str()
        )));
    }
    let diff = drift(&state.config, c);
    if !diff.is_empty() || state.advertise_address != m.advertise {
        let mut lines: Vec<String> =
            diff.iter().map(|(k, a, b)| format!("{k}: {a} -> {b}")).collect();
        if state.advertise_address != m.advertise {
            lines
                .push(format!("advertise address: {} -> {}", state.advertise_address, m.advertise));
        }
        return Err(MembershipError::Refused(format!(
            "this machine already holds member {} with different settings ({}); nothing was changed. Re-run with the original settings, or run `etcdadm reset` first{}",
            state.config.name.as_deref().unwrap_or("?"),
            lines.join("; "),
            if diff.iter().any(|(k, _, _)| k == "version") { " (a version change is an upgrade, not a re-init)" } else { "" }
        )));
    }
    if take_over {
        info!(
            member = state.config.name.as_deref().unwrap_or("?"),
            from = state.origin.as_str(),
            to = origin.as_str(),
            "continuing an unfinished member"
        );
        state.origin = origin;
        return Ok(Existing::TakeOver(state));
    }
    if state.progress == Progress::Member && is_healthy_voter(m).await {
        return Ok(Existing::HealthyMember);
    }
    Ok(Existing::Resume(state))
}

/// Whether the local etcd answers health checks and lists itself as a started voter.
pub async fn is_healthy_voter(m: &LocalMember) -> bool {
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    let Ok(cl) = crate::cluster::Cluster::connect(&m.local_endpoint, &tls).await else {
        return false;
    };
    if cl.check_health().await.is_err() {
        return false;
    }
    matches!(cl.members().await, Ok(list) if list.iter().any(|x: &MemberInfo| x.peer_urls.contains(&m.peer_url) && x.started() && !x.is_learner))
}

/// Whether the data directory holds anything (data etcdadm must never overwrite).
pub(super) fn has_data(c: &Config) -> Result<bool> {
    Ok(crate::fsutil::dir_has_entries(&c.data_dir)
        .map_err(crate::fsutil::on_file("cannot read", c.data_dir.to_path_buf()))?)
}

/// The state file of a healthy member was there a moment ago and is gone now.
pub(super) fn vanished(c: &Config) -> impl FnOnce() -> MembershipError + '_ {
    || {
        MembershipError::Refused(format!(
            "{} vanished while this command ran; is another etcdadm running? Run again once it ended",
            c.state_file.display()
        ))
    }
}
