//! `etcdadm discover`: the edge of `bootstrap::preview`, what bootstrap on this machine
//! would see, printed as a table or JSON; on failure the last set seen is printed first.

use crate::bootstrap::preview::{self, Report, Request, Unfinished};
use crate::cli::Output;
use crate::config::ConfigSources;
use crate::{out, outln};
use anyhow::Result;

pub async fn run(sources: ConfigSources, req: Request, output: Output) -> Result<()> {
    match preview::discover(sources, req).await {
        Ok(report) => print(&report, output),
        Err(Unfinished { last, error }) => {
            if let Some(r) = &last {
                print(r, output)?;
            }
            Err(error)
        }
    }
}

fn print(r: &Report, output: Output) -> Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(r)?)?,
        Output::Table => out!("{}", table(r))?,
    }
    Ok(())
}

fn table(r: &Report) -> String {
    let expected = r.expected.map_or("?".to_string(), |n| n.to_string());
    let mut out = format!(
        "{}: {} of {expected} peers, {}{}\n",
        r.provider,
        r.peers.len(),
        if r.complete { "complete" } else { "incomplete" },
        if r.authoritative { " (authoritative: members outside it are removed)" } else { "" },
    );
    let width = r.peers.iter().map(|p| p.name.len()).max().unwrap_or(0).max(4);
    let url_width = r.peers.iter().map(|p| p.peer_url.len()).max().unwrap_or(0).max(8);
    out.push_str(&format!("  {:width$}  {:url_width$}  CLIENT URL\n", "NAME", "PEER URL"));
    for p in &r.peers {
        let mark = if p.this_machine { "*" } else { " " };
        out.push_str(&format!(
            "{mark} {:width$}  {:url_width$}  {}\n",
            p.name, p.peer_url, p.client_url
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::preview::PeerView;

    fn sample(complete: bool) -> Report {
        Report {
            provider: "dns",
            peers: vec![
                PeerView {
                    name: "etcd-a".into(),
                    peer_url: "https://10.0.0.1:2380".into(),
                    client_url: "https://10.0.0.1:2379".into(),
                    this_machine: true,
                },
                PeerView {
                    name: "etcd-b".into(),
                    peer_url: "https://10.0.0.2:2380".into(),
                    client_url: "https://10.0.0.2:2379".into(),
                    this_machine: false,
                },
            ],
            expected: Some(if complete { 2 } else { 3 }),
            complete,
            authoritative: false,
            rounds: 2,
            attempts: 3,
        }
    }

    #[test]
    fn table_lists_peers_and_marks_this_machine() {
        let t = table(&sample(false));
        assert_eq!(
            t,
            "dns: 2 of 3 peers, incomplete\n  NAME    PEER URL               CLIENT URL\n\
             * etcd-a  https://10.0.0.1:2380  https://10.0.0.1:2379\n  etcd-b  https://10.0.0.2:2380  https://10.0.0.2:2379\n"
        );
    }

    #[test]
    fn json_fields_are_kebab_case() {
        let v = serde_json::to_value(sample(true)).unwrap();
        assert_eq!(v["complete"], true);
        assert_eq!(v["peers"][0]["peer-url"], "https://10.0.0.1:2380");
        assert_eq!(v["peers"][0]["this-machine"], true);
        assert_eq!((v["rounds"].as_u64(), v["attempts"].as_u64()), (Some(2), Some(3)));
    }
}
