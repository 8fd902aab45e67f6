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

impl Systemctl {
    fn run(args: &[&str]) -> Result<String> {
        debug!(?args, "systemctl");
        let out = crate::blocking::output(Command::new("systemctl").args(args))
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

    /// Whether systemd knows none of `units` (each `not-found`) and is recent enough (246
    /// and later) to load a unit file written afterwards on its first use without a
    /// daemon-reload: it reads the unit directories again once they changed since the unit
    /// was not found. A reload costs a few hundred milliseconds under load; on any doubt
    /// (an older or unreadable version, a unit it knows) this says false.
    pub fn all_unknown(units: &[&str]) -> bool {
        // Both questions at once: each is a child process, tens of milliseconds on a busy
        // first boot, and this runs on the way to etcd's start.
        let (version, states) = std::thread::scope(|s| {
            let version = s.spawn(|| Self::run(&["--version"]));
            let states = Self::run(&[&["show", "--property=LoadState"], units].concat());
            (version.join().ok().and_then(Result::ok), states)
        });
        let recent = version.is_some_and(|v| {
            v.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 246)
        });
        recent
            && states.is_ok_and(|out| {
                let states: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
                states.len() == units.len() && states.iter().all(|l| *l == "LoadState=not-found")
            })
    }

    /// Enables and starts in one call, without the implicit daemon-reload (the caller
    /// reloaded after writing the units, or did not need to: `all_unknown`) and without
    /// waiting for the start jobs (see `start_no_block`).
    pub fn enable_now_no_block(units: &[&str]) -> Result<()> {
        Self::run(&[&["enable", "--now", "--no-reload", "--no-block", "--quiet"], units].concat())
            .map(|_| ())
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
        cmd.args(["restart", unit]);
        let out = match crate::blocking::output_within(cmd, timeout).await {
            Some(out) => out.map_err(SystemctlError::Spawn)?,
            None => {
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
        crate::blocking::output(Command::new("systemctl").args(["is-active", unit]))
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }
}
