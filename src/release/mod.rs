//! The pinned etcd release: where it comes from, verifying it, caching it, installing it.
//!
//! Layout (upstream's): `<release-url>/v<V>/etcd-v<V>-linux-<arch>.tar.gz` and
//! `<release-url>/v<V>/SHA256SUMS`. The archive is hashed while it streams to the cache; a
//! mismatch deletes it. A cached archive is re-verified before every use.

mod fetch;
mod install;
pub mod known_bad;
mod progress;
pub mod sums;
pub mod swap;
pub mod version;

pub use install::{binary_version, Unpacked};

use crate::config::Config;
use crate::digest::{self, Sha256Digest};
use std::path::{Path, PathBuf};
use sums::{Sums, SumsError};
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "cannot fetch {url}: {message}; check release-url and the network, or use a file:// mirror"
    )]
    Fetch { url: String, message: String },
    #[error("{url}: checksum mismatch (expected {expected}, got {actual}); the download was deleted. The mirror or the pinned release-sha256 is wrong, or the file was tampered with")]
    Mismatch { url: String, expected: String, actual: String },
    #[error("{url} does not list {name}; check version and arch, or pin release-sha256")]
    NotListed { url: String, name: String },
    #[error("{url} is not a valid SHA256SUMS file: {cause}")]
    Sums { url: String, cause: SumsError },
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("release archive {path} is unusable: {message}")]
    Archive { path: String, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io { path: path.display().to_string(), cause: source }
}

/// One etcd release for one architecture at one mirror.
#[derive(Debug, Clone)]
pub struct Release {
    pub version: String,
    pub arch: String,
    base_url: String,
    pinned: Option<Sha256Digest>,
    /// Bounds of each transfer (the archive's; SHA256SUMS gets a smaller size limit).
    limits: fetch::Limits,
    cache_dir: PathBuf,
}

/// This machine's architecture in etcd's release names.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl Release {
    pub fn from_config(c: &Config) -> Release {
        Release {
            version: c.version.to_string(),
            arch: c.arch.as_deref().unwrap_or_else(|| host_arch()).to_string(),
            base_url: c.release_url.trim_end_matches('/').to_string(),
            pinned: c.release_sha256.as_ref().map(|d| d.digest()),
            limits: fetch::Limits {
                connect: std::time::Duration::from_secs(c.download_connect_timeout_seconds),
                idle: c.timeout(),
                max_bytes: fetch::ARCHIVE_MAX_BYTES,
            },
            cache_dir: c.cache_dir.join(format!("v{}", c.version)),
        }
    }

    /// `etcd-v<V>-linux-<arch>`, the archive's top directory.
    pub fn stem(&self) -> String {
        format!("etcd-v{}-linux-{}", self.version, self.arch)
    }

    pub fn archive_name(&self) -> String {
        format!("{}.tar.gz", self.stem())
    }

    fn url(&self, file: &str) -> String {
        format!("{}/v{}/{}", self.base_url, self.version, file)
    }

    pub fn archive_url(&self) -> String {
        self.url(&self.archive_name())
    }

    pub fn sums_url(&self) -> String {
        self.url("SHA256SUMS")
    }

    pub fn cached_archive(&self) -> PathBuf {
        self.cache_dir.join(self.archive_name())
    }

    /// The release's binaries ready to install: those in `install_dir` when they are this
    /// version already (nothing is fetched), else from the verified archive, unpacked once.
    pub async fn ensure_unpacked(&self, install_dir: &Path) -> Result<Unpacked, ReleaseError> {
        if let Some(installed) = Unpacked::installed(install_dir, &self.version) {
            return Ok(installed);
        }
        self.unpack_verified().await
    }

    /// The release's binaries from the verified archive (downloaded unless cached), unpacked
    /// once; never those of an install directory.
    pub async fn unpack_verified(&self) -> Result<Unpacked, ReleaseError> {
        let (archive, digest) = self.ensure_cached().await?;
        let (release, archive2) = (self.clone(), archive.clone());
        tokio::task::spawn_blocking(move || Unpacked::new(&release, &archive2, &digest))
            .await
            .map_err(|e| ReleaseError::Archive {
                path: archive.display().to_string(),
                message: format!("unpacking stopped: {e}"),
            })?
    }

    /// Makes sure a verified archive is in the cache; returns its path and digest.
    pub async fn ensure_cached(&self) -> Result<(PathBuf, Sha256Digest), ReleaseError> {
        let expected = self.expected_digest().await?;
        let path = self.cached_archive();
        if path.exists() {
            let actual = digest::sha256_file(&path).map_err(io_err(&path))?;
            if actual == expected {
                info!(archive = %path.display(), "using verified cached release");
                return Ok((path, expected));
            }
            warn!(archive = %path.display(), "cached release fails verification; downloading again");
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        crate::fsutil::create_dir_with_mode(&self.cache_dir, 0o755)
            .map_err(io_err(&self.cache_dir))?;
        let url = self.archive_url();
        info!(%url, "downloading etcd release");
        let actual = fetch::download(&url, &path, &self.limits).await?;
        if actual != expected {
            let _ = std::fs::remove_file(&path);
            return Err(ReleaseError::Mismatch {
                url,
                expected: digest::to_hex(&expected),
                actual: digest::to_hex(&actual),
            });
        }
        info!(archive = %path.display(), sha256 = %digest::to_hex(&actual), "release verified");
        Ok((path, actual))
    }

    /// The pinned digest, else the one SHA256SUMS lists (fetched fresh; the cached copy is
    /// used only when the mirror cannot be reached).
    async fn expected_digest(&self) -> Result<Sha256Digest, ReleaseError> {
        if let Some(d) = self.pinned {
            return Ok(d);
        }
        let url = self.sums_url();
        let cached = self.cache_dir.join("SHA256SUMS");
        let text = match fetch::fetch_small(
            &url,
            &fetch::Limits { max_bytes: fetch::SUMS_MAX_BYTES, ..self.limits },
        )
        .await
        {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                Sums::parse(&text)
                    .map_err(|source| ReleaseError::Sums { url: url.clone(), cause: source })?;
                crate::fsutil::write_if_changed(
                    &cached,
                    text.as_bytes(),
                    crate::fsutil::MODE_PUBLIC,
                )
                .map_err(io_err(&cached))?;
                text
            }
            Err(e) if cached.exists() => {
                warn!(error = %e, cached = %cached.display(), "mirror unreachable; verifying against the cached SHA256SUMS");
                std::fs::read_to_string(&cached).map_err(io_err(&cached))?
            }
            Err(e) => return Err(e),
        };
        let sums = Sums::parse(&text)
            .map_err(|source| ReleaseError::Sums { url: url.clone(), cause: source })?;
        sums.get(&self.archive_name())
            .copied()
            .ok_or(ReleaseError::NotListed { url, name: self.archive_name() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_upstream_layout() {
        let c = Config {
            release_url: "file:///srv/mirror/".into(),
            version: "3.5.30".into(),
            arch: Some("arm64".into()),
            ..Default::default()
        };
        let r = Release::from_config(&c);
        assert_eq!(r.archive_url(), "file:///srv/mirror/v3.5.30/etcd-v3.5.30-linux-arm64.tar.gz");
        assert_eq!(r.sums_url(), "file:///srv/mirror/v3.5.30/SHA256SUMS");
        assert_eq!(
            r.cached_archive(),
            Path::new("/var/cache/etcdadm/v3.5.30/etcd-v3.5.30-linux-arm64.tar.gz")
        );
    }
}
