//! Versioned copies of the etcd binaries beside the live ones, for upgrades and rollbacks:
//! `<install-dir>/etcd-v<V>/{etcd,etcdctl,etcdutl}`. The live binaries stay plain files at
//! `<install-dir>/etcd` (what the unit runs), `etcdctl` and `etcdutl`; switching to a
//! version replaces each of them by an atomic rename of a complete copy, so a reader (or
//! systemd starting etcd) sees either the old or the new file, never a torn one.

use super::install::{binary_version, BINARIES};
use super::{io_err, ReleaseError};
use crate::fsutil::{copy_if_changed, remove_file_if_exists, MODE_EXEC};
use std::path::{Path, PathBuf};
use tracing::info;

const PREFIX: &str = "etcd-v";

/// Where the binaries of `version` are kept.
pub fn versioned_dir(install_dir: &Path, version: &str) -> PathBuf {
    install_dir.join(format!("{PREFIX}{version}"))
}

fn unusable(path: &Path, message: String) -> ReleaseError {
    ReleaseError::Archive { path: path.display().to_string(), message }
}

/// Copies the binaries in `src` (an unpacked release, or the install directory itself) into
/// the versioned directory of `version`, after checking that `src/etcd` reports `version`.
/// Idempotent; a binary `src` lacks is removed from the copy. Returns the directory.
pub fn keep(src: &Path, install_dir: &Path, version: &str) -> Result<PathBuf, ReleaseError> {
    let found = binary_version(src).map_err(|e| unusable(src, e.chain()))?;
    if found != version {
        return Err(unusable(src, format!("its etcd reports version {found}, expected {version}")));
    }
    let dir = versioned_dir(install_dir, version);
    crate::fsutil::create_dir_with_mode(&dir, 0o755).map_err(io_err(&dir))?;
    for (bin, _) in BINARIES {
        let (from, to) = (src.join(bin), dir.join(bin));
        if from.is_file() {
            copy_if_changed(&from, &to, MODE_EXEC).map_err(io_err(&to))?;
        } else {
            remove_file_if_exists(&to).map_err(io_err(&to))?;
        }
    }
    Ok(dir)
}

/// Whether the versioned directory of `version` holds an etcd that reports `version`.
pub fn is_kept(install_dir: &Path, version: &str) -> bool {
    binary_version(&versioned_dir(install_dir, version)).is_ok_and(|v| v == version)
}

/// Makes the live binaries those kept for `version`: each one replaced by an atomic rename,
/// one the version lacks (etcdutl before 3.5) removed. Checks the live etcd afterwards.
pub fn activate(install_dir: &Path, version: &str) -> Result<(), ReleaseError> {
    let dir = versioned_dir(install_dir, version);
    let kept = binary_version(&dir).map_err(|e| unusable(&dir, e.chain()))?;
    if kept != version {
        return Err(unusable(&dir, format!("its etcd reports version {kept}, expected {version}")));
    }
    for (bin, _) in BINARIES {
        let (from, live) = (dir.join(bin), install_dir.join(bin));
        if from.is_file() {
            copy_if_changed(&from, &live, MODE_EXEC).map_err(io_err(&live))?;
        } else {
            remove_file_if_exists(&live).map_err(io_err(&live))?;
        }
    }
    let live = binary_version(install_dir).map_err(|e| unusable(install_dir, e.chain()))?;
    if live != version {
        return Err(unusable(
            install_dir,
            format!("after the swap its etcd reports version {live}, expected {version}"),
        ));
    }
    info!(dir = %install_dir.display(), %version, "etcd binaries switched");
    Ok(())
}

/// Removes the versioned directories of every version not in `except`; returns them.
pub fn prune(install_dir: &Path, except: &[&str]) -> Result<Vec<PathBuf>, ReleaseError> {
    let entries = match std::fs::read_dir(install_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(install_dir)(e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_prefix(PREFIX) else { continue };
        if except.contains(&version) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake release directory whose `etcd --version` reports `version`.
    fn fake_release(dir: &Path, version: &str, with_etcdutl: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let script = format!("#!/bin/sh\necho 'etcd Version: {version}'\n");
        let mut bins = vec!["etcd", "etcdctl"];
        if with_etcdutl {
            bins.push("etcdutl");
        }
        for b in bins {
            std::fs::write(dir.join(b), &script).unwrap();
            std::fs::set_permissions(dir.join(b), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn keep_activate_and_roll_back() {
        let d = tempfile::tempdir().unwrap();
        let (install, new) = (d.path().join("bin"), d.path().join("unpacked"));
        fake_release(&install, "3.4.23", false);
        fake_release(&new, "3.5.1", true);
        keep(&install, &install, "3.4.23").unwrap();
        keep(&new, &install, "3.5.1").unwrap();
        assert!(
            is_kept(&install, "3.4.23")
                && is_kept(&install, "3.5.1")
                && !is_kept(&install, "3.5.0")
        );
        // a copy claimed for the wrong version is refused
        assert!(keep(&new, &install, "3.5.0").is_err());

        activate(&install, "3.5.1").unwrap();
        assert_eq!(binary_version(&install).unwrap(), "3.5.1");
        assert!(install.join("etcdutl").is_file());
        activate(&install, "3.5.1").unwrap(); // idempotent

        activate(&install, "3.4.23").unwrap();
        assert_eq!(binary_version(&install).unwrap(), "3.4.23");
        assert!(!install.join("etcdutl").exists(), "3.4 has no etcdutl");
        assert!(activate(&install, "3.6.0").is_err(), "nothing kept for 3.6.0");

        let removed = prune(&install, &["3.5.1"]).unwrap();
        assert_eq!(removed, [versioned_dir(&install, "3.4.23")]);
        assert!(install.join("etcd").is_file() && is_kept(&install, "3.5.1"));
        let mut modes: Vec<u32> = std::fs::read_dir(versioned_dir(&install, "3.5.1"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().permissions().mode() & 0o777)
            .collect();
        modes.dedup();
        assert_eq!(modes, [0o755]);
    }
}
