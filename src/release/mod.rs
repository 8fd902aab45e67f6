//! The pinned etcd release: where it comes from, verifying it, caching it, installing it.
//!
//! Layout (upstream's): `<release-url>/v<V>/etcd-v<V>-linux-<arch>.tar.gz` and
//! `<release-url>/v<V>/SHA256SUMS`. The archive is hashed while it streams to the cache; a
//! mismatch deletes it. A cached archive is re-verified before every use.

mod fetch;
mod follow;
mod install;
pub mod known_bad;
mod prefetch;
mod progress;
pub mod sums;
pub mod swap;
pub mod version;

pub use install::{binary_version, installed_binaries, Unpacked, VersionError};
pub use prefetch::{EtcdFirst, Prefetch, Ready};

/// Where `unpack_verified` sends the etcd binary it may start before the rest is unpacked:
/// its path while the rest unpacks, and its path once the unpacked release is renamed into
/// place (one of them exists at any time).
pub type EtcdFirstSender = tokio::sync::oneshot::Sender<([PathBuf; 2], RestPriority)>;

/// Whether the thread unpacking the rest of a release (etcdctl, etcdutl) yields the CPU:
/// lowered once etcd went ahead of them to start (its start and, in a forming cluster, its
/// peers' then get the CPU first), restored once the caller waits for the rest, so that a
/// busy machine cannot starve it from then on.
#[derive(Debug, Clone, Default)]
pub struct RestPriority(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl RestPriority {
    fn lower(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn restore(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    fn lowered(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

use crate::config::Config;
use crate::digest::{self, Sha256Digest};
use std::path::{Path, PathBuf};
use sums::{Sums, SumsError};

/// Runs `f` (file work) on a blocking thread.
async fn blocking<T: Send + 'static>(
    what: &Path,
    f: impl FnOnce() -> Result<T, ReleaseError> + Send + 'static,
) -> Result<T, ReleaseError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ReleaseError::Archive {
        path: what.display().to_string(),
        message: format!("unpacking stopped: {e}"),
    })?
}

/// What the unpacking thread reads (the download as it reaches the cache); the thread
/// reading it follows `priority`: nice 19 while it is lowered, its own nice value again
/// once restored.
struct Yielding<R> {
    inner: R,
    priority: RestPriority,
    /// The thread's nice value before it was lowered, while it is.
    lowered_from: Option<i32>,
}

impl<R> Yielding<R> {
    fn new(inner: R, priority: RestPriority) -> Yielding<R> {
        Yielding { inner, priority, lowered_from: None }
    }

    /// This thread only (Linux keeps the nice value per thread), which ends with the
    /// unpacking. A refusal (raising it again needs CAP_SYS_NICE) changes only the speed.
    fn follow_priority(&mut self) {
        use rustix::process::{getpriority_process, setpriority_process};
        match (self.priority.lowered(), self.lowered_from) {
            (true, None) => {
                let own = getpriority_process(None).unwrap_or(0);
                if setpriority_process(None, 19).is_ok() {
                    self.lowered_from = Some(own);
                }
            }
            (false, Some(own)) => {
                let _ = setpriority_process(None, own);
                self.lowered_from = None;
            }
            _ => {}
        }
    }
}

impl<R: std::io::Read> std::io::Read for Yielding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.follow_priority();
        self.inner.read(buf)
    }
}
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
    /// Bound of each connection: download-connect-timeout-seconds.
    connect_timeout: std::time::Duration,
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
            limits: fetch::Limits { idle: c.timeout(), max_bytes: fetch::ARCHIVE_MAX_BYTES },
            connect_timeout: std::time::Duration::from_secs(c.download_connect_timeout_seconds),
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
    /// `etcd_first`, when given, receives the etcd binary as soon as it may run, before the
    /// rest is unpacked (see `unpack_verified`).
    pub async fn ensure_unpacked(
        &self,
        install_dir: &Path,
        etcd_first: Option<EtcdFirstSender>,
    ) -> Result<Unpacked, ReleaseError> {
        if let Some(installed) = Unpacked::installed(install_dir, &self.version) {
            return Ok(installed);
        }
        self.unpack_verified(etcd_first).await
    }

    /// The release's binaries from the verified archive, never those of an install
    /// directory: unpacked earlier, else from the cached archive, else downloaded and
    /// unpacked in the same pass (the unpacked binaries count only once the whole download
    /// has the expected digest). On a download, `etcd_first` (if given) receives the path of
    /// the etcd binary as soon as the whole archive has verified, etcd is unpacked and
    /// reports the expected version: etcd may start while the other binaries unpack.
    pub async fn unpack_verified(
        &self,
        etcd_first: Option<EtcdFirstSender>,
    ) -> Result<Unpacked, ReleaseError> {
        let client = fetch::Client::new(self.connect_timeout);
        let known = self.digest_before_download(&client).await?;
        let (release, archive) = (self.clone(), self.cached_archive());
        if let Some(expected) = known {
            if let Some(u) = Unpacked::existing(self, &expected) {
                return Ok(u);
            }
            if self.cached(&expected)?.is_some() {
                return blocking(&archive.clone(), move || {
                    Unpacked::new(&release, &archive, &expected)
                })
                .await;
            }
        }
        let staging = Unpacked::staging(self)?;
        // The unpacking follows the archive as it reaches the cache (`follow`): the download
        // never waits for it, so the digest, and with it etcd, is ready once the archive is
        // in and etcd (its first member) unpacked, while the rest may still be unpacking.
        let (writer, follower) = follow::growing();
        let (stem, dest) = (self.stem(), staging.path().to_path_buf());
        let (etcd_tx, etcd_unpacked) = tokio::sync::oneshot::channel::<()>();
        let priority = RestPriority::default();
        // A thread of its own (it follows `priority`), whose result comes back over a
        // channel: joining it would hold an async worker, and the tasks queued behind this
        // one (bootstrap's main task), while the rest unpacks.
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let archive_read = Yielding::new(follower, priority.clone());
        let (ahead, rest) = (etcd_first.is_some(), priority.clone());
        std::thread::spawn(move || {
            let mut etcd_tx = Some(etcd_tx);
            let mut on_binary = |bin: &str| {
                if bin == "etcd" {
                    // With etcd going ahead, the rest yields to the download from here.
                    if ahead {
                        rest.lower();
                    }
                    etcd_tx.take().map(|tx| tx.send(()));
                }
            };
            let _ = done_tx.send(install::extract(archive_read, &stem, &dest, &mut on_binary));
        });
        let downloaded = self.download(&client, known, Some(writer)).await;
        let mut etcd_reported = None;
        if let (Ok((_, expected)), Some(first)) = (&downloaded, etcd_first) {
            // The whole archive has the expected digest: what it unpacks may run.
            if etcd_unpacked.await.is_ok() {
                let dir = staging.path().to_path_buf();
                if let Ok(Ok(v)) = tokio::task::spawn_blocking(move || binary_version(&dir)).await {
                    if v == self.version {
                        info!(version = %v, "etcd unpacked and verified; the other binaries are still unpacking");
                        let unpacked = Unpacked::dir_for(self, expected).join("etcd");
                        let _ =
                            first.send(([staging.path().join("etcd"), unpacked], priority.clone()));
                        etcd_reported = Some(v);
                    }
                }
            }
        }
        if etcd_reported.is_none() {
            priority.restore(); // nothing went ahead: the caller waits for all of it
        }
        let extracted = done.await.unwrap_or_else(|_| Err("the unpacking thread panicked".into()));
        let (_, expected) = downloaded?;
        extracted.map_err(|message| ReleaseError::Archive {
            path: archive.display().to_string(),
            message,
        })?;
        blocking(&archive, move || Unpacked::finish(&release, staging, &expected, etcd_reported))
            .await
    }

    /// Makes sure a verified archive is in the cache; returns its path and digest.
    pub async fn ensure_cached(&self) -> Result<(PathBuf, Sha256Digest), ReleaseError> {
        let client = fetch::Client::new(self.connect_timeout);
        let known = self.digest_before_download(&client).await?;
        if let Some(expected) = known {
            if let Some(path) = self.cached(&expected)? {
                return Ok((path, expected));
            }
        }
        self.download(&client, known, None).await
    }

    /// The expected digest when it is needed before any download: pinned, or a cached archive
    /// is there to verify. None otherwise: SHA256SUMS is then fetched beside the archive.
    async fn digest_before_download(
        &self,
        client: &fetch::Client,
    ) -> Result<Option<Sha256Digest>, ReleaseError> {
        if self.pinned.is_none() && !self.cached_archive().exists() {
            return Ok(None);
        }
        self.expected_digest(client).await.map(Some)
    }

    /// The cached archive when it has `expected`; a cached file that does not is deleted.
    fn cached(&self, expected: &Sha256Digest) -> Result<Option<PathBuf>, ReleaseError> {
        let path = self.cached_archive();
        if !path.exists() {
            return Ok(None);
        }
        let actual = digest::sha256_file(&path).map_err(io_err(&path))?;
        if actual == *expected {
            info!(archive = %path.display(), "using verified cached release");
            return Ok(Some(path));
        }
        warn!(archive = %path.display(), "cached release fails verification; downloading again");
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        Ok(None)
    }

    /// Downloads the archive into the cache (`writer`'s follower reads it as it grows) and
    /// returns its path and digest. Its `expected` digest, when not known yet, comes from
    /// SHA256SUMS, fetched at the same time (a round trip and, at GitHub, a redirect and a
    /// TLS handshake less before the archive starts); a failure there stops the download and
    /// is the one reported. A download without the expected digest is deleted and refused.
    async fn download(
        &self,
        client: &fetch::Client,
        expected: Option<Sha256Digest>,
        writer: Option<follow::Writer>,
    ) -> Result<(PathBuf, Sha256Digest), ReleaseError> {
        let path = self.cached_archive();
        crate::fsutil::create_dir_with_mode(&self.cache_dir, 0o755)
            .map_err(io_err(&self.cache_dir))?;
        let url = self.archive_url();
        info!(%url, "downloading etcd release");
        let fetch = fetch::download(client, &url, &path, &self.limits, writer);
        let (expected, actual) = match expected {
            Some(expected) => (expected, fetch.await),
            // The archive's own error waits for SHA256SUMS, whose error comes first.
            None => match tokio::try_join!(self.expected_digest(client), async { Ok(fetch.await) })
            {
                Ok(both) => both,
                Err(e) => {
                    // Nothing was cached before (`digest_before_download`): what the
                    // download left is unverified.
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            },
        };
        let actual = actual?;
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
    async fn expected_digest(&self, client: &fetch::Client) -> Result<Sha256Digest, ReleaseError> {
        if let Some(d) = self.pinned {
            return Ok(d);
        }
        let url = self.sums_url();
        let cached = self.cache_dir.join("SHA256SUMS");
        let text = match fetch::fetch_small(
            client,
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

    /// A mirror at `file://<dir>` holding a fake release archive of `version`; its digest.
    fn mirror(dir: &Path, version: &str, etcd_reports: &str) -> Sha256Digest {
        mirror_with_etcd(dir, version, install::tests::fake_etcd(etcd_reports))
    }

    /// The same, with `etcd` as the archive's etcd binary.
    fn mirror_with_etcd(dir: &Path, version: &str, etcd: Vec<u8>) -> Sha256Digest {
        let stem = format!("etcd-v{version}-linux-amd64");
        let v = dir.join(format!("v{version}"));
        std::fs::create_dir_all(&v).unwrap();
        let tgz = v.join(format!("{stem}.tar.gz"));
        // large enough to be unpacked over many reads while it downloads
        let big = vec![7u8; 3 << 20];
        install::tests::archive(
            &tgz,
            &[
                (&format!("{stem}/etcd"), Ok(etcd)),
                (&format!("{stem}/etcdctl"), Ok(big.clone())),
                (&format!("{stem}/etcdutl"), Ok(big)),
            ],
        );
        digest::sha256_file(&tgz).unwrap()
    }

    fn pinned(mirror: &Path, cache: &Path, digest: &Sha256Digest) -> Release {
        Release::from_config(&Config {
            release_url: format!("file://{}", mirror.display()).parse().unwrap(),
            release_sha256: Some(digest::to_hex(digest).parse().unwrap()),
            version: "3.5.30".into(),
            arch: Some("amd64".into()),
            cache_dir: cache.to_str().unwrap().parse().unwrap(),
            ..Default::default()
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_handed_over_ahead_is_asked_its_version_once() {
        let (m, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let asked = m.path().join("asked");
        let etcd = format!(
            "#!/bin/sh\necho asked >> '{}'\necho 'etcd Version: 3.5.30'\n",
            asked.display()
        );
        let good = mirror_with_etcd(m.path(), "3.5.30", etcd.into_bytes());
        let r = pinned(m.path(), cache.path(), &good);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let u = r.unpack_verified(Some(tx)).await.unwrap();
        assert!(rx.await.is_ok(), "etcd was not handed over ahead of the rest");
        assert!(u.dir().join("etcdutl").is_file(), "the rest was not unpacked");
        assert_eq!(
            std::fs::read_to_string(&asked).unwrap(),
            "asked\n",
            "times the unpacked etcd was run for its version"
        );
    }

    /// The nice value of the calling thread, as the kernel reports it (field 19 of
    /// /proc/thread-self/stat, after the command name in parentheses).
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn the_thread_reading_the_archive_runs_at_nice_19_while_its_priority_is_lowered() {
        use std::io::Read;
        let nice = std::thread::spawn(|| {
            let priority = RestPriority::default();
            let mut archive = Yielding::new(std::io::repeat(7), priority.clone());
            let mut read = || {
                let mut buf = [0u8; 8];
                archive.read_exact(&mut buf).unwrap();
                assert_eq!(buf, [7; 8], "the bytes come through");
                own_nice()
            };
            let before = read();
            priority.lower();
            let lowered = read();
            priority.restore();
            (before, lowered, read())
        })
        .join()
        .unwrap();
        let (before, lowered, restored) = nice;
        assert_eq!(lowered, 19, "nice of the unpacking thread while lowered (was {before})");
        // Raising it again needs CAP_SYS_NICE (root has it); without, it stays low.
        let expected = if rustix::process::geteuid().is_root() { before } else { 19 };
        assert_eq!(restored, expected, "nice of the unpacking thread once restored");
        assert_eq!(own_nice(), before, "the test's own thread was changed");
    }

    /// A mirror on loopback serving `dir` (laid out as `mirror` makes it), which answers
    /// SHA256SUMS, with `sums`, only once the archive has been asked for. Its URL.
    async fn http_mirror_answering_sums_after_the_archive(dir: &Path, sums: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let archive = std::fs::read(dir.join("v3.5.30/etcd-v3.5.30-linux-amd64.tar.gz")).unwrap();
        let (asked, _) = tokio::sync::watch::channel(false);
        let (asked, archive) = (std::sync::Arc::new(asked), std::sync::Arc::new(archive));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (asked, archive, sums) = (asked.clone(), archive.clone(), sums.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let body: Vec<u8> = if request.starts_with("GET /v3.5.30/SHA256SUMS ") {
                        let _ = asked.subscribe().wait_for(|a| *a).await;
                        sums.into_bytes()
                    } else {
                        asked.send_replace(true);
                        archive.to_vec()
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                });
            }
        });
        url
    }

    fn unpinned(url: &str, cache: &Path) -> Release {
        Release::from_config(&Config {
            release_url: url.parse().unwrap(),
            version: "3.5.30".into(),
            arch: Some("amd64".into()),
            cache_dir: cache.to_str().unwrap().parse().unwrap(),
            ..Default::default()
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_archive_is_fetched_while_sha256sums_is_and_counts_only_with_its_listed_digest() {
        let m = tempfile::tempdir().unwrap();
        let good = mirror(m.path(), "3.5.30", "3.5.30");
        let line =
            |d: &Sha256Digest| format!("{}  etcd-v3.5.30-linux-amd64.tar.gz\n", digest::to_hex(d));
        // This mirror answers SHA256SUMS only once the archive was asked for: a release that
        // waited for SHA256SUMS before asking would hang here.
        let url = http_mirror_answering_sums_after_the_archive(m.path(), line(&good)).await;
        let cache = tempfile::tempdir().unwrap();
        let r = unpinned(&url, cache.path());
        let u = tokio::time::timeout(std::time::Duration::from_secs(60), r.unpack_verified(None))
            .await
            .expect("the archive was not asked for before SHA256SUMS was answered")
            .unwrap();
        assert_eq!(std::fs::read(u.dir().join("etcdctl")).unwrap(), vec![7u8; 3 << 20]);
        assert_eq!(digest::sha256_file(&r.cached_archive()).unwrap(), good);
        // SHA256SUMS lists another digest: refused, and the archive fetched beside it is gone.
        let url = http_mirror_answering_sums_after_the_archive(m.path(), line(&[9u8; 32])).await;
        let cache = tempfile::tempdir().unwrap();
        let r = unpinned(&url, cache.path());
        let e = r.ensure_cached().await.expect_err("an archive SHA256SUMS does not vouch for");
        assert!(matches!(e, ReleaseError::Mismatch { .. }), "{e}");
        assert!(!r.cached_archive().exists(), "the unverified archive was kept");
        // SHA256SUMS does not list the archive: its error is the one reported, nothing kept.
        let other = format!("{}  etcd-v3.5.30-linux-arm64.tar.gz\n", digest::to_hex(&good));
        let url = http_mirror_answering_sums_after_the_archive(m.path(), other).await;
        let cache = tempfile::tempdir().unwrap();
        let r = unpinned(&url, cache.path());
        let e = r.unpack_verified(None).await.expect_err("an archive SHA256SUMS does not list");
        assert!(matches!(e, ReleaseError::NotListed { .. }), "{e}");
        assert!(!r.cached_archive().exists(), "the unlisted archive was kept");
        assert_eq!(
            std::fs::read_dir(cache.path().join("v3.5.30"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            ["SHA256SUMS"],
            "only the mirror's SHA256SUMS is cached"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_download_is_unpacked_in_the_same_pass_and_counts_only_when_verified() {
        let (m, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let good = mirror(m.path(), "3.5.30", "3.5.30");
        let r = pinned(m.path(), cache.path(), &good);
        let u = r.unpack_verified(None).await.unwrap();
        assert_eq!(std::fs::read(u.dir().join("etcdctl")).unwrap(), vec![7u8; 3 << 20]);
        assert_eq!(
            digest::sha256_file(&r.cached_archive()).unwrap(),
            good,
            "the archive is cached"
        );
        let names = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let v = cache.path().join("v3.5.30");
        assert_eq!(
            names(&v),
            [
                format!("etcd-v3.5.30-linux-amd64.{}", &digest::to_hex(&good)[..16]),
                r.archive_name()
            ],
            "no staging directory or partial download left"
        );
        // A pinned digest the mirror's archive does not have: refused, nothing unpacked.
        let other = [9u8; 32];
        let cache2 = tempfile::tempdir().unwrap();
        let bad = pinned(m.path(), cache2.path(), &other);
        let e = bad.unpack_verified(None).await.expect_err("a digest mismatch is refused");
        assert!(matches!(e, ReleaseError::Mismatch { .. }), "{e}");
        assert!(
            names(&cache2.path().join("v3.5.30")).is_empty(),
            "nothing kept: {:?}",
            names(&cache2.path().join("v3.5.30"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_is_handed_over_ahead_of_the_rest_only_from_a_verified_archive_of_the_version() {
        let (m, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let good = mirror(m.path(), "3.5.30", "3.5.30");
        let r = pinned(m.path(), cache.path(), &good);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let u = r.unpack_verified(Some(tx)).await.unwrap();
        let ([staged, unpacked], priority) = rx.await.expect("etcd handed over ahead of the rest");
        assert!(priority.lowered(), "the rest was not to yield the CPU once etcd went ahead");
        assert!(staged.ends_with("etcd") && staged.parent() != Some(u.dir()), "{staged:?}");
        assert_eq!(unpacked, u.dir().join("etcd"));
        assert!(!staged.exists(), "the staging directory became the unpacked release");
        assert_eq!(
            std::fs::read(&unpacked).unwrap(),
            install::tests::fake_etcd("3.5.30"),
            "the etcd handed over is the archive's"
        );
        // An archive without the pinned digest: etcd is never handed over.
        let cache2 = tempfile::tempdir().unwrap();
        let bad = pinned(m.path(), cache2.path(), &[9u8; 32]);
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(bad.unpack_verified(Some(tx)).await.is_err());
        assert!(rx.await.is_err(), "etcd of an archive that failed verification was handed over");
        // A verified archive whose etcd reports another version: not handed over either.
        let (m3, cache3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let other = mirror(m3.path(), "3.5.30", "3.5.29");
        let wrong = pinned(m3.path(), cache3.path(), &other);
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(wrong.unpack_verified(Some(tx)).await.is_err());
        assert!(rx.await.is_err(), "etcd of another version was handed over");
    }
}
