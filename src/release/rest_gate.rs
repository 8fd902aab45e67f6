//! Holding back the unpacking of a release's other binaries (etcdctl, etcdutl) while etcd,
//! unpacked ahead of them, starts.
//!
//! Nothing needs those binaries before the member is healthy, and unpacking them is most of
//! the release's CPU (about 0.1 s of gunzip here). Lowering the thread's nice value yields
//! only to threads of the same cgroup: etcd.service, the units of a machine's boot and the
//! other machines sharing a host are in cgroups of their own. So once etcd is unpacked, the
//! thread waits until the caller asks for the rest (or drops its hold), at most
//! `HOLD_MAX`: a caller that never does only delays the rest.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest the rest waits for its caller.
const HOLD_MAX: Duration = Duration::from_secs(120);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not held (yet): the thread goes on.
    #[default]
    Open,
    Held,
    /// Let go, for good: a later `hold` does nothing.
    Released,
}

/// Shared by the unpacking thread and the one `RestHold` its caller gets.
#[derive(Debug, Clone, Default)]
pub(super) struct RestGate(Arc<(Mutex<State>, Condvar)>);

impl RestGate {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0 .0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the thread at its next `wait` (unless released already).
    pub(super) fn hold(&self) {
        let mut s = self.state();
        if *s == State::Open {
            *s = State::Held;
        }
    }

    /// Lets the thread go on, now and at every later `hold`.
    pub(super) fn release(&self) {
        *self.state() = State::Released;
        self.0 .1.notify_all();
    }

    /// Returns at once unless held; else once released, at most `max` later.
    fn wait_at_most(&self, max: Duration) {
        let until = Instant::now() + max;
        let mut s = self.state();
        while *s == State::Held {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            s = self.0 .1.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// On the unpacking thread: waits while held, at most `HOLD_MAX`.
    pub(super) fn wait(&self) {
        self.wait_at_most(HOLD_MAX)
    }

    #[cfg(test)]
    pub(super) fn held(&self) -> bool {
        *self.state() == State::Held
    }
}

/// The caller's hold on the rest: the rest unpacks once it is released or dropped.
#[derive(Debug)]
pub struct RestHold(pub(super) RestGate);

impl RestHold {
    /// Lets the rest unpack, as dropping the hold does.
    pub fn release(self) {}
}

impl Drop for RestHold {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_thread_waits_until_released_and_a_release_before_the_hold_holds_nothing() {
        let gate = RestGate::default();
        gate.hold();
        let (g, (tx, rx)) = (gate.clone(), std::sync::mpsc::channel());
        let t = std::thread::spawn(move || {
            g.wait();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "a held thread went on before its release"
        );
        RestHold(gate.clone()).release();
        rx.recv_timeout(Duration::from_secs(30)).expect("a released thread still waited");
        t.join().unwrap();
        // Released first (the caller let go before the thread reached etcd's end): held never.
        gate.hold();
        assert!(!gate.held(), "a hold after the release held the thread");
        gate.wait();
    }

    #[test]
    fn a_hold_nobody_releases_ends_after_its_bound() {
        let gate = RestGate::default();
        gate.hold();
        gate.wait_at_most(Duration::from_millis(50));
        assert!(gate.held(), "the bound ended the wait, not a release");
    }
}
