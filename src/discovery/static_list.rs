//! The `static` provider: peers written in the configuration as `name=host` or `host`.

use super::{DiscoveryError, Peer};
use crate::cli::safe_chars::{unsafe_char, MEMBER_NAME_EXTRA};
use crate::net::Host;
use std::collections::BTreeMap;

/// Parses every entry; the first bad entry fails the whole list. Identical entries collapse;
/// one name given two different hosts is an error.
pub(super) fn parse(entries: &[String]) -> Result<Vec<Peer>, DiscoveryError> {
    if entries.is_empty() {
        return Err(DiscoveryError::Config(
            "the static provider has no peers; list them under peers (name=host or host)".into(),
        ));
    }
    let peers = entries.iter().map(|e| parse_entry(e)).collect::<Result<Vec<_>, _>>()?;
    let mut by_name: BTreeMap<&str, &Peer> = BTreeMap::new();
    for (entry, peer) in entries.iter().zip(&peers) {
        let Some(name) = peer.name.as_deref() else {
            continue;
        };
        if let Some(other) = by_name.insert(name, peer) {
            if other.host != peer.host {
                return Err(DiscoveryError::InvalidPeer {
                    entry: entry.clone(),
                    reason: format!("member name {name:?} is also given to {}", other.host),
                });
            }
        }
    }
    Ok(peers)
}

/// `name=host` or `host`, surrounding blanks ignored.
pub(super) fn parse_entry(entry: &str) -> Result<Peer, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidPeer { entry: entry.to_string(), reason };
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty entry".into()));
    }
    let (name, host) = match trimmed.split_once('=') {
        Some((name, host)) => (Some(name.trim()), host.trim()),
        None => (None, trimmed),
    };
    if let Some(name) = name {
        if name.is_empty() {
            return Err(invalid("the member name before '=' is empty".into()));
        }
        if let Some(c) = unsafe_char(name, MEMBER_NAME_EXTRA) {
            return Err(invalid(format!(
                "the member name contains {c} (letters, digits, '-', '_', '.' only)"
            )));
        }
    }
    if host.is_empty() {
        return Err(invalid("the host after '=' is empty".into()));
    }
    let host = Host::parse(host).map_err(|reason| {
        if looks_like_host_port(host) {
            invalid(format!("{reason} (it looks like host:port; the port comes from peer-port)"))
        } else if host.contains("://") {
            invalid(format!("{reason} (give the host, not a URL)"))
        } else {
            invalid(reason)
        }
    })?;
    Ok(Peer { name: name.map(str::to_string), host, instance_id: None })
}

fn looks_like_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && (host.starts_with('[') || !host.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(entry: &str) -> (Option<String>, String) {
        let p = parse_entry(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        assert_eq!(p.instance_id, None);
        (p.name, p.host.to_string())
    }

    #[test]
    fn entries() {
        assert_eq!(ok("etcd-1=10.0.0.1"), (Some("etcd-1".into()), "10.0.0.1".into()));
        assert_eq!(
            ok("  etcd-2 = Etcd-2.Example.COM. "),
            (Some("etcd-2".into()), "etcd-2.example.com".into())
        );
        assert_eq!(ok("10.0.0.3"), (None, "10.0.0.3".into()));
        assert_eq!(ok("fd00::1"), (None, "fd00::1".into()));
        assert_eq!(ok("m=[fd00::2]"), (Some("m".into()), "fd00::2".into()));
        assert_eq!(ok("etcd-c"), (None, "etcd-c".into()));
    }

    #[test]
    fn bad_entries_name_the_entry() {
        for (bad, says) in [
            ("", "empty entry"),
            ("=10.0.0.1", "member name"),
            ("a=", "host after"),
            ("a b=10.0.0.1", "member name contains"),
            ("a=10.0.0.1:2380", "host:port"),
            ("a=[fd00::1]:2380", "host:port"),
            ("a=https://10.0.0.1", "not a URL"),
            ("a=10.0.0.300", "neither an IP"),
            ("a=b=c", "neither an IP"),
            ("under_score.example.com", "neither an IP"),
        ] {
            let e = parse_entry(bad).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("{bad:?}")) && msg.contains(says), "{bad}: {msg}");
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn lists() {
        let list = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(list(&["a=10.0.0.1", "b=10.0.0.2", "a=10.0.0.1"]).unwrap().len(), 3);
        let e = list(&["a=10.0.0.1", "b=10.0.0.2", "a=10.0.0.3"]).unwrap_err().to_string();
        assert!(e.contains("\"a=10.0.0.3\"") && e.contains("10.0.0.1"), "{e}");
        assert!(list(&[]).unwrap_err().to_string().contains("no peers"));
        let e = list(&["a=10.0.0.1", "oops=", "c=10.0.0.3"]).unwrap_err().to_string();
        assert!(e.contains("\"oops=\""), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics(entry in "\\PC{0,40}", names in proptest::collection::vec("[a-z0-9=:.\\[\\] -]{0,12}", 0..5)) {
            let _ = parse_entry(&entry);
            let _ = parse(&names);
        }

        #[test]
        fn valid_entries_round_trip(name in "[a-z][a-z0-9-]{0,10}", a in 0u8..=255, b in 0u8..=255) {
            let p = parse_entry(&format!("{name}=10.{a}.{b}.1")).unwrap();
            prop_assert_eq!(p.to_string(), format!("{name}=10.{a}.{b}.1"));
        }
    }
}
