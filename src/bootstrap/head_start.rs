//! What bootstrap does on a first boot while it discovers its peers, because none of it
//! depends on the decision: fetching (and unpacking) the release (`release::Prefetch`), and
//! creating the `etcd` user and the units with their `daemon-reload`
//! (`phases::prepare_units`). Form and join then find both done, or the release's etcd
//! ready to start while the rest unpacks. A failure here is only logged: form and join do
//! the same work again and report it.

use crate::config::Config;
use crate::release::{Prefetch, Ready, Release};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub struct HeadStart {
    release: Option<Prefetch>,
    units: JoinHandle<Result<bool, crate::phases::PhaseError>>,
}

impl HeadStart {
    /// Starts both. `fetch_release` is false when the configured version is refused (form
    /// and join then report why).
    pub fn start(c: &Config, fetch_release: bool) -> HeadStart {
        let release = fetch_release
            .then(|| Prefetch::start(Release::from_config(c), c.install_dir.to_path_buf()));
        let units = {
            let c = c.clone();
            tokio::task::spawn_blocking(move || crate::phases::prepare_units(&c))
        };
        HeadStart { release, units }
    }

    /// Waits for the units, and for the release or its etcd binary alone, for form or join
    /// (None: they fetch the release themselves).
    pub async fn finish(self) -> Option<Ready> {
        match self.units.await {
            Ok(Ok(true)) => info!("units written while discovering"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!("writing the units while discovering failed: {e}"),
            Err(e) => warn!("writing the units while discovering stopped: {e}"),
        }
        self.release?.first_ready().await
    }
}
