//! Addresses and URLs: host parsing, IPv6 bracketing, and choosing the advertise address.

pub use crate::cli::values::Host;
use std::net::IpAddr;

/// `https://host:port` with IPv6 bracketed.
pub fn https_url(host: &Host, port: u16) -> String {
    format!("https://{}:{port}", host.url_host())
}

/// Why no advertise address could be picked.
#[derive(Debug, thiserror::Error)]
pub enum AdvertiseError {
    #[error("cannot list network interfaces")]
    Interfaces(#[source] nix::Error),
    #[error("no global IP address found on any interface; set advertise-address")]
    NoAddress,
    #[error(
        "no default route and several addresses ({}); set advertise-address to the one peers should use",
        .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous(Vec<IpAddr>),
}

/// Picks the address to advertise when none is configured: the address of the interface
/// holding the default route, else the machine's single global address. With no default
/// route and several candidates, fails and lists them.
pub fn detect_advertise_address() -> Result<IpAddr, AdvertiseError> {
    let addrs = interface_addresses().map_err(AdvertiseError::Interfaces)?;
    if let Some(iface) = default_route_interface() {
        if let Some((_, ip)) = addrs.iter().find(|(i, ip)| *i == iface && ip.is_ipv4()) {
            return Ok(*ip);
        }
        if let Some((_, ip)) = addrs.iter().find(|(i, _)| *i == iface) {
            return Ok(*ip);
        }
    }
    let global: Vec<IpAddr> = addrs.iter().map(|(_, ip)| *ip).collect();
    match global.as_slice() {
        [one] => Ok(*one),
        [] => Err(AdvertiseError::NoAddress),
        _ => Err(AdvertiseError::Ambiguous(global)),
    }
}

/// Global unicast addresses by interface name (no loopback, no link-local).
fn interface_addresses() -> nix::Result<Vec<(String, IpAddr)>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs()? {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if is_global_candidate(&ip) {
            out.push((ifa.interface_name, ip));
        }
    }
    Ok(out)
}

fn is_global_candidate(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

/// The interface of the IPv4 default route, from /proc/net/route (then IPv6).
fn default_route_interface() -> Option<String> {
    let v4 = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_default_route_v4(&v4).or_else(|| {
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
        parse_default_route_v6(&v6)
    })
}

fn parse_default_route_v4(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == "00000000" && f[7] == "00000000").then(|| f[0].to_string())
    })
}

fn parse_default_route_v6(table: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 10 && f[0] == "0".repeat(32) && f[1] == "00" && f[9] != "lo")
            .then(|| f[9].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_errors_say_what_to_set_and_keep_their_cause() {
        let many = AdvertiseError::Ambiguous(vec![
            "10.0.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap(),
        ]);
        assert_eq!(
            many.to_string(),
            "no default route and several addresses (10.0.0.1, fd00::1); set advertise-address to the one peers should use"
        );
        let listing = AdvertiseError::Interfaces(nix::Error::EACCES);
        assert_eq!(
            crate::error_chain::error_chain(&listing),
            format!("cannot list network interfaces: {}", nix::Error::EACCES)
        );
    }

    #[test]
    fn hosts_parse_and_bracket() {
        assert_eq!(Host::parse("10.0.0.1").unwrap().url_host(), "10.0.0.1");
        assert_eq!(Host::parse("fd00::1").unwrap().url_host(), "[fd00::1]");
        assert_eq!(Host::parse("[fd00::1]").unwrap(), Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!(
            Host::parse("Etcd-1.Example.com.").unwrap(),
            Host::Name("etcd-1.example.com".into())
        );
        for bad in ["", "a..b", "-a.b", "bad host", "10.0.0.300", "a_b.com"] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_bracket_ipv6_only() {
        let v6 = Host::parse("2001:db8::5").unwrap();
        assert_eq!(https_url(&v6, 2379), "https://[2001:db8::5]:2379");
        assert_eq!(https_url(&Host::parse("10.1.2.3").unwrap(), 2380), "https://10.1.2.3:2380");
        assert_eq!(https_url(&Host::parse("etcd-a").unwrap(), 2379), "https://etcd-a:2379");
    }

    #[test]
    fn default_route_tables() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                  eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                  eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(parse_default_route_v4(v4).as_deref(), Some("eth0"));
        assert_eq!(parse_default_route_v4("Iface\n"), None);
        let v6 = format!("{} 00 {} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 ens3\n", "0".repeat(32), "0".repeat(32));
        assert_eq!(parse_default_route_v6(&v6).as_deref(), Some("ens3"));
    }
}
