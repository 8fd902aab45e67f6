//! Unpacking a verified archive and installing its binaries into the install directory.

use super::{io_err, Release, ReleaseError};
use crate::digest::{to_hex, Sha256Digest};
use crate::fsutil::{place_if_changed, MODE_EXEC};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::info;

/// Binaries an etcd release carries; `etcdutl` exists from 3.5 on.
pub(super) const BINARIES: &[(&str, bool)] =
    &[("etcd", true), ("etcdctl", true), ("etcdutl", false)];

/// The release's binaries in `install_dir`, as far as they are there.
pub fn installed_binaries(install_dir: &Path) -> Vec<PathBuf> {
    BINARIES.iter().map(|(b, _)| install_dir.join(b)).filter(|p| p.is_file()).collect()
}

/// A verified release's binaries, ready to install: unpacked once into the cache, beside the
/// archive, in a directory named after the archive's digest (made in a staging directory and
/// renamed into place, so it is complete whenever it exists), and reused by every later use
/// (a re-run, `join` after `join phase install`, bootstrap's early fetch). Nothing on the
/// system has changed yet, so its tools can check inputs (snapshots) before anything does.
#[derive(Debug, Clone)]
pub struct Unpacked {
    dir: PathBuf,
    version: String,
    archive: PathBuf,
}

impl Unpacked {
    /// The directory the binaries of the archive with `digest` are unpacked into.
    pub(super) fn dir_for(release: &Release, digest: &Sha256Digest) -> PathBuf {
        release.cache_dir.join(format!("{}.{}", release.stem(), &to_hex(digest)[..16]))
    }

    /// The binaries of the archive with `digest`, when an earlier run unpacked them.
    pub(super) fn existing(release: &Release, digest: &Sha256Digest) -> Option<Unpacked> {
        let dir = Unpacked::dir_for(release, digest);
        dir.join("etcd").is_file().then(|| {
            info!(dir = %dir.display(), "using the release unpacked earlier");
            Unpacked { dir, version: release.version.clone(), archive: release.cached_archive() }
        })
    }

    /// The binaries of `archive` (verified to have `digest`), unpacked unless they are
    /// already. Only the binaries are extracted (`BINARIES`), in one pass over the archive.
    pub fn new(
        release: &Release,
        archive: &Path,
        digest: &Sha256Digest,
    ) -> Result<Unpacked, ReleaseError> {
        if let Some(u) = Unpacked::existing(release, digest) {
            return Ok(u);
        }
        let staging = Unpacked::staging(release)?;
        let file = std::fs::File::open(archive).map_err(io_err(archive))?;
        extract(file, &release.stem(), staging.path(), &mut |_| {}).map_err(|message| {
            ReleaseError::Archive { path: archive.display().to_string(), message }
        })?;
        Unpacked::finish(release, staging, digest, None)
    }

    /// A staging directory beside the unpacked ones, removed on drop.
    pub(super) fn staging(release: &Release) -> Result<tempfile::TempDir, ReleaseError> {
        let cache = &release.cache_dir;
        crate::fsutil::create_dir_with_mode(cache, 0o755).map_err(io_err(cache))?;
        tempfile::Builder::new().prefix(".unpack-").tempdir_in(cache).map_err(io_err(cache))
    }

    /// Checks what `extract` left in `staging` (every required binary, the version etcd
    /// reports) and renames it into place as the archive's unpacked directory.
    /// `etcd_reported`: the version the staged etcd reported already, when it went ahead to
    /// start (`extract` creates each file once and never writes it again, so it is asked
    /// only once).
    pub(super) fn finish(
        release: &Release,
        staging: tempfile::TempDir,
        digest: &Sha256Digest,
        etcd_reported: Option<String>,
    ) -> Result<Unpacked, ReleaseError> {
        let archive = release.cached_archive();
        let unusable = |message: String| ReleaseError::Archive {
            path: archive.display().to_string(),
            message,
        };
        for (bin, required) in BINARIES {
            if *required && !staging.path().join(bin).is_file() {
                return Err(unusable(format!("{}/{bin} is missing", release.stem())));
            }
        }
        let found = match etcd_reported {
            Some(v) => v,
            None => binary_version(staging.path()).map_err(|e| unusable(e.chain()))?,
        };
        if found != release.version {
            return Err(unusable(format!(
                "its etcd reports version {found}, expected {}",
                release.version
            )));
        }
        // Made once: a concurrent run that got there first left the same binaries.
        let dir = Unpacked::dir_for(release, digest);
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &dir) {
            let _ = std::fs::remove_dir_all(&staged);
            if !dir.join("etcd").is_file() {
                return Err(io_err(&dir)(e));
            }
        }
        info!(dir = %dir.display(), version = %found, "unpacked the release");
        Ok(Unpacked { dir, version: found, archive })
    }

    /// The binaries already in `install_dir`, when its etcd reports `version` and the
    /// release's other binaries are there too (etcdctl; etcdutl from 3.5 on): a release
    /// installed by an earlier run, baked into the image or delivered by Ignition or
    /// cloud-init (root's files, trusted as such). None when it is absent, another version,
    /// or incomplete (an earlier run stopped after installing etcd ahead of the rest).
    pub fn installed(install_dir: &Path, version: &str) -> Option<Unpacked> {
        let ships_etcdutl =
            super::version::parse("version", version).is_ok_and(|v| (v.major, v.minor) >= (3, 5));
        let missing: Vec<&str> = BINARIES
            .iter()
            .filter(|(bin, required)| {
                (*required || ships_etcdutl) && !install_dir.join(bin).is_file()
            })
            .map(|(bin, _)| *bin)
            .collect();
        if !missing.is_empty() {
            if install_dir.join("etcd").is_file() {
                info!(dir = %install_dir.display(), ?missing, "the installed release is incomplete; installing it again");
            }
            return None;
        }
        let found = binary_version(install_dir).ok()?;
        (found == version).then(|| {
            info!(dir = %install_dir.display(), %version, "etcd is installed already; nothing to download");
            Unpacked {
                dir: install_dir.to_path_buf(),
                version: found,
                archive: install_dir.join("etcd"),
            }
        })
    }

    /// Whether each of the unpacked binaries is in `install_dir` as the same file (a hard
    /// link), and nothing else stands there in place of a missing one.
    fn linked_into(&self, install_dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        BINARIES.iter().all(|(bin, _)| {
            match (std::fs::metadata(self.dir.join(bin)), std::fs::metadata(install_dir.join(bin)))
            {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                (Err(_), Err(_)) => true,
                _ => false,
            }
        })
    }

    /// Directory holding the unpacked binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installs the binaries into `install_dir`; unchanged files are left alone. Not synced
    /// to disk yet (see `fsutil::place_if_changed`).
    pub fn install(&self, install_dir: &Path) -> Result<(), ReleaseError> {
        if self.dir == install_dir {
            return Ok(());
        }
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
        // Hard links to the unpacked binaries are the files whose version `finish` checked;
        // only copies (another filesystem) are asked again.
        let installed = if self.linked_into(install_dir) {
            self.version.clone()
        } else {
            binary_version(install_dir).map_err(|e| ReleaseError::Archive {
                path: self.archive.display().to_string(),
                message: e.chain(),
            })?
        };
        if changed.is_empty() {
            info!(dir = %install_dir.display(), version = %installed, "etcd binaries already installed");
        } else {
            info!(dir = %install_dir.display(), version = %self.version, binaries = ?changed, "installed etcd binaries");
        }
        Ok(())
    }
}

/// How much an archive may unpack to. The archive is unpacked while it downloads, before its
/// digest is known to match, so a hostile mirror's gzip bomb must end early.
#[derive(Debug, Clone, Copy)]
pub(super) struct UnpackLimits {
    /// Each binary (etcd's are about 30 MB).
    pub binary: u64,
    /// The whole tar stream, skipped entries included (etcd's: about 70 MB).
    pub total: u64,
}

pub(super) const UNPACK_LIMITS: UnpackLimits = UnpackLimits { binary: 256 << 20, total: 1 << 30 };

/// Extracts the binaries (`<stem>/<binary>` exactly, regular files only) of the gzipped
/// tar stream `archive` into `dest`, executable; nothing else is written, whatever the archive
/// holds. Stops reading once the archive ends.
pub(super) fn extract(
    archive: impl std::io::Read,
    stem: &str,
    dest: &Path,
    on_binary: &mut dyn FnMut(&'static str),
) -> Result<(), String> {
    extract_within(archive, stem, dest, on_binary, UNPACK_LIMITS)
}

fn extract_within(
    archive: impl std::io::Read,
    stem: &str,
    dest: &Path,
    on_binary: &mut dyn FnMut(&'static str),
    limits: UnpackLimits,
) -> Result<(), String> {
    let stream = Capped { inner: flate2::read::GzDecoder::new(archive), left: limits.total };
    let mut tar = tar::Archive::new(stream);
    let entries = tar.entries().map_err(|e| format!("cannot read: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot unpack: {e}"))?;
        let path = entry.path().map_err(|e| format!("cannot unpack: {e}"))?;
        let Some(bin) = path
            .strip_prefix(stem)
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|p| BINARIES.iter().find(|(b, _)| *b == p))
            .map(|(b, _)| *b)
        else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            return Err(format!("{stem}/{bin} is not a regular file"));
        }
        let size = entry.header().size().map_err(|e| format!("cannot unpack {bin}: {e}"))?;
        if size > limits.binary {
            return Err(format!(
                "{stem}/{bin} is {size} bytes, more than an etcd binary may be ({})",
                limits.binary
            ));
        }
        let to = dest.join(bin);
        write_new(&to, &mut entry).map_err(|e| format!("cannot unpack {bin}: {e}"))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(MODE_EXEC))
            .map_err(|e| format!("cannot make {bin} executable: {e}"))?;
        on_binary(bin);
    }
    Ok(())
}

/// Writes `from` to the new file `to` through a large buffer: the decompressor then works
/// in large steps, a quarter less CPU than tar's own unpacking of etcd's archive.
fn write_new(to: &Path, from: &mut impl std::io::Read) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    std::io::copy(from, &mut w)?;
    w.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// A stream that fails once it has given `left` bytes and has more.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return match self.inner.read(&mut [0u8; 1])? {
                0 => Ok(0),
                _ => Err(std::io::Error::other("the archive unpacks to more than allowed")),
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
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
    let out = crate::blocking::output(Command::new(&etcd).arg("--version"))
        .map_err(|cause| VersionError::Run { path: path(), cause })?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| VersionError::NoVersion { path: path() })
}

fn parse_version(out: &str) -> Option<String> {
    out.lines().find_map(|l| l.strip_prefix("etcd Version:")).map(|v| v.trim().to_string())
}

#[cfg(test)]
pub(super) mod tests {
    #[test]
    fn parses_etcd_version_output() {
        let out = "etcd Version: 3.5.30\nGit SHA: Not provided\nGo Version: go1.24\n";
        assert_eq!(super::parse_version(out).as_deref(), Some("3.5.30"));
        assert_eq!(super::parse_version("garbage"), None);
    }

    use super::*;
    use crate::config::Config;
    use std::io::Write;

    /// An `etcd` that answers `--version` as etcd does.
    pub(crate) fn fake_etcd(version: &str) -> Vec<u8> {
        format!("#!/bin/sh\necho 'etcd Version: {version}'\n").into_bytes()
    }

    /// A release archive of `entries`: (path, content, or a symlink target).
    pub(crate) fn archive(path: &Path, entries: &[(&str, Result<Vec<u8>, &str>)]) {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, content) in entries {
            let mut h = tar::Header::new_gnu();
            match content {
                Ok(bytes) => {
                    h.set_size(bytes.len() as u64);
                    h.set_mode(0o755);
                    h.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
                }
                Err(target) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut h, name, target).unwrap();
                }
            }
        }
        tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    }

    fn release(cache: &Path) -> Release {
        Release::from_config(&Config {
            version: "3.5.30".into(),
            arch: Some("amd64".into()),
            cache_dir: cache.to_str().unwrap().parse().unwrap(),
            ..Default::default()
        })
    }

    /// A cache directory (kept while the first value lives), its release, and where an
    /// archive goes in it.
    fn fixture() -> (tempfile::TempDir, Release, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let r = release(d.path());
        std::fs::create_dir_all(d.path().join("v3.5.30")).unwrap();
        let tgz = d.path().join("v3.5.30").join("etcd.tar.gz");
        (d, r, tgz)
    }

    #[test]
    fn only_the_binaries_are_unpacked_once_and_reused() {
        let (_d, r, tgz) = fixture();
        let stem = r.stem();
        archive(
            &tgz,
            &[
                (&format!("{stem}/etcd"), Ok(fake_etcd("3.5.30"))),
                (&format!("{stem}/etcdctl"), Ok(b"ctl".to_vec())),
                (&format!("{stem}/etcdutl"), Ok(b"utl".to_vec())),
                (&format!("{stem}/README.md"), Ok(b"docs".to_vec())),
                (&format!("{stem}/Documentation/dev-guide.md"), Ok(b"docs".to_vec())),
                ("elsewhere/etcd", Ok(b"not the release's".to_vec())),
            ],
        );
        let digest = [7u8; 32];
        let u = Unpacked::new(&r, &tgz, &digest).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(u.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["etcd", "etcdctl", "etcdutl"]);
        assert_eq!(std::fs::read(u.dir().join("etcdctl")).unwrap(), b"ctl");
        assert_eq!(
            std::fs::metadata(u.dir().join("etcdutl")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(u.dir().parent(), tgz.parent(), "beside the archive");
        // No staging directory is left, and a second use does not read the archive again.
        let entries = std::fs::read_dir(tgz.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 2, "the archive and the unpacked directory");
        std::fs::write(&tgz, b"no longer an archive").unwrap();
        let again = Unpacked::new(&r, &tgz, &digest).unwrap();
        assert_eq!(again.dir(), u.dir());
        // Another digest is another archive: unpacked anew (and here refused).
        let refused = Unpacked::new(&r, &tgz, &[8u8; 32]).expect_err("garbage is refused");
        assert!(refused.to_string().contains("is unusable"), "{refused}");
    }

    #[test]
    fn an_archive_unpacking_to_more_than_the_limits_is_refused_early() {
        let (d, r, tgz) = fixture();
        let stem = r.stem();
        let limits = UnpackLimits { binary: 1 << 20, total: 4 << 20 };
        let unpack = |limits| {
            let dest = tempfile::tempdir_in(d.path()).unwrap();
            let file = std::fs::File::open(&tgz).unwrap();
            let r = extract_within(file, &stem, dest.path(), &mut |_| {}, limits);
            let written: u64 = std::fs::read_dir(dest.path())
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            (r, written)
        };
        // A binary larger than a binary may be: refused from its header, nothing written.
        archive(&tgz, &[(&format!("{stem}/etcd"), Ok(vec![0u8; 2 << 20]))]);
        let (r, written) = unpack(limits);
        assert!(r.unwrap_err().contains("more than an etcd binary may be (1048576)"));
        assert_eq!(written, 0);
        // Entries that are skipped still count: the stream stops at the total.
        let docs: Vec<(String, Result<Vec<u8>, &str>)> = (0..6)
            .map(|i| (format!("{stem}/Documentation/{i}.md"), Ok(vec![0u8; 1 << 20])))
            .collect();
        let mut entries: Vec<(&str, Result<Vec<u8>, &str>)> =
            docs.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
        let etcd = format!("{stem}/etcd");
        entries.push((&etcd, Ok(fake_etcd("3.5.30"))));
        archive(&tgz, &entries);
        let (r, written) = unpack(limits);
        assert!(r.unwrap_err().contains("more than allowed"));
        assert_eq!(written, 0, "etcd after the limit was never reached");
        // Within the limits the same archive unpacks.
        let (r, written) = unpack(UnpackLimits { binary: 1 << 20, total: 8 << 20 });
        r.unwrap();
        assert_eq!(written, fake_etcd("3.5.30").len() as u64);
    }

    #[test]
    fn a_binary_that_is_a_link_or_of_another_version_is_refused() {
        let (_d, r, tgz) = fixture();
        let stem = r.stem();
        archive(
            &tgz,
            &[
                (&format!("{stem}/etcd"), Ok(fake_etcd("3.5.30"))),
                (&format!("{stem}/etcdctl"), Err("/etc/shadow")),
            ],
        );
        let e = Unpacked::new(&r, &tgz, &[1u8; 32]).expect_err("a link is refused");
        assert!(e.to_string().contains("etcdctl is not a regular file"), "{e}");
        archive(&tgz, &[(&format!("{stem}/etcd"), Ok(fake_etcd("3.4.1")))]);
        let e = Unpacked::new(&r, &tgz, &[2u8; 32]).expect_err("another version is refused");
        assert!(
            e.to_string().contains("etcdctl is missing") || e.to_string().contains("3.4.1"),
            "{e}"
        );
        archive(
            &tgz,
            &[
                (&format!("{stem}/etcd"), Ok(fake_etcd("3.4.1"))),
                (&format!("{stem}/etcdctl"), Ok(b"ctl".to_vec())),
            ],
        );
        let e = Unpacked::new(&r, &tgz, &[3u8; 32]).expect_err("another version is refused");
        assert!(e.to_string().contains("reports version 3.4.1, expected 3.5.30"), "{e}");
        let left: Vec<_> = std::fs::read_dir(tgz.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the archive: no staging or partial directory");
    }

    #[test]
    fn an_installed_etcd_of_the_version_is_used_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let etcd = d.path().join("etcd");
        std::fs::write(&etcd, fake_etcd("3.5.30")).unwrap();
        std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
        // etcd alone (a run stopped after installing etcd ahead of the rest): incomplete.
        assert!(Unpacked::installed(d.path(), "3.5.30").is_none(), "etcdctl and etcdutl missing");
        std::fs::write(d.path().join("etcdctl"), b"ctl").unwrap();
        assert!(Unpacked::installed(d.path(), "3.5.30").is_none(), "3.5 ships etcdutl");
        std::fs::write(d.path().join("etcdutl"), b"utl").unwrap();
        let u = Unpacked::installed(d.path(), "3.5.30").expect("the installed release");
        assert_eq!(u.dir(), d.path());
        u.install(d.path()).unwrap();
        assert_eq!(std::fs::read(&etcd).unwrap(), fake_etcd("3.5.30"), "left as it is");
        assert!(Unpacked::installed(d.path(), "3.5.31").is_none(), "another version");
        assert!(Unpacked::installed(&d.path().join("none"), "3.5.30").is_none(), "absent");
    }
}
