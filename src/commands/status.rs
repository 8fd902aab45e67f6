//! `etcdadm status`: the whole cluster at a glance — members, leader, how far each lags
//! behind the leader's raft index, database sizes, alarms — and this member's certificate
//! expiry.

use crate::cli::Output;
use crate::cluster::format_id;
use crate::config::Config;
use crate::outln;
use crate::overview::{self, Status};
use anyhow::Result;

pub async fn run(requested: Config, output: Output) -> Result<()> {
    let state = super::member_state(&requested)?;
    let status = overview::status(&state).await?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&status)?)?,
        Output::Table => print_table(&status)?,
    }
    Ok(())
}

fn print_table(s: &Status) -> Result<()> {
    let c = &s.cluster;
    outln!("{}", c.header())?;
    outln!(
        "{:<18} {:<16} {:<8} {:<8} {:>18} {:>9}",
        "ID",
        "NAME",
        "ROLE",
        "VERSION",
        "DB (OF QUOTA)",
        "RAFT LAG"
    )?;
    for v in &c.members {
        let id = format_id(v.member.id);
        let role = v.role();
        let lag = s
            .raft_lag
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("-".to_string(), |(_, l)| l.to_string());
        let (version, db) = v.status.as_ref().map_or(("-".into(), "-".into()), |st| {
            let percent = st.db_size.max(0) as u64 * 100 / s.quota_backend_bytes.max(1);
            (st.version.clone(), format!("{} kB ({percent}%)", st.db_size / 1024))
        });
        outln!(
            "{id:<18} {:<16} {role:<8} {version:<8} {db:>18} {lag:>9}",
            if v.member.name.is_empty() { "(unstarted)" } else { &v.member.name }
        )?;
    }
    if s.alarms.is_empty() {
        outln!("alarms: none")?;
    }
    for (id, a) in &s.alarms {
        outln!("ALARM {a} on member {id}")?;
    }
    for (file, days) in &s.cert_days_left {
        outln!("certificate {file}: {days} days left")?;
    }
    Ok(())
}
