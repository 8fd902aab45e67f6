//! `etcdadm info`: this member and its cluster (`crate::overview`), as a table or JSON.

use crate::cli::Output;
use crate::cluster::format_id;
use crate::config::Config;
use crate::outln;
use crate::overview::{self, Info};
use crate::state::State;
use anyhow::{bail, Result};

pub async fn run(requested: Config, output: Output) -> Result<()> {
    let Some(state) = State::load(&requested.state_file)? else {
        bail!("no member set up by etcdadm on this machine ({} does not exist); run `etcdadm init` or `etcdadm join` first", requested.state_file.display());
    };
    let info = overview::info(&state).await?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&info)?)?,
        Output::Table => print_table(&info)?,
    }
    Ok(())
}

fn print_table(info: &Info) -> Result<()> {
    let l = &info.local;
    outln!(
        "member {} (id {}): {}, set up by `etcdadm {}`, etcd {}, {}",
        l.name,
        l.id.as_deref().unwrap_or("-"),
        l.progress.as_str(),
        l.origin.as_str(),
        l.etcd_version,
        l.service
    )?;
    outln!("client {}  peer {}  data {}", l.client_url, l.peer_url, l.data_dir)?;
    let Some(c) = &info.cluster else {
        outln!("cluster: unreachable: {}", info.error.as_deref().unwrap_or("unknown error"))?;
        return Ok(());
    };
    outln!("{}", c.header())?;
    outln!()?;
    let rows: Vec<[String; 7]> = c
        .members
        .iter()
        .map(|v| {
            let role = v.role();
            let (version, db, index) = match &v.status {
                Some(s) => (
                    s.version.clone(),
                    format!("{} kB", s.db_size / 1024),
                    s.raft_index.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let name =
                if v.member.name.is_empty() { "(unstarted)".into() } else { v.member.name.clone() };
            let health = v
                .error
                .clone()
                .map(|e| e.chars().take(40).collect())
                .unwrap_or_else(|| "ok".into());
            [format_id(v.member.id), name, role.into(), version, db, index, health]
        })
        .collect();
    let header = ["ID", "NAME", "ROLE", "VERSION", "DB", "RAFT INDEX", "HEALTH"].map(String::from);
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        outln!("{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
