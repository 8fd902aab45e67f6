//! Name resolution without libc's NSS (a static binary must not call getaddrinfo): hickory
//! reads /etc/hosts and /etc/resolv.conf itself.

use hickory_resolver::TokioResolver;
use std::net::IpAddr;

/// Why a name did not resolve; the resolver's own error is the source.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot set up DNS resolution")]
    Setup(#[source] hickory_resolver::net::NetError),
    #[error("cannot resolve {name}")]
    Lookup {
        name: String,
        #[source]
        cause: hickory_resolver::net::NetError,
    },
    #[error("{0} has no address")]
    NoAddress(String),
}

pub async fn resolve_host(name: &str) -> Result<Vec<IpAddr>, DnsError> {
    let resolver =
        TokioResolver::builder_tokio().and_then(|b| b.build()).map_err(DnsError::Setup)?;
    let found = resolver
        .lookup_ip(name)
        .await
        .map_err(|cause| DnsError::Lookup { name: name.to_string(), cause })?;
    let ips: Vec<IpAddr> = found.iter().collect();
    if ips.is_empty() {
        return Err(DnsError::NoAddress(name.to_string()));
    }
    Ok(ips)
}
