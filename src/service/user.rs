//! The unprivileged `etcd` system user that runs etcd under systemd, and the ownership of
//! the files it needs.
//!
//! The user is created the systemd way: etcdadm writes a sysusers.d entry and runs
//! `systemd-sysusers` on it (an existing `etcd` user, e.g. from a distribution package, is
//! kept). Its uid and gid are then read from /etc/passwd by etcdadm itself: the static
//! binary never calls getpwnam, whose NSS modules differ between hosts.
//!
//! Ownership: the data directory (0700) and everything in it, and the server and peer keys
//! (0600), belong to `etcd`; the CA key stays root's (0600), as do the etcdctl and
//! kube-apiserver client keys: etcd needs only the CA certificate.

use std::os::unix::fs::{chown, lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::info;

/// The user (and group) etcd runs as.
pub const ETCD_USER: &str = "etcd";
/// The sysusers.d entry etcdadm writes for it.
pub const SYSUSERS_FILE: &str = "/etc/sysusers.d/etcdadm.conf";

/// A numeric uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

impl Ids {
    pub const ROOT: Ids = Ids { uid: 0, gid: 0 };
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot write {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("cannot run `systemd-sysusers {file}` to create the system user {user}: {cause}. etcd runs as {user}: install systemd-sysusers (part of systemd), or create the user yourself (e.g. `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {user}`), then run this again")]
    Sysusers { file: String, user: &'static str, cause: String },
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path} has no user {user} after `systemd-sysusers {file}` ran; create the system user {user} (e.g. `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {user}`), then run this again")]
    Missing { path: String, file: String, user: &'static str },
    #[error("cannot give {path} to {owner}: {cause}")]
    Chown { path: String, owner: String, cause: std::io::Error },
}

/// The sysusers.d entry: a system user `etcd` with a group of the same name, no login shell
/// and no home directory of its own.
pub fn render_sysusers() -> String {
    format!(
        "# Written by etcdadm: the system user etcd runs as (see systemd-sysusers(8)).\nu {ETCD_USER} - \"etcd key-value store (etcdadm)\" - -\n"
    )
}

/// Creates the `etcd` user if it does not exist (sysusers.d entry + `systemd-sysusers`) and
/// returns its ids, read from `/etc/passwd`.
pub fn ensure_user() -> Result<Ids, UserError> {
    ensure_user_in(Path::new(SYSUSERS_FILE), Path::new("/etc/passwd"))
}

fn ensure_user_in(sysusers: &Path, passwd: &Path) -> Result<Ids, UserError> {
    let write = |cause| UserError::Write { path: sysusers.display().to_string(), cause };
    if crate::fsutil::write_if_changed(
        sysusers,
        render_sysusers().as_bytes(),
        crate::fsutil::MODE_PUBLIC,
    )
    .map_err(write)?
    {
        info!(file = %sysusers.display(), "wrote");
    }
    let read = || {
        std::fs::read_to_string(passwd)
            .map_err(|cause| UserError::Read { path: passwd.display().to_string(), cause })
    };
    if let Some(ids) = lookup(&read()?, ETCD_USER) {
        return Ok(ids);
    }
    let sysusers_error = |cause: String| UserError::Sysusers {
        file: sysusers.display().to_string(),
        user: ETCD_USER,
        cause,
    };
    let out = crate::blocking::output(Command::new("systemd-sysusers").arg(sysusers))
        .map_err(|e| sysusers_error(e.to_string()))?;
    if !out.status.success() {
        return Err(sysusers_error(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let ids = lookup(&read()?, ETCD_USER).ok_or_else(|| UserError::Missing {
        path: passwd.display().to_string(),
        file: sysusers.display().to_string(),
        user: ETCD_USER,
    })?;
    info!(user = ETCD_USER, uid = ids.uid, gid = ids.gid, "created the system user etcd runs as");
    Ok(ids)
}

/// The uid and primary gid of `user` in the text of an /etc/passwd file.
pub fn lookup(passwd: &str, user: &str) -> Option<Ids> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0] != user {
            return None;
        }
        Some(Ids { uid: f[2].parse().ok()?, gid: f[3].parse().ok()? })
    })
}

/// Gives `path` (following a link: the pair files are links into their generation) to
/// `ids` with `mode`; returns whether anything changed.
pub fn own_file(path: &Path, ids: Ids, mode: u32) -> Result<bool, UserError> {
    let err = |cause| UserError::Chown {
        path: path.display().to_string(),
        owner: format!("{}:{}", ids.uid, ids.gid),
        cause,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    let mut changed = false;
    if (meta.uid(), meta.gid()) != (ids.uid, ids.gid) {
        chown(path, Some(ids.uid), Some(ids.gid)).map_err(err)?;
        changed = true;
    }
    if meta.permissions().mode() & 0o7777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
        changed = true;
    }
    Ok(changed)
}

/// Creates `dir` (mode 0700) if needed and gives it and everything below it to `ids`. Links
/// are changed themselves, never followed, so nothing outside `dir` changes owner. What
/// disappears meanwhile is skipped: an etcd that runs already renames and removes its own
/// temporary files (`member/wal.tmp` while it creates its WAL). Returns whether anything
/// changed.
pub fn own_tree(dir: &Path, ids: Ids) -> Result<bool, UserError> {
    let err = |path: &Path| {
        let (path, owner) = (path.display().to_string(), format!("{}:{}", ids.uid, ids.gid));
        move |cause| UserError::Chown { path, owner, cause }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut changed = own_file(dir, ids, 0o700)?;
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Err(e) if d != dir && gone(&e) => continue,
            entries => entries.map_err(err(&d))?,
        };
        for entry in entries {
            let path = entry.map_err(err(&d))?.path();
            let Some((was_changed, is_dir)) = own_entry(&path, ids).map_err(err(&path))? else {
                continue;
            };
            changed |= was_changed;
            if is_dir {
                todo.push(path);
            }
        }
    }
    Ok(changed)
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Gives `path` (not what a link points to) to `ids`: whether that changed it, and whether
/// it is a directory; None when it is gone.
fn own_entry(path: &Path, ids: Ids) -> std::io::Result<Option<(bool, bool)>> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if gone(&e) => return Ok(None),
        meta => meta?,
    };
    let mut changed = false;
    if (meta.uid(), meta.gid()) != (ids.uid, ids.gid) {
        match lchown(path, Some(ids.uid), Some(ids.gid)) {
            Err(e) if gone(&e) => return Ok(None),
            r => r?,
        }
        changed = true;
    }
    Ok(Some((changed, meta.is_dir())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_that_is_gone_is_skipped_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let me = Ids { uid: nix::unistd::getuid().as_raw(), gid: nix::unistd::getgid().as_raw() };
        assert_eq!(own_entry(&d.path().join("wal.tmp/.touch"), me).unwrap(), None);
        let file = d.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(own_entry(&file, me).unwrap(), Some((false, false)), "already its owner's");
        assert_eq!(own_entry(d.path(), me).unwrap(), Some((false, true)));
    }

    #[test]
    fn lookup_reads_uid_and_gid_of_the_named_user_only() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\netcdx:x:5:5::/:/bin/sh\netcd:x:998:997:etcd key-value store (etcdadm):/:/usr/sbin/nologin\n";
        assert_eq!(lookup(passwd, "etcd"), Some(Ids { uid: 998, gid: 997 }));
        assert_eq!(lookup(passwd, "nobody"), None);
        assert_eq!(lookup("etcd:x:notanumber:1::/:\n", "etcd"), None);
    }

    #[test]
    fn an_existing_user_is_used_without_running_sysusers() {
        let d = tempfile::tempdir().unwrap();
        let passwd = d.path().join("passwd");
        std::fs::write(&passwd, "etcd:x:123:456::/var/lib/etcd:/bin/false\n").unwrap();
        let conf = d.path().join("sysusers.d/etcdadm.conf");
        assert_eq!(ensure_user_in(&conf, &passwd).unwrap(), Ids { uid: 123, gid: 456 });
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.lines().any(|l| l.starts_with("u etcd - ")), "{text}");
    }

    #[test]
    fn own_tree_creates_a_private_directory_and_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let me = Ids {
            uid: std::fs::metadata(d.path()).unwrap().uid(),
            gid: std::fs::metadata(d.path()).unwrap().gid(),
        };
        let outside = d.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o640)).unwrap();
        let data = d.path().join("data");
        own_tree(&data, me).unwrap();
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777, 0o700);
        std::fs::create_dir_all(data.join("member/wal")).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("member/link")).unwrap();
        own_tree(&data, me).unwrap();
        assert_eq!(std::fs::metadata(&outside).unwrap().permissions().mode() & 0o7777, 0o640);
    }
}
