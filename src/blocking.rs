//! Blocking calls made from async code: child processes (systemctl, systemd-sysusers,
//! `etcd --version`, etcdutl) run without holding one of the runtime's two async workers,
//! so the other tasks (sd_notify keep-alives, health polls, downloads) go on meanwhile.
//! Every child process etcdadm waits for goes through [`output`] or [`output_within`]
//! (tests/architecture.rs checks that no other module waits for one itself).

use std::io;
use std::process::{Command, Output};

/// Runs a blocking call so that it does not hold one of the runtime's async workers: on a
/// multi-threaded runtime the worker hands its tasks to another thread first
/// (`block_in_place`); elsewhere (no runtime, or a single-threaded test runtime) the call
/// simply runs.
pub fn off_async_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `cmd` to completion, collecting its output, off the async workers.
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    off_async_workers(|| cmd.output())
}

/// Runs `cmd` as an async child process and collects its output; None when it did not end
/// within `timeout`, in which case the child is killed.
pub async fn output_within(
    mut cmd: tokio::process::Command,
    timeout: std::time::Duration,
) -> Option<io::Result<Output>> {
    cmd.kill_on_drop(true);
    tokio::time::timeout(timeout, cmd.output()).await.ok()
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
