//! What bootstrap does on a first boot before it decides, because none of it depends on the
//! decision: fetching (and unpacking) the release (`release::Prefetch`), from the start;
//! and, once discovery has answered with a peer set that lists this machine (and so names
//! its member), at the same time creating the `etcd` user and the units
//! (`phases::prepare_units`; no `daemon-reload` on a first boot with systemd 246 or later,
//! as systemd loads each new unit when it starts) and issuing the member's server and peer
//! certificates (`phases::certificates`). Form and join then find the units written, the
//! certificates issued and the release ready, or its etcd ready to start while the rest
//! unpacks. A failure here is only logged: form and join do the same work again and report
//! it. A run that fails before it decides removes the units again (`undo`): a
//! failed first boot leaves no etcd unit behind, and one whose discovery never answers
//! writes none.

use crate::config::Config;
use crate::member::LocalMember;
use crate::phases::UnitsAhead;
use crate::pki::Ca;
use crate::release::Prefetch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub struct HeadStart {
    release: Option<Prefetch>,
    units: Option<UnitsAhead>,
    certificates: Option<JoinHandle<anyhow::Result<()>>>,
    config: Config,
}

impl HeadStart {
    /// Starts fetching the release.
    pub fn start(c: &Config) -> HeadStart {
        HeadStart {
            release: crate::phases::prefetch_release(c),
            units: None,
            certificates: None,
            config: c.clone(),
        }
    }

    /// Starts writing the units and, beside them, issuing the certificates of member `name`
    /// (once; later calls do nothing): discovery has listed this machine as a peer.
    pub fn listed(&mut self, name: &str) {
        if self.units.is_some() {
            return;
        }
        self.units = Some(UnitsAhead::start(&self.config, "while discovering"));
        let (mut c, name) = (self.config.clone(), name.to_string());
        self.certificates = Some(tokio::task::spawn_blocking(move || {
            c.name = Some(name.parse().map_err(|e| anyhow::anyhow!("member name {name}: {e}"))?);
            let m = LocalMember::from_config(&c)?;
            let ca = Ca::load_existing(&m.pki.ca_cert, &m.pki.ca_key)?;
            crate::phases::certificates(&c, &m, &ca)?;
            Ok(())
        }));
    }

    /// Waits for the units and the certificates; returns the release's fetch for form or
    /// join (None: they fetch the release themselves).
    pub async fn finish(self) -> Option<Prefetch> {
        if let Some(units) = self.units {
            units.finish().await;
        }
        if let Some(certificates) = self.certificates {
            match certificates.await {
                Ok(Ok(())) => info!("member certificates ready while discovering"),
                Ok(Err(e)) => {
                    warn!("issuing the member certificates while discovering failed: {e:#}")
                }
                Err(e) => warn!("issuing the member certificates while discovering stopped: {e}"),
            }
        }
        self.release
    }

    /// After a run that failed before it decided to form or join: removes the units the
    /// head start wrote (`phases::unprepare_units`), so that a failed first boot leaves no
    /// etcd unit behind. The release stays in the cache, and the member certificates stay
    /// beside the client certificate issued before discovery (a later run reuses them).
    pub async fn undo(self) {
        if let Some(certificates) = self.certificates {
            let _ = certificates.await;
        }
        if let Some(units) = self.units {
            units.undo(&self.config).await;
        }
    }
}
