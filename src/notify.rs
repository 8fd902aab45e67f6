//! Progress and readiness reported to systemd (`Type=notify` units). A no-op outside
//! systemd (no NOTIFY_SOCKET), so commands behave the same when run by hand.

use sd_notify::NotifyState;
use std::time::Duration;
use tracing::{debug, info};

/// Sets the unit's status line (and logs it).
pub fn status(text: &str) {
    info!("{text}");
    send(&[NotifyState::Status(text)]);
}

/// Tells systemd the unit is ready.
pub fn ready(text: &str) {
    info!("{text}");
    send(&[NotifyState::Status(text), NotifyState::Ready]);
}

/// Asks systemd for `by` more start-up time.
pub fn extend_timeout(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// While it lives, keeps extending the start timeout, so a legitimate wait (peers booting,
/// a learner catching up) is not killed by TimeoutStartSec; bootstrap's own deadline bounds
/// the wait instead.
pub struct TimeoutExtender(tokio::task::JoinHandle<()>);

impl TimeoutExtender {
    pub fn start() -> TimeoutExtender {
        TimeoutExtender(tokio::spawn(async {
            loop {
                extend_timeout(Duration::from_secs(90));
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }))
    }
}

impl Drop for TimeoutExtender {
    fn drop(&mut self) {
        self.0.abort();
    }
}
