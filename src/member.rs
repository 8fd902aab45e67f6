//! The local member resolved from the configuration: its name, its URLs and the paths of
//! everything etcdadm puts on disk for it. Commands work from this, never from raw config.

use crate::config::Config;
use crate::net::{self, Host};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct LocalMember {
    pub name: String,
    pub advertise: Host,
    pub client_url: String,
    pub peer_url: String,
    pub listen_client_urls: Vec<String>,
    pub listen_peer_urls: Vec<String>,
    /// Local endpoint the tool itself talks to.
    pub local_endpoint: String,
    /// Plain-HTTP metrics and /health on loopback (liveness probes, monitoring).
    pub metrics_url: String,
    pub pki: PkiPaths,
}

/// File names follow the seed tool, so existing automation finds them.
#[derive(Debug, Clone, PartialEq)]
pub struct PkiPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub peer_cert: PathBuf,
    pub peer_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: &std::path::Path) -> PkiPaths {
        PkiPaths {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            peer_cert: dir.join("peer.crt"),
            peer_key: dir.join("peer.key"),
            client_cert: dir.join("etcdctl-etcd-client.crt"),
            client_key: dir.join("etcdctl-etcd-client.key"),
            apiserver_cert: dir.join("apiserver-etcd-client.crt"),
            apiserver_key: dir.join("apiserver-etcd-client.key"),
        }
    }

    /// Everything but the CA: what `reset` removes.
    /// The member's certificate/key pairs (each written as one unit, `pair_files`).
    pub fn member_pairs(&self) -> [(&PathBuf, &PathBuf); 4] {
        [
            (&self.server_cert, &self.server_key),
            (&self.peer_cert, &self.peer_key),
            (&self.client_cert, &self.client_key),
            (&self.apiserver_cert, &self.apiserver_key),
        ]
    }

    pub fn member_files(&self) -> [&PathBuf; 8] {
        [
            &self.server_cert,
            &self.server_key,
            &self.peer_cert,
            &self.peer_key,
            &self.client_cert,
            &self.client_key,
            &self.apiserver_cert,
            &self.apiserver_key,
        ]
    }
}

/// Why this machine's member name or advertise address could not be determined.
#[derive(Debug, thiserror::Error)]
#[error("cannot determine this member's identity: {0}")]
pub struct IdentityError(pub String);

impl LocalMember {
    /// Resolves name and addresses; `detect` supplies the advertise address when none is set.
    pub fn resolve(
        c: &Config,
        hostname: impl FnOnce() -> Result<String, String>,
        detect: impl FnOnce() -> Result<IpAddr, String>,
    ) -> Result<LocalMember, String> {
        let name = match &c.name {
            Some(n) => n.to_string(),
            None => {
                let h = hostname()?;
                h.parse::<crate::config::MemberName>().map_err(|e| {
                    format!(
                        "the host name is no member name: {e}; set name (flag --name or key name)"
                    )
                })?;
                h
            }
        };
        let advertise = match &c.advertise_address {
            Some(a) => a.clone(),
            None => Host::Ip(detect()?),
        };
        let loopback = match (&advertise, c.bind_address) {
            (Host::Ip(IpAddr::V6(_)), _) | (_, Some(IpAddr::V6(_))) => {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let loopback_host = Host::Ip(loopback);
        // Listen on the bind address if given, else on the advertised IP. A host name
        // cannot be listened on: then listen on all addresses.
        let listen = match (c.bind_address, &advertise) {
            (Some(ip), _) => Host::Ip(ip),
            (None, Host::Ip(ip)) => Host::Ip(*ip),
            (None, Host::Name(_)) => Host::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        };
        let mut listen_client_urls = vec![net::https_url(&listen, c.client_port)];
        if !matches!(listen, Host::Ip(ip) if ip.is_unspecified() || ip.is_loopback()) {
            listen_client_urls.push(net::https_url(&loopback_host, c.client_port));
        }
        Ok(LocalMember {
            name,
            client_url: net::https_url(&advertise, c.client_port),
            peer_url: net::https_url(&advertise, c.peer_port),
            listen_client_urls,
            listen_peer_urls: vec![net::https_url(&listen, c.peer_port)],
            local_endpoint: net::https_url(&loopback_host, c.client_port),
            metrics_url: format!("http://{}:{}", loopback_host.url_host(), c.metrics_port),
            advertise,
            pki: PkiPaths::new(&c.certs_dir),
        })
    }

    /// Resolves with the real host name and address detection.
    pub fn from_config(c: &Config) -> Result<LocalMember, IdentityError> {
        Self::resolve(c, hostname, || {
            net::detect_advertise_address().map_err(|e| crate::error_chain::error_chain(&e))
        })
        .map_err(IdentityError)
    }

    /// Names and IPs the server and peer certificates must carry.
    pub fn server_sans(&self, c: &Config) -> Vec<Host> {
        let mut sans = vec![
            self.advertise.clone(),
            Host::Name("localhost".into()),
            Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        if let Some(ip) = c.bind_address.filter(|ip| !ip.is_unspecified()) {
            sans.push(Host::Ip(ip));
        }
        sans.extend(c.server_cert_extra_sans.iter().cloned());
        let mut unique = Vec::new();
        for s in sans {
            if !unique.contains(&s) {
                unique.push(s);
            }
        }
        unique
    }

    pub fn peer_sans(&self) -> Vec<Host> {
        vec![self.advertise.clone()]
    }
}

fn hostname() -> Result<String, String> {
    let h = nix::unistd::gethostname()
        .map_err(|e| format!("cannot read the host name: {e}; set name"))?;
    let h = h.to_string_lossy();
    // A member name is the short host name.
    let short = h.split('.').next().unwrap_or_default().to_string();
    if short.is_empty() {
        Err("the host name is empty; set name".into())
    } else {
        Ok(short)
    }
}

/// A member of the cluster whose name or peer URL another member reported and that cannot be
/// written into etcd's flags and the environment file as it is.
#[derive(Debug, thiserror::Error)]
#[error("{origin} lists member {name:?} with peer URL {url:?}: {reason}; nothing was written. Fix that member's name (etcd --name) or peer URL, or remove it from the cluster")]
pub struct UnsafeMember {
    pub origin: String,
    pub name: String,
    pub url: String,
    pub reason: String,
}

/// Checks `name=peer-url` pairs learned from the cluster or from discovery before any of them
/// reaches a file: each name is a member name (or empty, where `allow_unnamed`: a learner
/// that never started), each URL an `http(s)://` URL of [`crate::config::URL_CHARS`].
pub fn check_members<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    allow_unnamed: bool,
    origin: &str,
) -> Result<(), UnsafeMember> {
    for (name, url) in pairs {
        let unsafe_member = |reason: String| UnsafeMember {
            origin: origin.to_string(),
            name: name.to_string(),
            url: url.to_string(),
            reason,
        };
        if !(name.is_empty() && allow_unnamed) {
            name.parse::<crate::config::MemberName>().map_err(unsafe_member)?;
        }
        crate::config::check_chars(url, crate::config::URL_CHARS, "a peer URL")
            .map_err(unsafe_member)?;
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
            _ => return Err(unsafe_member(format!("{url:?} is not an http(s) URL"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(c: &Config) -> LocalMember {
        LocalMember::resolve(c, || Ok("m1".into()), || Ok("10.0.0.5".parse().unwrap())).unwrap()
    }

    #[test]
    fn ipv4_defaults() {
        let m = resolve(&Config::default());
        assert_eq!(m.name, "m1");
        assert_eq!(m.client_url, "https://10.0.0.5:2379");
        assert_eq!(m.peer_url, "https://10.0.0.5:2380");
        assert_eq!(m.listen_client_urls, ["https://10.0.0.5:2379", "https://127.0.0.1:2379"]);
        assert_eq!(m.listen_peer_urls, ["https://10.0.0.5:2380"]);
        assert_eq!(m.local_endpoint, "https://127.0.0.1:2379");
    }

    #[test]
    fn ipv6_is_bracketed_everywhere() {
        let c = Config { advertise_address: Some("fd00::7".into()), ..Default::default() };
        let m = resolve(&c);
        assert_eq!(m.client_url, "https://[fd00::7]:2379");
        assert_eq!(m.listen_client_urls, ["https://[fd00::7]:2379", "https://[::1]:2379"]);
        assert_eq!(m.local_endpoint, "https://[::1]:2379");
    }

    #[test]
    fn hostname_advertised_with_separate_bind_address() {
        let c = Config {
            advertise_address: Some("etcd-1.example.com".into()),
            bind_address: Some("0.0.0.0".parse().unwrap()),
            server_cert_extra_sans: vec![
                "etcd.example.com".into(),
                "192.0.2.9".into(),
                "localhost".into(),
            ],
            ..Default::default()
        };
        let m = resolve(&c);
        assert_eq!(m.peer_url, "https://etcd-1.example.com:2380");
        assert_eq!(m.listen_client_urls, ["https://0.0.0.0:2379"]);
        let sans: Vec<String> = m.server_sans(&c).iter().map(|h| h.to_string()).collect();
        assert_eq!(
            sans,
            [
                "etcd-1.example.com",
                "localhost",
                "127.0.0.1",
                "::1",
                "etcd.example.com",
                "192.0.2.9"
            ]
        );
    }

    #[test]
    fn hostname_without_bind_listens_everywhere() {
        let c = Config { advertise_address: Some("node-a".into()), ..Default::default() };
        assert_eq!(resolve(&c).listen_peer_urls, ["https://0.0.0.0:2380"]);
    }

    #[test]
    fn a_host_name_that_is_no_member_name_is_refused_naming_the_setting() {
        let err = LocalMember::resolve(
            &Config::default(),
            || Ok("m1;reboot".into()),
            || Ok("10.0.0.5".parse().unwrap()),
        )
        .unwrap_err();
        assert!(err.contains("\"m1;reboot\"") && err.contains("set name"), "{err}");
    }

    #[test]
    fn member_lists_with_names_or_urls_that_would_be_syntax_in_a_file_are_refused() {
        let ok = [("m1", "https://10.0.0.1:2380"), ("m-2.a_b", "https://[fd00::2]:2380")];
        assert!(check_members(ok, false, "test").is_ok());
        assert!(check_members([("", "https://10.0.0.3:2380")], true, "test").is_ok());
        for (name, url) in [
            ("", "https://10.0.0.3:2380"),
            ("m1\nETCD_DATA_DIR=/tmp", "https://10.0.0.1:2380"),
            ("m1,evil=https://10.9.9.9:2380", "https://10.0.0.1:2380"),
            ("m1$(reboot)", "https://10.0.0.1:2380"),
            ("m1", "https://10.0.0.1:2380\nETCD_X=1"),
            ("m1", "https://10.0.0.1:2380,https://10.9.9.9:2380"),
            ("m1", "https://10.0.0.1:2380 x"),
            ("m1", "unix:///run/x"),
        ] {
            let err = check_members([(name, url)], false, "the member list of the cluster at X")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("the member list of the cluster at X lists member "), "{err}");
            assert!(err.contains("nothing was written"), "{err}");
            assert!(!err.contains('\n'), "shown raw: {err}");
        }
    }
}
