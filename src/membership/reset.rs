//! Resetting this machine (`etcdadm reset`): remove its member from the cluster (only while
//! the rest keeps quorum), then stop etcd and remove what etcdadm installed. The CA stays
//! unless asked; etcd's data directory is moved aside, never deleted.

use super::error::{MembershipError, Result};
use super::remove::leave_cluster;
use crate::config::Config;
use crate::fsutil::remove_file_if_exists;
use crate::member::LocalMember;
use crate::service::Systemctl;
use crate::state::State;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// What `reset` was asked for besides the member's own state.
pub struct Request {
    /// Leave the cluster's member list alone.
    pub skip_remove_member: bool,
    /// Uninstall even when the member cannot be removed safely.
    pub force: bool,
    /// Remove the CA certificate and key too.
    pub remove_ca: bool,
}

/// What a reset did.
pub struct Outcome {
    /// The member's name.
    pub name: String,
    /// Where its data directory was moved (`<data-dir>.reset-<UTC stamp>`); `None` when
    /// there was none, or it was empty.
    pub data_kept: Option<PathBuf>,
}

/// Resets the member recorded in `state`.
pub async fn reset(state: &State, req: &Request) -> Result<Outcome> {
    let c = state.config.clone();
    let m = state.member()?;

    if !req.skip_remove_member {
        leave_cluster(&c, &m, state, req.force).await?;
    }
    let data_kept = uninstall(&c, &m, req.remove_ca)?;
    Ok(Outcome { name: m.name, data_kept })
}

/// Stops etcd and removes what etcdadm installed; returns where the data directory went.
fn uninstall(c: &Config, m: &LocalMember, remove_ca: bool) -> Result<Option<PathBuf>> {
    let unit = c.unit_name();
    if remove_file_if_exists(&c.pod_manifest())
        .map_err(crate::fsutil::on_file("cannot remove", c.pod_manifest()))?
    {
        info!(manifest = %c.pod_manifest().display(), "removed the static pod manifest; the kubelet stops etcd");
    }
    if c.init_system == crate::config::InitSystem::Systemd && c.unit_file.exists() {
        Systemctl::stop(&unit)?;
        if let Err(e) = Systemctl::disable(&unit) {
            warn!(error = %e, "cannot disable the unit");
        }
    }
    let timers = c.timer_units();
    for timer in crate::config::TIMERS {
        if timers.iter().any(|f| f.ends_with(timer) && f.exists()) {
            if let Err(e) = Systemctl::disable_now(timer) {
                warn!(error = %e, %timer, "cannot disable the timer");
            }
        }
    }
    let mut files = timers.to_vec();
    files.extend([
        c.unit_file.to_path_buf(),
        c.env_file.to_path_buf(),
        c.etcdctl_env_file.to_path_buf(),
        c.install_dir.join("etcdctl.sh"),
        c.install_dir.join("etcd"),
        c.install_dir.join("etcdctl"),
        c.install_dir.join("etcdutl"),
    ]);
    files.extend(m.pki.member_files().into_iter().cloned());
    if remove_ca {
        files.extend([m.pki.ca_cert.clone(), m.pki.ca_key.clone()]);
    }
    for f in &files {
        if remove_file_if_exists(f).map_err(crate::fsutil::on_file("cannot remove", f))? {
            info!(file = %f.display(), "removed");
        }
    }
    let wrapper = c.install_dir.join("etcdctl.sh");
    crate::phases::unlink_etcdctl(std::path::Path::new(crate::phases::ETCDCTL_LINK), &wrapper)?;
    // The generations behind the certificate links (`pair_files`).
    for (cert, key) in m.pki.member_pairs() {
        crate::pair_files::remove_pair(cert, key)
            .map_err(crate::fsutil::on_file("cannot remove the certificate pair of", cert))?;
    }
    // Binaries kept beside the live ones by `etcdadm upgrade` (etcd-v<V>/).
    for dir in crate::release::swap::prune(&c.install_dir, &[])? {
        info!(dir = %dir.display(), "removed");
    }
    // Directories etcdadm created go too once empty (a shared one like /usr/local/bin stays).
    for dir in [
        &c.install_dir.to_path_buf(),
        &m.pki.ca_cert.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    ] {
        if std::fs::remove_dir(dir).is_ok() {
            info!(dir = %dir.display(), "removed empty directory");
        }
    }
    Systemctl::daemon_reload()?;
    let data_kept = move_data_aside(&c.data_dir)?;
    remove_file_if_exists(&c.state_file)
        .map_err(crate::fsutil::on_file("cannot remove", c.state_file.to_path_buf()))?;
    Ok(data_kept)
}

/// Moves the data directory to `<data-dir>.reset-<UTC stamp>` (one rename, synced): the
/// member leaves, its data stays until the operator deletes it. An empty one is removed.
fn move_data_aside(data_dir: &Path) -> Result<Option<PathBuf>> {
    let mut entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(crate::fsutil::on_file("cannot read", data_dir.to_path_buf())(e).into())
        }
    };
    if entries.next().is_none() {
        std::fs::remove_dir(data_dir)
            .map_err(crate::fsutil::on_file("cannot remove the empty", data_dir.to_path_buf()))?;
        info!(dir = %data_dir.display(), "removed the empty data directory");
        return Ok(None);
    }
    let stamp = crate::fsutil::utc_stamp(time::OffsetDateTime::now_utc());
    let aside = crate::fsutil::aside_path(data_dir, "reset", &stamp);
    crate::fsutil::rename_synced(data_dir, &aside).map_err(|e| {
        MembershipError::Refused(format!(
            "cannot move etcd's data directory {} aside to {} ({e}); etcd is stopped and the rest is uninstalled. Move the directory away by hand (a mount point cannot be renamed: unmount it, or move its contents), then run reset again; etcdadm never deletes it",
            data_dir.display(),
            aside.display()
        ))
    })?;
    info!(from = %data_dir.display(), to = %aside.display(), "moved the data directory aside (etcdadm never deletes etcd data)");
    Ok(Some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_is_renamed_aside_with_its_files_and_none_is_left_at_the_old_path() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("etcd");
        std::fs::create_dir_all(data.join("member/snap")).unwrap();
        std::fs::write(data.join("member/snap/db"), b"bolt").unwrap();
        let kept = move_data_aside(&data).unwrap().expect("moved aside");
        assert!(!data.exists(), "{} still exists", data.display());
        let name = kept.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("etcd.reset-") && name.ends_with('Z'), "{name}");
        assert_eq!(std::fs::read(kept.join("member/snap/db")).unwrap(), b"bolt");
        // a second reset in the same second gets a free name, never the first one's
        std::fs::create_dir_all(data.join("member")).unwrap();
        let again = move_data_aside(&data).unwrap().unwrap();
        assert_ne!(again, kept);
        assert!(kept.join("member/snap/db").exists());
    }

    #[test]
    fn an_empty_data_directory_is_removed_and_an_absent_one_is_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("etcd");
        std::fs::create_dir(&data).unwrap();
        assert_eq!(move_data_aside(&data).unwrap(), None);
        assert!(!data.exists());
        assert_eq!(move_data_aside(&data).unwrap(), None);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing left beside it");
    }
}
