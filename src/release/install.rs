//! Unpacking a verified archive and installing its binaries into the install directory.

use super::{io_err, Release, ReleaseError};
use crate::fsutil::{place_if_changed, MODE_EXEC};
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::info;

/// Binaries an etcd release carries; `etcdutl` exists from 3.5 on.
pub(super) const BINARIES: &[(&str, bool)] =
    &[("etcd", true), ("etcdctl", true), ("etcdutl", false)];

/// A verified release unpacked into a temporary directory (removed on drop). Nothing on the
/// system has changed yet, so its tools can check inputs (snapshots) before anything does.
pub struct Unpacked {
    _staging: tempfile::TempDir,
    dir: PathBuf,
    version: String,
    archive: PathBuf,
}

impl Unpacked {
    pub fn new(release: &Release, archive: &Path) -> Result<Unpacked, ReleaseError> {
        let cache = archive.parent().unwrap_or(Path::new("/tmp"));
        let staging =
            tempfile::Builder::new().prefix(".unpack-").tempdir_in(cache).map_err(io_err(cache))?;
        let file = std::fs::File::open(archive).map_err(io_err(archive))?;
        let unusable = |message: String| ReleaseError::Archive {
            path: archive.display().to_string(),
            message,
        };
        tar::Archive::new(flate2::read::GzDecoder::new(file))
            .unpack(staging.path())
            .map_err(|e| unusable(format!("cannot unpack: {e}")))?;
        let dir = staging.path().join(release.stem());
        for (bin, required) in BINARIES {
            if *required && !dir.join(bin).is_file() {
                return Err(unusable(format!("{}/{bin} is missing", release.stem())));
            }
        }
        let found = binary_version(&dir).map_err(|e| unusable(e.chain()))?;
        if found != release.version {
            return Err(unusable(format!(
                "its etcd reports version {found}, expected {}",
                release.version
            )));
        }
        Ok(Unpacked { _staging: staging, dir, version: found, archive: archive.to_path_buf() })
    }

    /// Directory holding the unpacked binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installs the binaries into `install_dir`; unchanged files are left alone. Not synced
    /// to disk yet (see `fsutil::place_if_changed`).
    pub fn install(&self, install_dir: &Path) -> Result<(), ReleaseError> {
        let mut changed = Vec::new();
        for (bin, _) in BINARIES {
            let src = self.dir.join(bin);
            if src.is_file()
                && place_if_changed(&src, &install_dir.join(bin), MODE_EXEC)
                    .map_err(io_err(install_dir))?
            {
                changed.push(*bin);
            }
        }
        let installed = binary_version(install_dir).map_err(|e| ReleaseError::Archive {
            path: self.archive.display().to_string(),
            message: e.chain(),
        })?;
        if changed.is_empty() {
            info!(dir = %install_dir.display(), version = %installed, "etcd binaries already installed");
        } else {
            info!(dir = %install_dir.display(), version = %self.version, binaries = ?changed, "installed etcd binaries");
        }
        Ok(())
    }
}

/// Why `etcd --version` gave no version.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("cannot run {path}")]
    Run {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path} --version printed no version")]
    NoVersion { path: String },
}

impl VersionError {
    /// The message with its cause, for messages that embed it.
    pub fn chain(&self) -> String {
        crate::error_chain::error_chain(self)
    }
}

/// The version `etcd --version` in `dir` reports.
pub fn binary_version(dir: &Path) -> Result<String, VersionError> {
    let etcd = dir.join("etcd");
    let path = || etcd.display().to_string();
    let out = Command::new(&etcd)
        .arg("--version")
        .output()
        .map_err(|cause| VersionError::Run { path: path(), cause })?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| VersionError::NoVersion { path: path() })
}

fn parse_version(out: &str) -> Option<String> {
    out.lines().find_map(|l| l.strip_prefix("etcd Version:")).map(|v| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_etcd_version_output() {
        let out = "etcd Version: 3.5.30\nGit SHA: Not provided\nGo Version: go1.24\n";
        assert_eq!(super::parse_version(out).as_deref(), Some("3.5.30"));
        assert_eq!(super::parse_version("garbage"), None);
    }
}
