//! What bootstrap does on a first boot while it discovers its peers, because none of it
//! depends on the decision: fetching (and unpacking) the release (`release::Prefetch`), and
//! creating the `etcd` user and the units with their `daemon-reload`
//! (`phases::prepare_units`). Form and join then find the units written and the release
//! ready, or its etcd ready to start while the rest unpacks. A failure here is only logged:
//! form and join do the same work again and report it.

use crate::config::Config;
use crate::release::Prefetch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub struct HeadStart {
    release: Option<Prefetch>,
    units: JoinHandle<Result<bool, crate::phases::PhaseError>>,
}

impl HeadStart {
    /// Starts both.
    pub fn start(c: &Config) -> HeadStart {
        let release = crate::phases::prefetch_release(c);
        let units = {
            let c = c.clone();
            tokio::task::spawn_blocking(move || crate::phases::prepare_units(&c))
        };
        HeadStart { release, units }
    }

    /// Waits for the units; returns the release's fetch for form or join (None: they fetch
    /// the release themselves).
    pub async fn finish(self) -> Option<Prefetch> {
        match self.units.await {
            Ok(Ok(true)) => info!("units written while discovering"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!("writing the units while discovering failed: {e}"),
            Err(e) => warn!("writing the units while discovering stopped: {e}"),
        }
        self.release
    }
}
