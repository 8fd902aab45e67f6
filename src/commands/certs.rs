//! `etcdadm certs check` and `etcdadm certs renew`: the edge of `crate::certificates`.

use crate::certificates::{self, Renewal};
use crate::cli::Output;
use crate::config::Config;
use crate::outln;
use anyhow::Result;

pub fn check(requested: Config, output: Output) -> Result<()> {
    let state = super::member_state(&requested)?;
    let rows = certificates::expiry(&state)?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&rows)?)?,
        Output::Table => {
            outln!(
                "{:<48} {:<28} {:<11} {:>9}  STATUS",
                "FILE",
                "COMMON NAME",
                "EXPIRES",
                "DAYS LEFT"
            )?;
            for r in &rows {
                outln!(
                    "{:<48} {:<28} {:<11} {:>9}  {}",
                    r.file.display(),
                    r.common_name,
                    r.not_after,
                    r.days_left,
                    r.status
                )?;
            }
            outln!(
                "(renewal window: {} days; `etcdadm certs renew` renews what is inside it)",
                state.config.cert_renew_within_days
            )?;
        }
    }
    Ok(())
}

pub async fn renew(requested: Config, force: bool, validity_days: Option<u32>) -> Result<()> {
    let state = super::member_state(&requested)?;
    match certificates::renew(state, force, validity_days).await? {
        Renewal::NothingDue { member } => outln!(
            "certificates of member {member} are valid beyond the renewal window; nothing to do"
        )?,
        Renewal::Renewed { member } => {
            outln!("renewed the certificates of member {member}; etcd is healthy")?
        }
    }
    Ok(())
}
