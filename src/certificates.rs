//! The member's certificates as operations: the CA made ahead of init (`etcdadm ca
//! create`), how long each certificate is valid (`etcdadm certs check`) and their renewal
//! from the local CA ahead of expiry, with at most one restart of the member (`etcdadm
//! certs renew` and its timer).

use crate::config::{Config, InitSystem};
use crate::member::PkiPaths;
use crate::membership::MembershipError;
use crate::metrics::timers;
use crate::phases;
use crate::phases::PhaseError;
use crate::pki::PkiError;
use crate::pki::{self, Ca, Lifetime};
use crate::service::Systemctl;
use crate::service::SystemctlError;
use crate::state::State;
use crate::state::StateError;

/// Why a certificate operation failed; each cause names its file or unit.
#[derive(Debug, thiserror::Error)]
pub enum CertificatesError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Membership(Box<MembershipError>),
    #[error(transparent)]
    Systemctl(#[from] SystemctlError),
    #[error(transparent)]
    Phase(#[from] PhaseError),
}

impl From<MembershipError> for CertificatesError {
    fn from(e: MembershipError) -> Self {
        CertificatesError::Membership(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, CertificatesError>;
use serde::Serialize;
use std::path::PathBuf;
use time::OffsetDateTime;
use tracing::info;

/// The CA in `certs-dir`, made unless it exists (then it is only checked); its paths.
pub fn create_ca(c: &Config) -> Result<PkiPaths> {
    let pki = PkiPaths::new(&c.certs_dir);
    Ca::load_or_create(&pki.ca_cert, &pki.ca_key, c.ca_validity_days)?;
    Ok(pki)
}

#[derive(Serialize)]
pub struct CertStatus {
    pub file: PathBuf,
    pub common_name: String,
    pub not_after: String,
    pub days_left: i64,
    /// `ok`, `renew` (inside the renewal window) or `expired`.
    pub status: &'static str,
}

/// The CA's and every member certificate's expiry, against the renewal window.
pub fn expiry(state: &State) -> Result<Vec<CertStatus>> {
    let c = &state.config;
    let m = state.member()?;
    let window = i64::from(c.cert_renew_within_days);
    let mut files = vec![m.pki.ca_cert.clone()];
    files.extend(pki::member_certs(&m, c).into_iter().map(|(_, cert, _)| cert));
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    for file in files {
        let (common_name, not_after) = pki::describe(&file)?;
        let days_left = (not_after - now).whole_days();
        let status = if not_after <= now {
            "expired"
        } else if days_left < window {
            "renew"
        } else {
            "ok"
        };
        rows.push(CertStatus {
            file,
            common_name,
            not_after: not_after.date().to_string(),
            days_left,
            status,
        });
    }
    Ok(rows)
}

/// Whether a renewal changed what etcd serves.
pub enum Renewal {
    /// Every certificate is valid beyond the renewal window.
    NothingDue { member: String },
    /// Renewed; etcd (when it ran) was restarted and is healthy again.
    Renewed { member: String },
}

/// Renews the member's certificates that are due (all with `force`); afterwards, whatever
/// its outcome, the expiry of every certificate of the member as on disk goes to the
/// textfile metrics.
pub async fn renew(state: State, force: bool, validity_days: Option<u32>) -> Result<Renewal> {
    let certs = timers::member_certificates(&state.member()?.pki);
    // the directory the member was set up with, which its timer's sandbox lets it write
    let metrics_dir = state.config.metrics_textfile_dir.clone();
    let result = renew_member(state, force, validity_days).await;
    let ok = result.is_ok();
    timers::record(&metrics_dir, "certs renew", |d| {
        timers::write_certs(d, std::time::SystemTime::now(), ok, &certs)
    });
    result
}

async fn renew_member(state: State, force: bool, validity_days: Option<u32>) -> Result<Renewal> {
    let mut c = state.config.clone();
    if let Some(days) = validity_days {
        c.cert_validity_days = days;
    }
    let m = state.member()?;
    let ca = Ca::load_existing(&m.pki.ca_cert, &m.pki.ca_key)?;
    let restarts = c.init_system == InitSystem::Systemd
        && Systemctl::state(&c.unit_name()) == "active"
        && pki::member_certs(&m, &c).iter().any(|(spec, cert, key)| {
            spec.server_auth && (force || ca.is_due(spec, cert, key, Lifetime::of(&c)))
        });
    // Checked before anything is written: a refused renewal leaves the due certificates
    // due, so the next run (the timer's) tries again. A leader hands leadership over first.
    if restarts {
        crate::membership::planned_stop::prepare(&m, &state, "renewing the certificates", force)
            .await?;
    }
    let mut served_changed = false;
    for (spec, cert, key) in pki::member_certs(&m, &c) {
        let renewed = if force {
            ca.issue(&spec, &cert, &key, c.cert_validity_days)?;
            true
        } else {
            ca.ensure_cert(&spec, &cert, &key, Lifetime::of(&c))?
        };
        served_changed |= renewed && spec.server_auth;
    }
    if !served_changed {
        return Ok(Renewal::NothingDue { member: m.name });
    }
    if restarts {
        info!("restarting etcd to serve the renewed certificates");
        // Waits for the restart job itself: health checked right after a queued restart
        // could be answered by the old process, and `renew` (or the next member's renewal)
        // would go on while this member is still restarting.
        Systemctl::restart_wait(&c.unit_name(), c.timeout()).await?;
        phases::wait_healthy(&c, &m).await?;
    }
    // Later runs (and the timer) renew with the validity used now.
    if validity_days.is_some() {
        let mut state = state;
        state.config.cert_validity_days = c.cert_validity_days;
        state.save()?;
    }
    Ok(Renewal::Renewed { member: m.name })
}
