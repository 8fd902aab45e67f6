//! `etcdadm bootstrap`: the first-boot agent. It reads cloud metadata and the drop-in
//! configuration, discovers the intended peers, decides (in `decide`) between forming a
//! cluster, joining one and waiting, runs `init`'s or `join`'s steps, and reports progress
//! and readiness to systemd. Every later boot finds the member healthy and reports ready.

pub mod decide;
mod probe;

use crate::cluster::format_id;
use crate::config::{self, Config, ConfigSources};
use crate::discovery::{self, DiscoveryContext, Peer, PeerSet};
use crate::member::LocalMember;
use crate::membership::{form, join, remove};
use crate::metadata::{self, InstanceMetadata, MetadataConfig};
use crate::net::{self, Host};
use crate::notify;
use crate::phases;
use crate::pki::Ca;
use crate::retry::retry_while;
use crate::state::{Progress, State};
use anyhow::{anyhow, bail, Context, Result};
use decide::{decide, Candidate, Decision, View};
use serde_yaml_ng::{Mapping, Value};
use std::time::Duration;
use tracing::info;

/// Prefix of instance tags / attributes that carry etcdadm settings (`etcdadm-version`).
pub const ATTRIBUTE_PREFIX: &str = "etcdadm-";

pub async fn run(sources: ConfigSources) -> Result<()> {
    let c = config::load(&sources)?;
    let deadline = Duration::from_secs(c.bootstrap.deadline_seconds);
    let _extender = notify::TimeoutExtender::start();
    let (run, metrics_dir) =
        (crate::metrics::BootstrapRun::start(), c.metrics_textfile_dir.clone());
    let outcome = run_until(deadline, c, sources).await;
    run.finish(&metrics_dir, outcome.is_ok());
    outcome
}

async fn run_until(deadline: Duration, c: Config, sources: ConfigSources) -> Result<()> {
    match tokio::time::timeout(deadline, converge(c, sources)).await {
        Ok(Ok(msg)) => {
            notify::ready(&msg);
            Ok(())
        }
        Ok(Err(e)) => {
            notify::status(&format!("failed: {e:#}"));
            Err(e)
        }
        Err(_) => {
            let last = crate::retry::last_retried_error()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            let msg = format!(
                "no healthy member within the deadline of {}s (bootstrap.deadline-seconds){last}; check `journalctl -u etcdadm-bootstrap` and the peers",
                deadline.as_secs()
            );
            notify::status(&format!("failed: {msg}"));
            bail!(msg)
        }
    }
}

async fn converge(c: Config, mut sources: ConfigSources) -> Result<String> {
    let md = read_metadata(&c.bootstrap.metadata, c.bootstrap.deadline_seconds).await?;
    if let Some(md) = &md {
        sources.metadata = metadata_layer(md);
    }
    let mut c = config::load(&sources).context("configuration with instance metadata applied")?;

    if let Some(state) = State::load(&c.state_file)? {
        if state.progress == Progress::Member {
            let m = state.member()?;
            crate::metrics::decided("member");
            notify::status(&format!(
                "member {} set up on an earlier boot; waiting for etcd to be healthy",
                m.name
            ));
            phases::start(&state.config)?;
            phases::wait_healthy(&state.config, &m).await?;
            return Ok(format!("etcd member {} is healthy", m.name));
        }
    }

    let discovery_cfg = c
        .bootstrap
        .discovery
        .clone()
        .context("no `bootstrap: discovery:` section in the configuration; add one (see README, \"Bootstrap\")")?;
    let ctx = discovery_context(&c.bootstrap.metadata, md.as_ref()).await?;
    let me0 = LocalMember::from_config(&c)?;
    let ca = Ca::load_existing(&me0.pki.ca_cert, &me0.pki.ca_key)?;
    // The client certificate lets this machine probe its peers before it is a member.
    let (spec, cert, key) = crate::pki::client_cert(&me0);
    ca.ensure_cert(&spec, &cert, &key, crate::pki::Lifetime::of(&c))?;
    let tls = crate::cluster::TlsFiles::client(&me0.pki);

    // Spec F4: with an authoritative peer set a new member is not done once healthy: it
    // settles first (rounds until one with a complete view finds nothing departed left),
    // and only then is `member` saved and READY sent.
    let mut settling = false;
    let mut round: u32 = 0;
    loop {
        round += 1;
        let set = retry_while(
            "discovering peers",
            Duration::from_secs(c.bootstrap.deadline_seconds),
            discovery::DiscoveryError::is_retryable,
            || discovery::discover(&discovery_cfg, &ctx),
        )
        .await
        .context("peer discovery failed")?;
        let peers = candidates(&set, &c);
        let me = peers.iter().find(|p| p.peer_url == me0.peer_url).cloned();
        let expected = discovery::expected_size(c.bootstrap.cluster_size, &set, &discovery_cfg);
        notify::status(&format!(
            "discovering peers {}/{}",
            peers.len(),
            expected.map_or("?".into(), |n| n.to_string())
        ));
        let authoritative = c.bootstrap.remove_departed_members.unwrap_or(set.authoritative);
        let view = View {
            probes: probe_round(&peers, &tls).await,
            me: me.clone(),
            expected,
            authoritative,
            has_data: crate::fsutil::dir_has_entries(&c.data_dir).with_context(|| {
                format!("cannot read the data directory {}", c.data_dir.display())
            })?,
            peers,
        };
        let decision = decide(&view);
        info!(round, settling, ?decision, "decided");
        if settling {
            match &decision {
                Decision::Join { .. } if settled(&view) => {
                    let mut state = State::load(&c.state_file)?
                        .context("the state file vanished while settling")?;
                    state.progress = Progress::Member;
                    state.save()?;
                    let name = me.map(|m| m.name).unwrap_or_default();
                    return Ok(format!(
                        "etcd member {name} is a healthy voter and no departed member is left"
                    ));
                }
                Decision::RemoveStale { .. } => {}
                _ => {
                    notify::status("settling: waiting for a complete view of the peer set");
                    tokio::time::sleep(pause(round)).await;
                    continue;
                }
            }
        }
        match decision {
            Decision::Wait(why) => {
                notify::status(&why);
                tokio::time::sleep(pause(round)).await;
            }
            Decision::Form { initial_cluster, token } => {
                let name = me
                    .map(|m| m.name)
                    .ok_or_else(|| anyhow!("formed without being in the peer set"))?;
                c.name = Some(name.parse().map_err(|e| anyhow!("discovered member name: {e}"))?);
                let m = LocalMember::from_config(&c)?;
                crate::metrics::decided("form");
                notify::status(&format!(
                    "forming a new cluster of {} members (token {token})",
                    initial_cluster.len()
                ));
                let req = form::Request { defer_member: authoritative, ..Default::default() };
                form::form(&c, &m, form::NewCluster { initial_cluster, token }, &req).await?;
                if !authoritative {
                    return Ok(format!("etcd member {} of a new cluster is healthy", m.name));
                }
                settling = true;
            }
            Decision::Join { endpoints } => {
                if let Some(me) = me {
                    c.name =
                        Some(me.name.parse().map_err(|e| anyhow!("discovered member name: {e}"))?);
                }
                let m = LocalMember::from_config(&c)?;
                crate::metrics::decided("join");
                notify::status(&format!("joining via {}", endpoints.join(",")));
                join::join(
                    &c,
                    &m,
                    &join::Request {
                        endpoints,
                        retry: true,
                        phase: None,
                        defer_member: authoritative,
                        cluster_checked: true,
                    },
                )
                .await?;
                if !authoritative {
                    return Ok(format!("etcd member {} is a healthy voter", m.name));
                }
                settling = true;
            }
            Decision::RemoveStale { member, endpoints } => {
                notify::status(&format!(
                    "removing member {} ({}) which left the peer set",
                    format_id(member.id),
                    member.name
                ));
                remove::remove_departed(&endpoints, &tls, member.id, c.timeout()).await?;
            }
        }
    }
}

/// One round's probes: every peer, this machine's own member included, then the members of
/// a running cluster that are outside the peer set (whether they still answer decides if
/// they departed; spec/README.md, F2 and F4).
async fn probe_round(
    peers: &[Candidate],
    tls: &crate::cluster::TlsFiles,
) -> Vec<(Candidate, decide::Probe)> {
    let mut probes = probe::probe_all(peers, tls).await;
    let mut outside: Vec<Candidate> = Vec::new();
    for (_, p) in &probes {
        let decide::Probe::Member { leader, members, .. } = p else { continue };
        if *leader == 0 {
            continue;
        }
        for m in members {
            let Some(peer_url) = m.peer_urls.first() else { continue };
            let known =
                peers.iter().chain(outside.iter()).any(|c| m.peer_urls.contains(&c.peer_url));
            if !known {
                outside.push(Candidate {
                    peer_url: peer_url.clone(),
                    client_url: m.client_urls.first().cloned().unwrap_or_default(),
                    name: m.name.clone(),
                });
            }
        }
    }
    probes.extend(probe::probe_all(&outside, tls).await);
    probes
}

/// F4: this round's view is complete and lists this machine, its own member answers as a
/// member of the running cluster, and that cluster has no member outside the peer set (a
/// departed one that still answers is removed once it stops).
fn settled(v: &View) -> bool {
    let Some(me) = &v.me else { return false };
    let own = v.probes.iter().find_map(|(c, p)| match p {
        decide::Probe::Member { leader, members, .. } if c == me && *leader != 0 => Some(members),
        _ => None,
    });
    let in_set =
        |m: &crate::cluster::MemberInfo| v.peers.iter().any(|c| m.peer_urls.contains(&c.peer_url));
    v.expected == Some(v.peers.len()) && own.is_some_and(|members| members.iter().all(in_set))
}

/// Between rounds that wait: quick at first, then about every 5 s, jittered so that machines
/// booted together do not probe each other in step.
fn pause(round: u32) -> Duration {
    Duration::from_millis(u64::from(round.min(10)) * 500).mul_f64(0.75 + fastrand::f64() / 2.0)
}

/// Candidates with their etcd URLs; a peer without a name is named after its host.
pub(crate) fn candidates(set: &PeerSet, c: &Config) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = set
        .peers
        .iter()
        .map(|p: &Peer| Candidate {
            name: p.name.clone().unwrap_or_else(|| name_for_host(&p.host)),
            peer_url: net::https_url(&p.host, c.peer_port),
            client_url: net::https_url(&p.host, c.client_port),
        })
        .collect();
    out.sort();
    out
}

/// A member name from an address: `etcd-10-0-0-1`, `etcd-fd00--1`, or a host's first label.
pub fn name_for_host(h: &Host) -> String {
    match h {
        Host::Ip(ip) => format!("etcd-{}", ip.to_string().replace(['.', ':'], "-")),
        Host::Name(n) => n.split('.').next().unwrap_or(n).to_string(),
    }
}

pub(crate) async fn read_metadata(
    cfg: &MetadataConfig,
    deadline: u64,
) -> Result<Option<InstanceMetadata>> {
    if matches!(cfg, MetadataConfig::None) {
        return Ok(None);
    }
    notify::status("reading instance metadata");
    let md = retry_while(
        "reading instance metadata",
        Duration::from_secs(deadline),
        metadata::MetadataError::is_retryable,
        || metadata::fetch(cfg),
    )
    .await
    .context("cannot read instance metadata")?;
    if let Some(m) = &md {
        info!(provider = m.provider, instance = %m.instance_id, "read instance metadata");
    }
    Ok(md)
}

/// Metadata as a configuration layer below the files: the instance's address, and every
/// `etcdadm-<key>` tag or attribute as `<key>` (its value read as YAML, so numbers, lists
/// and mappings work).
pub fn metadata_layer(md: &InstanceMetadata) -> Mapping {
    let mut layer = Mapping::new();
    let address = md.private_ipv4.map(|a| a.to_string()).or(md.private_ipv6.map(|a| a.to_string()));
    if let Some(a) = address {
        layer.insert("advertise-address".into(), a.into());
    }
    for (k, v) in &md.attributes {
        if let Some(key) = k.strip_prefix(ATTRIBUTE_PREFIX) {
            let text = Value::String(v.clone());
            let value = match serde_yaml_ng::from_str::<Value>(v) {
                Ok(parsed) if !fits(key, &parsed) && fits(key, &text) => text,
                Ok(parsed) => parsed,
                Err(_) => text,
            };
            layer.insert(key.into(), value);
        }
    }
    layer
}

/// Whether `value` has the type setting `key` takes.
fn fits(key: &str, value: &Value) -> bool {
    let one = Mapping::from_iter([(Value::String(key.to_string()), value.clone())]);
    serde_yaml_ng::from_value::<Config>(Value::Mapping(one)).is_ok()
}

pub(crate) async fn discovery_context(
    cfg: &MetadataConfig,
    md: Option<&InstanceMetadata>,
) -> Result<DiscoveryContext> {
    let credentials = match cfg {
        MetadataConfig::Ec2(ec2) => match metadata::ec2_role_credentials(ec2).await {
            Ok(c) => Some(c),
            Err(e) => {
                info!(error = %e, "no instance role credentials; using the environment's, if any");
                None
            }
        },
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let credentials = credentials.or_else(|| {
        Some(discovery::AwsCredentials {
            access_key_id: env("AWS_ACCESS_KEY_ID")?,
            secret_access_key: env("AWS_SECRET_ACCESS_KEY")?,
            session_token: env("AWS_SESSION_TOKEN"),
            expiration: None,
        })
    });
    Ok(DiscoveryContext {
        instance_id: md.map(|m| m.instance_id.clone()),
        region: md.and_then(|m| m.region.clone()).or_else(|| env("AWS_REGION")),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_from_hosts() {
        assert_eq!(name_for_host(&Host::parse("10.0.0.1").unwrap()), "etcd-10-0-0-1");
        assert_eq!(name_for_host(&Host::parse("fd00::1").unwrap()), "etcd-fd00--1");
        assert_eq!(name_for_host(&Host::parse("etcd-a.example.com").unwrap()), "etcd-a");
    }

    #[test]
    fn metadata_fills_address_and_prefixed_settings() {
        let md = InstanceMetadata {
            provider: "ec2",
            instance_id: "i-1".into(),
            hostname: None,
            private_ipv4: Some("10.1.2.3".parse().unwrap()),
            private_ipv6: None,
            region: None,
            availability_zone: None,
            attributes: BTreeMap::from([
                ("etcdadm-version".to_string(), "3.5.16".to_string()),
                ("etcdadm-client-port".to_string(), "3379".to_string()),
                ("Name".to_string(), "web".to_string()),
            ]),
        };
        let layer = metadata_layer(&md);
        assert_eq!(layer.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let c = config::load(&ConfigSources {
            file: dir.path().join("none.yaml"),
            metadata: layer,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (
                c.advertise_address.map(|a| a.to_string()).as_deref(),
                c.version.as_str(),
                c.client_port
            ),
            (Some("10.1.2.3"), "3.5.16", 3379)
        );
    }
}
