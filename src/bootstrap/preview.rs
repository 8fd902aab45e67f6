//! The configured peer discovery, run the way the agent runs it (the same configuration
//! files, instance metadata and credentials): what bootstrap on this machine would see
//! (`etcdadm discover`). It waits until the set is complete (as many peers as the expected
//! cluster size) unless asked for one round; past the deadline it fails with the last set it
//! saw.

use crate::config::{self, Config, ConfigSources};
use crate::discovery::{self, DiscoveryConfig, DiscoveryContext, DiscoveryError, PeerSet};
use crate::member::LocalMember;
use crate::retry::{retry_observed, RetryObserver};
use anyhow::{Context, Result};
use serde::Serialize;
use std::time::{Duration, Instant};
use tracing::info;

pub struct Request {
    /// One round, complete or not.
    pub once: bool,
    /// Overrides `bootstrap.deadline-seconds`.
    pub deadline_seconds: Option<u64>,
}

/// The pause between rounds that found an incomplete set is uniform in
/// `[ROUND_PAUSE_MIN, 2 * ROUND_PAUSE_MIN)`, so that machines booted together do not poll in
/// step. Being at least `ROUND_PAUSE_MIN`, a run of t seconds has at most 1 + t/1s rounds.
pub const ROUND_PAUSE_MIN: Duration = Duration::from_secs(1);

/// What discovery found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub provider: &'static str,
    /// Sorted by peer URL, named as bootstrap names them.
    pub peers: Vec<PeerView>,
    pub expected: Option<usize>,
    /// As many peers as expected (or no expected size known).
    pub complete: bool,
    /// Members outside the set may be removed by bootstrap (aws-asg, or any provider with
    /// `remove-departed-members: true`).
    pub authoritative: bool,
    /// Discovery rounds: answers of the provider, complete or not.
    pub rounds: u32,
    /// Calls of the provider, including failed ones that were retried.
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PeerView {
    pub name: String,
    pub peer_url: String,
    pub client_url: String,
    /// This machine (by instance id, or by its advertised peer URL).
    pub this_machine: bool,
}

/// Discovery that did not end with a set to show: why, and the last set seen, if any.
#[derive(Debug)]
pub struct Unfinished {
    pub last: Option<Report>,
    pub error: anyhow::Error,
}

pub async fn discover(mut sources: ConfigSources, req: Request) -> Result<Report, Unfinished> {
    let c = config::load(&sources).map_err(|e| Unfinished { last: None, error: e.into() })?;
    let deadline =
        Duration::from_secs(req.deadline_seconds.unwrap_or(c.bootstrap.deadline_seconds));
    let started = Instant::now();
    let mut last: Option<Report> = None;
    let observer = RetryObserver::default();
    let result = tokio::time::timeout(deadline, async {
        let md =
            super::read_metadata(&c.bootstrap.metadata, deadline.as_secs(), Some(&observer))
                .await?;
        if let Some(md) = &md {
            let allowed = c.bootstrap.metadata.allowed_keys();
            let layer = super::metadata_layer(md, allowed)?;
            layer.warn_ignored(md, allowed);
            sources.metadata = layer.settings;
        }
        let c = config::load(&sources).context("configuration with instance metadata applied")?;
        let cfg = c
            .bootstrap
            .discovery
            .clone()
            .context("no `bootstrap: discovery:` section in the configuration; add one (see README, \"Bootstrap\")")?;
        let ctx = super::discovery_context(&c.bootstrap, md.as_ref(), &cfg, started + deadline)
            .await?;
        until_complete(&c, &cfg, &ctx, &req, deadline, &observer, &mut last).await
    })
    .await;
    match result {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(error)) => Err(Unfinished { last, error }),
        Err(_) => {
            let seen = match &last {
                Some(r) => format!(
                    "{} of {} peers after {} rounds",
                    r.peers.len(),
                    r.expected.map_or("?".to_string(), |n| n.to_string()),
                    r.rounds
                ),
                None => "no answer from discovery".to_string(),
            };
            let last_error =
                observer.last_error().map(|e| format!("; last error: {e}")).unwrap_or_default();
            let error = anyhow::anyhow!(
                "peer set not complete within {}s ({seen}){last_error}; check the discovery settings and that every machine of the cluster is up, or use --once to see the current set",
                started.elapsed().as_secs()
            );
            Err(Unfinished { last, error })
        }
    }
}

async fn until_complete(
    c: &Config,
    cfg: &DiscoveryConfig,
    ctx: &DiscoveryContext,
    req: &Request,
    deadline: Duration,
    observer: &RetryObserver,
    last: &mut Option<Report>,
) -> Result<Report> {
    let me = LocalMember::from_config(c).ok().map(|m| m.peer_url);
    let (mut rounds, mut attempts) = (0u32, 0u32);
    loop {
        let set = retry_observed(
            "discovering peers",
            deadline,
            DiscoveryError::is_retryable,
            Some(observer),
            || {
                attempts += 1;
                discovery::discover(cfg, ctx)
            },
        )
        .await
        .context("peer discovery failed")?;
        rounds += 1;
        let report = report(c, cfg, ctx, me.as_deref(), &set, rounds, attempts);
        info!(round = rounds, peers = report.peers.len(), expected = ?report.expected, "discovered");
        if report.complete || req.once {
            return Ok(report);
        }
        crate::notify::status(&format!(
            "discovering peers {}/{}",
            report.peers.len(),
            report.expected.map_or("?".to_string(), |n| n.to_string())
        ));
        *last = Some(report);
        tokio::time::sleep(ROUND_PAUSE_MIN.mul_f64(1.0 + fastrand::f64())).await;
    }
}

fn report(
    c: &Config,
    cfg: &DiscoveryConfig,
    ctx: &DiscoveryContext,
    my_peer_url: Option<&str>,
    set: &PeerSet,
    rounds: u32,
    attempts: u32,
) -> Report {
    let expected = discovery::expected_size(c.bootstrap.cluster_size, set, cfg);
    let peers: Vec<PeerView> = super::candidates(set, c)
        .into_iter()
        .map(|p| PeerView {
            this_machine: Some(p.peer_url.as_str()) == my_peer_url
                || ctx.instance_id.as_deref() == Some(p.name.as_str()),
            name: p.name,
            peer_url: p.peer_url,
            client_url: p.client_url,
        })
        .collect();
    Report {
        provider: cfg.provider(),
        complete: expected.is_none_or(|n| n == peers.len()),
        peers,
        expected,
        authoritative: c.bootstrap.remove_departed_members.unwrap_or(set.authoritative),
        rounds,
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_size_comes_from_settings_then_provider_then_static_list() {
        let set = |n: usize, expected: Option<usize>| {
            let peers = (1..=n)
                .map(|i| discovery::Peer {
                    name: None,
                    host: crate::net::Host::parse(&format!("10.0.0.{i}")).unwrap(),
                    instance_id: None,
                })
                .collect();
            PeerSet::new(peers, expected, false)
        };
        let stat = DiscoveryConfig::Static { peers: vec![] };
        let dns =
            DiscoveryConfig::Dns { domain: Some("a.test".into()), name: None, nameserver: None };
        assert_eq!(discovery::expected_size(Some(5), &set(3, Some(3)), &dns), Some(5));
        assert_eq!(discovery::expected_size(None, &set(3, Some(4)), &dns), Some(4));
        assert_eq!(discovery::expected_size(None, &set(3, None), &stat), Some(3));
        assert_eq!(discovery::expected_size(None, &set(3, None), &dns), None);
    }
}
