//! Name resolution without libc's NSS (a static binary must not call getaddrinfo): hickory
//! reads /etc/hosts and /etc/resolv.conf itself.

use hickory_resolver::TokioResolver;
use std::net::IpAddr;

pub async fn resolve_host(name: &str) -> Result<Vec<IpAddr>, String> {
    let resolver = TokioResolver::builder_tokio()
        .and_then(|b| b.build())
        .map_err(|e| format!("cannot set up DNS resolution: {e}"))?;
    let found =
        resolver.lookup_ip(name).await.map_err(|e| format!("cannot resolve {name}: {e}"))?;
    let ips: Vec<IpAddr> = found.iter().collect();
    if ips.is_empty() {
        return Err(format!("{name} has no address"));
    }
    Ok(ips)
}
