//! systemctl, the one init system etcdadm drives.

use std::process::Command;
use tracing::debug;

pub struct Systemctl;

/// Why a systemctl call failed.
#[derive(Debug, thiserror::Error)]
pub enum SystemctlError {
    #[error("cannot run systemctl; etcdadm needs systemd as the init system")]
    Spawn(#[source] std::io::Error),
    #[error("`systemctl {command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("`systemctl {command}` did not finish within {seconds}s")]
    TimedOut { command: String, seconds: u64 },
}

type Result<T> = std::result::Result<T, SystemctlError>;

/// Runs a blocking call (a systemctl process: up to seconds while systemd reloads) so that
/// it does not hold one of the runtime's two async workers: on a multi-threaded runtime the
/// worker hands its tasks to another thread first (`block_in_place`); elsewhere (no
/// runtime, or a single-threaded test runtime) the call simply runs.
fn off_async_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Systemctl {
    fn run(args: &[&str]) -> Result<String> {
        debug!(?args, "systemctl");
        let out = off_async_workers(|| Command::new("systemctl").args(args).output())
            .map_err(SystemctlError::Spawn)?;
        if !out.status.success() {
            return Err(SystemctlError::Failed {
                command: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn daemon_reload() -> Result<()> {
        Self::run(&["daemon-reload"]).map(|_| ())
    }

    /// Enables units without the implicit daemon-reload (the caller reloaded after writing
    /// them): one call, as each reload costs a few hundred milliseconds.
    pub fn enable_no_reload(units: &[&str]) -> Result<()> {
        Self::run(&[&["enable", "--no-reload", "--quiet"], units].concat()).map(|_| ())
    }

    pub fn disable_now(unit: &str) -> Result<()> {
        Self::run(&["disable", "--now", "--quiet", unit]).map(|_| ())
    }

    pub fn disable(unit: &str) -> Result<()> {
        Self::run(&["disable", "--quiet", unit]).map(|_| ())
    }

    /// Starts without waiting for readiness: the caller waits for etcd health itself, which
    /// also avoids deadlocks when called from a unit ordered before etcd.
    pub fn start_no_block(units: &[&str]) -> Result<()> {
        Self::run(&[&["start", "--no-block"], units].concat()).map(|_| ())
    }

    /// Restarts and waits for the start job: with `Type=notify` it ends when etcd reports
    /// ready, or fails when etcd exits. Gives up after `timeout` (the job stays queued).
    pub async fn restart_wait(unit: &str, timeout: std::time::Duration) -> Result<()> {
        debug!(unit, "systemctl restart");
        let mut cmd = tokio::process::Command::new("systemctl");
        cmd.args(["restart", unit]).kill_on_drop(true);
        let out = match tokio::time::timeout(timeout, cmd.output()).await {
            Ok(out) => out.map_err(SystemctlError::Spawn)?,
            Err(_) => {
                return Err(SystemctlError::TimedOut {
                    command: format!("restart {unit}"),
                    seconds: timeout.as_secs(),
                })
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(SystemctlError::Failed {
                command: format!("restart {unit}"),
                stderr: stderr.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
        Ok(())
    }

    /// Forgets a failed state and the start rate limit, so a start is not refused.
    pub fn reset_failed(unit: &str) -> Result<()> {
        Self::run(&["reset-failed", unit]).map(|_| ())
    }

    pub fn stop(unit: &str) -> Result<()> {
        Self::run(&["stop", unit]).map(|_| ())
    }

    /// `active`, `activating`, `failed`, `inactive`, ...
    pub fn state(unit: &str) -> String {
        Command::new("systemctl")
            .args(["is-active", unit])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::off_async_workers;

    #[test]
    fn a_blocking_call_on_a_worker_lets_the_other_tasks_run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel();
            let (started, blocking) = tokio::sync::oneshot::channel();
            // With one worker, the sender runs while the call blocks only if the call gave
            // the worker up; otherwise the receive times out and the send fails.
            let blocked = tokio::spawn(async move {
                started.send(()).unwrap();
                off_async_workers(|| rx.recv_timeout(std::time::Duration::from_secs(10)))
            });
            blocking.await.unwrap();
            let sender = tokio::spawn(async move { tx.send(()).is_ok() });
            let sent = tokio::time::timeout(std::time::Duration::from_secs(5), sender).await;
            assert!(matches!(sent, Ok(Ok(true))), "the other task did not run: {sent:?}");
            assert_eq!(blocked.await.unwrap(), Ok(()));
        });
        assert_eq!(off_async_workers(|| 7), 7, "outside a runtime the call just runs");
    }
}
