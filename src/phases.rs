//! The steps `init` and `join` share, each idempotent: running one again on a machine where
//! it already ran changes nothing.

use crate::cluster::{Cluster, TlsFiles};
use crate::config::{Config, InitSystem};
use crate::fsutil::{write_if_changed, MODE_EXEC, MODE_PUBLIC};
use crate::member::LocalMember;
use crate::pki::{self, Ca};
use crate::release::{Release, Unpacked};
use crate::service::{self, ClusterBootstrap, Systemctl};
use anyhow::{Context, Result};
use tracing::{info, warn};

/// Downloads (or reuses the verified cache) and unpacks the pinned etcd release, changing
/// nothing on the system yet.
pub async fn fetch_release(c: &Config) -> Result<Unpacked> {
    let r = Release::from_config(c);
    let archive = r.ensure_cached().await?;
    Ok(Unpacked::new(&r, &archive)?)
}

/// Installs the unpacked release's binaries.
pub fn install(c: &Config, release: &Unpacked) -> Result<()> {
    Ok(release.install(&c.install_dir)?)
}

/// Commits the installed binaries (written unsynced, so etcd could start sooner) to disk,
/// before the state file records a finished member.
pub fn make_durable(c: &Config) -> Result<()> {
    crate::fsutil::sync_filesystem(&c.install_dir)
        .with_context(|| format!("cannot sync {} to disk", c.install_dir.display()))
}

/// Issues (or keeps) the member's certificates from the CA.
pub fn certificates(c: &Config, m: &LocalMember, ca: &Ca) -> Result<()> {
    for (spec, cert, key) in pki::member_certs(m, c) {
        ca.ensure_cert(&spec, &cert, &key, pki::Lifetime::of(c))?;
    }
    Ok(())
}

/// Writes the etcd environment file and the unit, or (kubelet mode) the static pod manifest.
pub fn configure(c: &Config, m: &LocalMember, b: &ClusterBootstrap) -> Result<()> {
    if c.init_system == InitSystem::Kubelet {
        write_files(&[(&c.pod_manifest(), service::render_pod_manifest(m, c, b), MODE_PUBLIC)])?;
        return Ok(());
    }
    let etcdadm = std::env::current_exe().context("cannot tell where the etcdadm binary is")?;
    let [renew_service, renew_timer, backup_service, backup_timer, defrag_service, defrag_timer] =
        c.timer_units();
    let changed = write_files(&[
        (&c.env_file.to_path_buf(), service::render_env(m, c, b), MODE_PUBLIC),
        (&c.unit_file.to_path_buf(), service::render_unit(c), MODE_PUBLIC),
        (&renew_service, service::render_renew_service(c, &etcdadm), MODE_PUBLIC),
        (&renew_timer, service::render_renew_timer(), MODE_PUBLIC),
        (&backup_service, service::render_backup_service(c, &etcdadm), MODE_PUBLIC),
        (&backup_timer, service::render_backup_timer(c), MODE_PUBLIC),
        (&defrag_service, service::render_defrag_service(c, &etcdadm), MODE_PUBLIC),
        (&defrag_timer, service::render_defrag_timer(c), MODE_PUBLIC),
    ])?;
    if changed {
        Systemctl::daemon_reload()?;
    }
    Ok(())
}

/// Where `etcdctl` for root points to the wrapper: /usr/local/bin is on root's PATH in a
/// login shell on Debian and in sudo's secure_path, unlike /opt/bin.
pub const ETCDCTL_LINK: &str = "/usr/local/bin/etcdctl";

/// Writes the etcdctl environment file and the `etcdctl.sh` wrapper, and links `etcdctl` on
/// root's PATH to the wrapper so `etcdctl member list` just works.
pub fn etcdctl(c: &Config, m: &LocalMember) -> Result<()> {
    let wrapper = c.install_dir.join("etcdctl.sh");
    write_files(&[
        (&c.etcdctl_env_file.to_path_buf(), service::render_etcdctl_env(m), MODE_PUBLIC),
        (&wrapper, service::render_etcdctl_wrapper(c), MODE_EXEC),
    ])?;
    link_etcdctl(std::path::Path::new(ETCDCTL_LINK), &wrapper);
    Ok(())
}

/// Links `link` to the wrapper unless something else is there already (a user's etcdctl is
/// left alone) or the link would replace the live binary (install-dir is the link's
/// directory). Failing to link is not fatal: on a read-only /usr (Flatcar) the wrapper stays
/// where it is and the warning names it.
pub fn link_etcdctl(link: &std::path::Path, wrapper: &std::path::Path) {
    if link.parent() == wrapper.parent() {
        return;
    }
    let result = match std::fs::read_link(link) {
        Ok(to) if to == wrapper => return,
        Ok(to) => Err(format!("it is a link to {}, left alone", to.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => link
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::os::unix::fs::symlink(wrapper, link))
            .map_err(|e| e.to_string()),
        Err(_) if link.symlink_metadata().is_ok() => Err("it exists, left alone".into()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => info!(link = %link.display(), to = %wrapper.display(), "linked etcdctl"),
        Err(why) => warn!(
            link = %link.display(),
            "cannot link etcdctl to the wrapper ({why}); run {} instead",
            wrapper.display()
        ),
    }
}

/// Removes the link `link_etcdctl` made, and only that.
pub fn unlink_etcdctl(link: &std::path::Path, wrapper: &std::path::Path) -> Result<()> {
    if std::fs::read_link(link).is_ok_and(|to| to == wrapper) {
        std::fs::remove_file(link).with_context(|| format!("cannot remove {}", link.display()))?;
        info!(file = %link.display(), "removed");
    }
    Ok(())
}

/// Writes each file unless it already has that content and mode; returns whether any changed.
fn write_files(files: &[(&std::path::PathBuf, String, u32)]) -> Result<bool> {
    let mut changed = false;
    for (path, text, mode) in files {
        if write_if_changed(path, text.as_bytes(), *mode)
            .with_context(|| format!("cannot write {}", path.display()))?
        {
            info!(file = %path.display(), "wrote");
            changed = true;
        }
    }
    Ok(changed)
}

/// Enables etcd and starts it unless it runs already. In kubelet mode the kubelet starts the
/// static pod once its manifest is in place.
pub fn start(c: &Config) -> Result<()> {
    if c.init_system == InitSystem::Kubelet {
        info!(manifest = %c.pod_manifest().display(), "the kubelet starts etcd from its static pod manifest");
        return Ok(());
    }
    // One enable and one start for etcd and the timers (`configure` reloaded systemd after
    // writing them); starting a unit that runs already changes nothing.
    let unit = c.unit_name();
    let mut units = vec![unit.as_str()];
    units.extend(crate::config::TIMERS);
    Systemctl::enable_no_reload(&units)?;
    info!(%unit, "starting etcd");
    Systemctl::start_no_block(&units)?;
    Ok(())
}

/// Waits until the local member answers health checks; returns a connection to it.
pub async fn wait_healthy(c: &Config, m: &LocalMember) -> Result<Cluster> {
    let tls = TlsFiles::client(&m.pki);
    let endpoint = m.local_endpoint.clone();
    let result = crate::cluster::until_deadline(
        "waiting for etcd to become healthy",
        c.timeout(),
        || async {
            let cl = Cluster::connect(&endpoint, &tls).await?;
            cl.check_health().await?;
            Ok(cl)
        },
    )
    .await;
    result.with_context(|| {
        format!(
            "etcd on {endpoint} did not become healthy within {}s ({}); see {}",
            c.timeout_seconds,
            service_state(c),
            match c.init_system {
                InitSystem::Systemd => format!("`journalctl -u {}`", c.unit_name()),
                InitSystem::Kubelet =>
                    "the kubelet's log and `crictl logs` of the etcd container".into(),
            }
        )
    })
}

/// Who runs etcd and in what state, for messages and `info`.
pub fn service_state(c: &Config) -> String {
    match c.init_system {
        InitSystem::Systemd => {
            format!("unit {} is {}", c.unit_name(), Systemctl::state(&c.unit_name()))
        }
        InitSystem::Kubelet => format!(
            "static pod {} {}",
            c.pod_manifest().display(),
            if c.pod_manifest().exists() { "present" } else { "missing" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{link_etcdctl, unlink_etcdctl};
    use std::path::Path;

    #[test]
    fn etcdctl_link_points_to_the_wrapper_and_unlink_removes_it() {
        let d = tempfile::tempdir().unwrap();
        let (link, wrapper) =
            (d.path().join("usr/local/bin/etcdctl"), d.path().join("opt/etcdctl.sh"));
        link_etcdctl(&link, &wrapper);
        assert_eq!(std::fs::read_link(&link).unwrap(), wrapper);
        link_etcdctl(&link, &wrapper);
        assert_eq!(std::fs::read_link(&link).unwrap(), wrapper);
        unlink_etcdctl(&link, &wrapper).unwrap();
        assert!(link.symlink_metadata().is_err(), "link still there");
        unlink_etcdctl(&link, &wrapper).unwrap();
    }

    #[test]
    fn an_etcdctl_that_etcdadm_did_not_link_is_neither_replaced_nor_removed() {
        let d = tempfile::tempdir().unwrap();
        let wrapper = d.path().join("etcdctl.sh");
        let file = d.path().join("bin/etcdctl");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "user's etcdctl").unwrap();
        link_etcdctl(&file, &wrapper);
        unlink_etcdctl(&file, &wrapper).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "user's etcdctl");
        let other = d.path().join("other");
        std::os::unix::fs::symlink("/elsewhere/etcdctl", &other).unwrap();
        link_etcdctl(&other, &wrapper);
        unlink_etcdctl(&other, &wrapper).unwrap();
        assert_eq!(std::fs::read_link(&other).unwrap(), Path::new("/elsewhere/etcdctl"));
    }

    #[test]
    fn no_etcdctl_link_over_the_binary_when_install_dir_is_the_links_directory() {
        let d = tempfile::tempdir().unwrap();
        let (link, wrapper) = (d.path().join("etcdctl"), d.path().join("etcdctl.sh"));
        link_etcdctl(&link, &wrapper);
        assert!(link.symlink_metadata().is_err(), "linked over the binary's path");
    }
}
