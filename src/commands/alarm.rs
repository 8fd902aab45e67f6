//! `etcdadm alarm list|disarm`: the edge of `maintenance::alarm`.

use crate::cli::Output;
use crate::cluster::{Cluster, TlsFiles};
use crate::config::Config;
use crate::maintenance::alarm;
use crate::outln;
use crate::state::State;
use anyhow::{Context, Result};

async fn connect(requested: &Config) -> Result<(State, Cluster, TlsFiles)> {
    let state = super::member_state(requested)?;
    let tls = TlsFiles::client(&state.member()?.pki);
    let cl = Cluster::connect_any(std::slice::from_ref(&state.member()?.local_endpoint), &tls)
        .await
        .context("cannot reach the local member; is etcd running?")?;
    Ok((state, cl, tls))
}

pub async fn list(requested: Config, output: Output) -> Result<()> {
    let (_, cl, _) = connect(&requested).await?;
    let alarms = alarm::list(&cl).await?;
    print(&alarms, output, "no alarm")
}

pub async fn disarm(requested: Config, output: Output) -> Result<()> {
    let (state, cl, tls) = connect(&requested).await?;
    let disarmed = alarm::disarm(&cl, &tls, state.config.quota_backend_bytes).await?;
    print(&disarmed, output, "no alarm to disarm")
}

fn print(alarms: &[alarm::Alarm], output: Output, none: &str) -> Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(alarms)?)?,
        Output::Table if alarms.is_empty() => outln!("{none}")?,
        Output::Table => {
            for a in alarms {
                outln!("{} on member {} ({})", a.alarm, a.name, a.member)?;
            }
        }
    }
    Ok(())
}
