//! A release fetched in the background (bootstrap's head start, while it discovers its
//! peers): the whole release once unpacked, or before that its etcd binary alone, verified,
//! so that etcd can start while etcdctl and etcdutl are still unpacking.

use super::{io_err, Release, ReleaseError, RestPriority, Unpacked};
use crate::fsutil::{place_if_changed, MODE_EXEC};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The background fetch.
pub struct Prefetch {
    etcd: oneshot::Receiver<([PathBuf; 2], RestPriority)>,
    whole: JoinHandle<Result<Unpacked, ReleaseError>>,
}

/// What of a prefetched release is ready.
pub enum Ready {
    Whole(Unpacked),
    EtcdFirst(EtcdFirst),
}

/// The verified etcd binary of a release whose other binaries are still unpacking.
pub struct EtcdFirst {
    /// Its path while the rest unpacks, and once the unpacked release is in place.
    etcd: [PathBuf; 2],
    rest: JoinHandle<Result<Unpacked, ReleaseError>>,
    /// Of the thread unpacking the rest: lowered until `Ready::whole` waits for it.
    priority: RestPriority,
}

impl Prefetch {
    /// Starts fetching `release` (nothing when `install_dir` holds it already).
    pub fn start(release: Release, install_dir: PathBuf) -> Prefetch {
        let (tx, etcd) = oneshot::channel();
        let whole =
            tokio::spawn(async move { release.ensure_unpacked(&install_dir, Some(tx)).await });
        Prefetch { etcd, whole }
    }

    /// Waits until the whole release or its etcd binary is ready, whichever comes first;
    /// None when fetching failed (logged: the caller fetches again and reports).
    pub async fn first_ready(self) -> Option<Ready> {
        let Prefetch { mut etcd, mut whole } = self;
        tokio::select! {
            biased;
            r = &mut whole => finished(r).map(Ready::Whole),
            Ok((etcd, priority)) = &mut etcd => {
                Some(Ready::EtcdFirst(EtcdFirst { etcd, rest: whole, priority }))
            }
        }
    }
}

impl Ready {
    /// The whole release, once unpacked (the rest unpacks at its usual priority again
    /// meanwhile); None when that failed (logged).
    pub async fn whole(self) -> Option<Unpacked> {
        match self {
            Ready::Whole(u) => Some(u),
            Ready::EtcdFirst(first) => {
                first.priority.restore();
                finished(first.rest.await)
            }
        }
    }
}

impl EtcdFirst {
    /// Installs the etcd binary alone into `install_dir` (unchanged if it is there already).
    /// False when it is in neither of its places: the unpacking failed meanwhile, and
    /// `rest` says why.
    pub fn install_etcd(&self, install_dir: &Path) -> Result<bool, ReleaseError> {
        let to = install_dir.join("etcd");
        for from in &self.etcd {
            match place_if_changed(from, &to, MODE_EXEC) {
                Ok(changed) => {
                    if changed {
                        info!(file = %to.display(), "installed etcd ahead of etcdctl and etcdutl");
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(install_dir)(e)),
            }
        }
        Ok(false)
    }
}

fn finished(r: Result<Result<Unpacked, ReleaseError>, tokio::task::JoinError>) -> Option<Unpacked> {
    match r {
        Ok(Ok(u)) => {
            info!(dir = %u.dir().display(), "release ready (fetched in the background)");
            Some(u)
        }
        Ok(Err(e)) => {
            warn!("fetching the release in the background failed: {e}");
            None
        }
        Err(e) => {
            warn!("fetching the release in the background stopped: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(etcd: [PathBuf; 2]) -> EtcdFirst {
        let rest = tokio::spawn(async {
            Err(ReleaseError::Archive { path: "a".into(), message: "test".into() })
        });
        EtcdFirst { etcd, rest, priority: RestPriority::default() }
    }

    #[tokio::test]
    async fn etcd_is_installed_from_staging_or_once_the_release_moved_into_place_from_there() {
        let d = tempfile::tempdir().unwrap();
        let (staged, unpacked, bin) =
            (d.path().join("s"), d.path().join("u"), d.path().join("bin"));
        std::fs::write(&unpacked, b"etcd-binary").unwrap();
        // The staging directory was renamed into place meanwhile: etcd is taken from there.
        assert!(first([staged.clone(), unpacked.clone()]).install_etcd(&bin).unwrap());
        assert_eq!(std::fs::read(bin.join("etcd")).unwrap(), b"etcd-binary");
        std::fs::write(&staged, b"staged-etcd").unwrap();
        assert!(first([staged, unpacked.clone()]).install_etcd(&bin).unwrap());
        assert_eq!(std::fs::read(bin.join("etcd")).unwrap(), b"staged-etcd", "staging comes first");
        // In neither place (the unpacking failed and removed it): nothing installed, false.
        let gone = d.path().join("gone");
        let f = first([gone.clone(), gone]);
        assert!(!f.install_etcd(&d.path().join("bin2")).unwrap());
        assert!(!d.path().join("bin2").join("etcd").exists());
        f.priority.lower();
        let priority = f.priority.clone();
        assert!(
            Ready::EtcdFirst(f).whole().await.is_none(),
            "the rest's failure is reported as None"
        );
        assert!(!priority.lowered(), "waiting for the rest left it at the lowest priority");
    }
}
