//! The `dns` provider: SRV records `_etcd-server-ssl._tcp.<domain>` (etcd's `--discovery-srv`)
//! or the A and AAAA records of one name. Resolution goes through hickory, never libc.

use super::{DiscoveryError, Peer, PeerSet};
use crate::net::Host;
use futures_util::future::{join, try_join_all};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The SRV service etcd's `--discovery-srv` looks up for a TLS cluster.
const SRV_SERVICE: &str = "_etcd-server-ssl._tcp";
/// Per-query timeout, and retries after a failed query (so 2 tries, 4 s at most per query
/// against a dead server). Callers retry whole attempts.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const QUERY_ATTEMPTS: usize = 1;

/// What to look up: exactly one of a domain (SRV) or a name (A/AAAA).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Query {
    /// The fully qualified SRV record name.
    Srv(String),
    Name(String),
}

impl Query {
    pub(super) fn new(domain: Option<&str>, name: Option<&str>) -> Result<Query, DiscoveryError> {
        let checked = |field: &str, v: &str| match Host::parse(v.trim()) {
            Ok(Host::Name(n)) => Ok(n),
            Ok(Host::Ip(_)) => Err(DiscoveryError::Config(format!(
                "dns {field} {v:?} is an IP address, not a DNS name"
            ))),
            Err(e) => Err(DiscoveryError::Config(format!("dns {field}: {e}"))),
        };
        match (domain, name) {
            (Some(d), None) => Ok(Query::Srv(format!("{SRV_SERVICE}.{}.", checked("domain", d)?))),
            (None, Some(n)) => Ok(Query::Name(checked("name", n)?)),
            (None, None) => Err(DiscoveryError::Config(
                "the dns provider needs domain (SRV records) or name (A/AAAA records)".into(),
            )),
            (Some(_), Some(_)) => Err(DiscoveryError::Config(
                "the dns provider takes domain (SRV records) or name (A/AAAA records), not both"
                    .into(),
            )),
        }
    }
}

pub(super) async fn discover(
    query: Query,
    nameserver: Option<SocketAddr>,
) -> Result<PeerSet, DiscoveryError> {
    let lookup = Lookup::new(nameserver)?;
    let peers = match &query {
        Query::Srv(record) => srv_peers(&lookup, record).await?,
        Query::Name(name) => {
            let ips = lookup.addresses(name).await?;
            ips.into_iter()
                .map(|ip| Peer { name: None, host: Host::Ip(ip), instance_id: None })
                .collect()
        }
    };
    if peers.is_empty() {
        let (kind, record) = match &query {
            Query::Srv(r) => ("SRV", r.as_str()),
            Query::Name(n) => ("A or AAAA", n.as_str()),
        };
        return Err(DiscoveryError::NoPeers {
            what: format!("no {kind} records for {record} at {}", lookup.server),
            hint: "publish the records, or wait for them to propagate (temporary)".into(),
        });
    }
    Ok(PeerSet::new(peers, None, false))
}

/// One peer per SRV target: its address when it has one (the lowest IPv4, else the lowest
/// IPv6), else its name. The member name is the target's first label.
async fn srv_peers(lookup: &Lookup, record: &str) -> Result<Vec<Peer>, DiscoveryError> {
    let answers = match lookup.resolver.srv_lookup(record).await {
        Ok(l) => l.answers().to_vec(),
        Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
        Err(e) => return Err(lookup.error("SRV", record, &e)),
    };
    let targets = srv_targets(&answers);
    let addresses = try_join_all(targets.iter().map(|t| lookup.addresses(t))).await?;
    Ok(targets.iter().zip(addresses).filter_map(|(target, ips)| srv_peer(target, &ips)).collect())
}

/// The distinct targets of the SRV records among `answers`, without the trailing dot; "."
/// (service explicitly unavailable, RFC 2782) is left out.
pub(super) fn srv_targets(answers: &[Record]) -> Vec<String> {
    let mut targets: Vec<String> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_ascii()),
            _ => None,
        })
        .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    targets.sort();
    targets.dedup();
    targets
}

/// The peer for one SRV target given its addresses; `None` when the target is not a valid
/// host name and has no address.
pub(super) fn srv_peer(target: &str, ips: &[IpAddr]) -> Option<Peer> {
    let name = target.split('.').next().filter(|l| !l.is_empty()).map(str::to_string);
    let best = ips.iter().filter(|ip| ip.is_ipv4()).min().or_else(|| ips.iter().min());
    let host = match best {
        Some(ip) => Host::Ip(*ip),
        None => Host::parse(target).ok()?,
    };
    Some(Peer { name, host, instance_id: None })
}

struct Lookup {
    resolver: TokioResolver,
    /// The nameserver as shown in errors.
    server: String,
}

impl Lookup {
    /// A fresh resolver per attempt (no cache carried between attempts). With `nameserver`,
    /// only that server is asked (UDP, then TCP) and /etc/hosts is ignored; without, the
    /// servers, search list and hosts file of the system are used.
    fn new(nameserver: Option<SocketAddr>) -> Result<Lookup, DiscoveryError> {
        let (mut builder, server) = match nameserver {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![ns]);
                let mut b =
                    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                (b, addr.to_string())
            }
            None => {
                // At early boot resolv.conf may not be written yet: retryable.
                let b = TokioResolver::builder_tokio()
                    .map_err(|e| DiscoveryError::DnsSetup { detail: e.to_string() })?;
                (b, "the nameservers of /etc/resolv.conf".to_string())
            }
        };
        let opts = builder.options_mut();
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = QUERY_ATTEMPTS;
        let resolver = builder.build().map_err(|e| {
            DiscoveryError::Config(format!("cannot set up DNS resolution via {server}: {e}"))
        })?;
        Ok(Lookup { resolver, server })
    }

    /// The A and AAAA addresses of `name`, sorted; empty when it has neither. A failure of
    /// either query fails the whole look-up, so a flaky server cannot shrink the set.
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DiscoveryError> {
        let (a, aaaa) = join(
            self.resolver.lookup(name, RecordType::A),
            self.resolver.lookup(name, RecordType::AAAA),
        )
        .await;
        let mut ips = Vec::new();
        for (kind, result) in [("A", a), ("AAAA", aaaa)] {
            match result {
                Ok(l) => ips.extend(l.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) if e.is_no_records_found() => {}
                Err(e) => return Err(self.error(kind, name, &e)),
            }
        }
        ips.sort();
        ips.dedup();
        Ok(ips)
    }

    fn error(&self, kind: &'static str, record: &str, e: &NetError) -> DiscoveryError {
        DiscoveryError::Dns {
            kind,
            record: record.to_string(),
            server: self.server.clone(),
            detail: e.to_string(),
            retryable: retryable(e),
        }
    }
}

/// Timeouts, connection failures and SERVFAIL are worth another attempt; REFUSED, malformed
/// answers and the like are not.
fn retryable(e: &NetError) -> bool {
    match e {
        NetError::Timeout
        | NetError::Io(_)
        | NetError::NoConnections
        | NetError::Busy
        | NetError::Truncated => true,
        NetError::Dns(DnsError::ResponseCode(code)) => *code == ResponseCode::ServFail,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => nr.response_code == ResponseCode::ServFail,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query as DnsQuery;
    use hickory_resolver::proto::rr::rdata::{A, SRV};
    use hickory_resolver::proto::rr::Name;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn srv(target: &str, port: u16) -> Record {
        let owner = Name::from_ascii("_etcd-server-ssl._tcp.example.com.").unwrap();
        Record::from_rdata(
            owner,
            60,
            RData::SRV(SRV::new(0, 0, port, Name::from_ascii(target).unwrap())),
        )
    }

    #[test]
    fn queries() {
        assert_eq!(
            Query::new(Some("Example.com"), None).unwrap(),
            Query::Srv("_etcd-server-ssl._tcp.example.com.".into())
        );
        assert_eq!(
            Query::new(Some("example.com."), None).unwrap(),
            Query::Srv("_etcd-server-ssl._tcp.example.com.".into())
        );
        assert_eq!(
            Query::new(None, Some("etcd.example.com")).unwrap(),
            Query::Name("etcd.example.com".into())
        );
        for (d, n) in [
            (None, None),
            (Some("a.com"), Some("b.com")),
            (Some("10.0.0.1"), None),
            (None, Some("a b")),
        ] {
            assert!(matches!(Query::new(d, n), Err(DiscoveryError::Config(_))), "{d:?} {n:?}");
        }
    }

    #[test]
    fn srv_answers() {
        let other = Record::from_rdata(
            Name::from_ascii("x.example.com.").unwrap(),
            60,
            RData::A(A::new(10, 0, 0, 9)),
        );
        let answers = [
            srv("etcd-b.example.com.", 2380),
            srv("Etcd-A.example.com.", 2380),
            other,
            srv("etcd-b.example.com.", 2381),
            srv(".", 0),
        ];
        assert_eq!(srv_targets(&answers), ["etcd-a.example.com", "etcd-b.example.com"]);
        assert_eq!(srv_targets(&[]), Vec::<String>::new());
    }

    #[test]
    fn srv_target_to_peer() {
        let ips: Vec<IpAddr> = vec![
            "fd00::5".parse().unwrap(),
            "10.0.0.7".parse().unwrap(),
            "10.0.0.5".parse().unwrap(),
        ];
        let p = srv_peer("etcd-a.example.com", &ips).unwrap();
        assert_eq!(
            (p.name.as_deref(), p.host.to_string()),
            (Some("etcd-a"), "10.0.0.5".to_string())
        );
        let p = srv_peer("etcd-b.example.com", &ips[..1]).unwrap();
        assert_eq!(p.host.to_string(), "fd00::5");
        let p = srv_peer("etcd-c.example.com", &[]).unwrap();
        assert_eq!(p.host, Host::Name("etcd-c.example.com".into()));
        assert_eq!(srv_peer("bad_name.example.com", &[]), None);
    }

    #[test]
    fn error_classification() {
        let q = DnsQuery::query(Name::from_ascii("a.example.").unwrap(), RecordType::A);
        assert!(retryable(&NetError::Timeout));
        assert!(retryable(&NetError::Io(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        )))));
        assert!(retryable(&NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail))));
        assert!(retryable(&NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q.clone(),
            ResponseCode::ServFail
        )))));
        assert!(!retryable(&NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused))));
        assert!(!retryable(&NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            q,
            ResponseCode::NXDomain
        )))));
    }

    proptest! {
        #[test]
        fn srv_parsing_never_panics(targets in proptest::collection::vec("[a-zA-Z0-9_.-]{0,30}", 0..6), ports in proptest::collection::vec(any::<u16>(), 6)) {
            let answers: Vec<Record> = targets.iter().zip(&ports).filter_map(|(t, p)| Name::from_ascii(t).ok().map(|n| (n, *p)))
                .map(|(n, p)| Record::from_rdata(Name::from_ascii("_s._tcp.x.").unwrap(), 1, RData::SRV(SRV::new(0, 0, p, n))))
                .collect();
            for t in srv_targets(&answers) {
                let _ = srv_peer(&t, &[]);
            }
        }

        #[test]
        fn srv_peer_never_panics(target in "\\PC{0,60}") {
            let _ = srv_peer(&target, &[]);
            let _ = Query::new(Some(&target), None);
        }
    }
}
