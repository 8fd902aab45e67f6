//! `etcdadm join`: add this machine to a running cluster. The operation is
//! `membership::join`; this edge parses the endpoints and prints the outcome.

use crate::cluster::format_id;
use crate::config::Config;
use crate::member::LocalMember;
use crate::membership::join::{join, Request};
use crate::net;
use crate::outln;
use anyhow::{bail, Context, Result};

pub async fn run(mut c: Config, req: Request) -> Result<()> {
    let m = LocalMember::from_config(&c)?;
    c.name = Some(m.name.parse().map_err(|e| anyhow::anyhow!("member name: {e}"))?);
    let whole = req.phase.is_none();
    match join(&c, &m, req).await? {
        None if whole => {
            outln!("etcd member {} is already a voting member; nothing to do", m.name)?
        }
        Some(id) if whole => outln!(
            "etcd member {} joined the cluster as a voting member (id {})",
            m.name,
            format_id(id)
        )?,
        _ => {}
    }
    Ok(())
}

/// Accepts `host`, `host:port` or full URLs; plain hosts get https and the client port.
pub fn parse_endpoints(list: &str, default_port: u16) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let with_scheme =
            if raw.contains("://") { raw.to_string() } else { format!("https://{raw}") };
        let url = url::Url::parse(&with_scheme)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host_str().is_some())
            .with_context(|| {
                format!("endpoint {raw:?} is not a client URL like https://10.0.0.1:2379")
            })?;
        let host =
            net::Host::parse(url.host_str().unwrap_or_default()).map_err(anyhow::Error::msg)?;
        out.push(net::https_url(&host, url.port().unwrap_or(default_port)));
    }
    if out.is_empty() {
        bail!("no endpoint given; pass the client URL of a member, e.g. `etcdadm join https://10.0.0.1:2379`");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            parse_endpoints("10.0.0.1, https://10.0.0.2:3000,[fd00::3],etcd-a:2379", 2379).unwrap(),
            [
                "https://10.0.0.1:2379",
                "https://10.0.0.2:3000",
                "https://[fd00::3]:2379",
                "https://etcd-a:2379"
            ]
        );
        assert!(parse_endpoints("http://10.0.0.1:2379", 2379).is_err());
        assert!(parse_endpoints(" , ", 2379).is_err());
    }
}
