//! `etcdadm bootstrap`: the first-boot agent. It reads cloud metadata and the drop-in
//! configuration, discovers the intended peers, decides (in `decide`) between forming a
//! cluster, joining one and waiting, runs `init`'s or `join`'s steps, and reports progress
//! and readiness to systemd. Every later boot first asks the peers whether the member is
//! still one (`removed`): if so it finds the member healthy and reports ready; a member
//! removed while the machine was away is moved aside and the machine joins anew, or stays
//! out when the peer set no longer lists it.
//!
//! The agent is a state machine (`machine`): [`Agent::converge`] does the work of each
//! state and reports what came of it as an event; `BootstrapState::next` alone decides the
//! next state; every transition is logged and sets the unit's status line.

pub mod decide;
mod head_start;
pub mod machine;
pub mod preview;
mod probe;
pub mod removed;

use crate::aws_credentials;
use crate::config::{self, Config, ConfigSources};
use crate::discovery::{self, DiscoveryConfig, DiscoveryContext, Peer, PeerSet};
use crate::member::LocalMember;
use crate::membership::{form, join, remove};
use crate::metadata::{self, InstanceMetadata, MetadataConfig};
use crate::net::{self, Host};
use crate::notify;
use crate::phases;
use crate::pki::Ca;
use crate::retry::{retry_observed, RetryObserver};
use crate::service::Systemctl;
use crate::state::{Progress, State};
use anyhow::{anyhow, bail, Context, Result};
use decide::{decide, Candidate, View};
use head_start::HeadStart;
use machine::{BootstrapState, Event};
use removed::Membership;
use serde_yaml_ng::{Mapping, Value};
use std::time::{Duration, Instant};
use tracing::info;

/// Prefix of instance tags / attributes that carry etcdadm settings (`etcdadm-version`).
pub const ATTRIBUTE_PREFIX: &str = "etcdadm-";

pub async fn run(sources: ConfigSources) -> Result<()> {
    info!(version = env!("CARGO_PKG_VERSION"), "etcdadm bootstrap starting");
    let c = config::load(&sources)?;
    let deadline = Duration::from_secs(c.bootstrap.deadline_seconds);
    let _extender = notify::TimeoutExtender::start();
    let metrics_dir = c.metrics_textfile_dir.clone();
    let mut agent = Agent::new();
    let outcome = match tokio::time::timeout(deadline, agent.converge(c, sources)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let last = agent
                .retries
                .last_error()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            Err(anyhow!(
                "no healthy member within the deadline of {}s (bootstrap.deadline-seconds){last}; check `journalctl -u etcdadm-bootstrap` and the peers",
                deadline.as_secs()
            ))
        }
    };
    // A first boot that failed before it decided leaves no etcd unit behind.
    if let (Err(_), Some(head_start)) = (&outcome, agent.head_start.take()) {
        head_start.undo().await;
    }
    if let (Err(e), false) = (&outcome, matches!(agent.state, BootstrapState::Failed { .. })) {
        if let Err(refused) = agent.apply(Event::Failed { message: format!("{e:#}") }) {
            tracing::warn!("{refused}");
        }
    }
    agent.run.finish(&metrics_dir, outcome.is_ok());
    outcome
}

/// The bootstrap agent: its state, and what it owns for the run (the metrics of the run, the
/// observer of its retries for the deadline's message).
struct Agent {
    state: BootstrapState,
    run: crate::metrics::BootstrapRun,
    retries: RetryObserver,
    /// Where the data of this machine's removed member was moved aside, named in the status
    /// line sent with READY=1.
    kept: Option<String>,
    /// A first boot's work ahead of the decision, until form or join takes it.
    head_start: Option<HeadStart>,
}

/// What the rounds need, set up once the settings are read.
struct Rounds {
    discovery: DiscoveryConfig,
    ctx: DiscoveryContext,
    /// This machine's peer URL (finds it in the peer set).
    peer_url: String,
    tls: crate::cluster::TlsFiles,
}

impl Agent {
    fn new() -> Agent {
        Agent {
            state: BootstrapState::ReadSettings,
            run: crate::metrics::BootstrapRun::start(),
            retries: RetryObserver::default(),
            kept: None,
            head_start: None,
        }
    }

    /// Takes the transition `event` leads to (`BootstrapState::next`), logs it and reports
    /// the new state's status to systemd (READY=1 in `Ready`).
    fn apply(&mut self, event: Event) -> Result<(), machine::Refused> {
        let event_name = event.name();
        let next = self.state.next(event)?;
        info!(from = self.state.name(), event = event_name, to = next.name(), "bootstrap state");
        match (&next, &self.kept) {
            (BootstrapState::Ready { message }, Some(kept)) => notify::ready(&format!(
                "{message}; it joined as a new member, the removed member's data is kept in {kept}"
            )),
            (BootstrapState::Ready { message } | BootstrapState::Out { message }, _) => {
                notify::ready(message)
            }
            (other, _) => notify::status(&other.status()),
        }
        if let Some(decision) = next.decision() {
            self.run.decided(decision);
        }
        self.state = next;
        Ok(())
    }

    /// Does each state's work until `Ready` (or an error).
    async fn converge(&mut self, c: Config, mut sources: ConfigSources) -> Result<()> {
        // ReadSettings
        let md =
            read_metadata(&c.bootstrap.metadata, c.bootstrap.deadline_seconds, Some(&self.retries))
                .await?;
        if let Some(md) = &md {
            let allowed = c.bootstrap.metadata.allowed_keys();
            let layer = metadata_layer(md, allowed)?;
            layer.warn_ignored(md, allowed);
            sources.metadata = layer.settings;
        }
        let mut c =
            config::load(&sources).context("configuration with instance metadata applied")?;
        let earlier = State::load(&c.state_file)?.filter(|s| s.progress == Progress::Member);
        let earlier_member = earlier.as_ref().map(State::member).transpose()?;
        // On a first boot the release is fetched (and unpacked) while discovery runs, and the
        // units written once it lists this machine: form and join then find them ready.
        self.head_start = earlier_member.is_none().then(|| HeadStart::start(&c));
        let mut rounds = match &earlier_member {
            Some(_) => None,
            None => Some(Rounds::prepare(&c, md.as_ref()).await?),
        };
        self.apply(Event::SettingsRead {
            earlier_member: earlier_member.as_ref().map(|m| m.name.clone()),
        })?;

        let mut round: u32 = 0;
        // The last round's view: who this machine is in the peer set, and whether the set
        // is authoritative.
        let mut last: Option<View> = None;
        loop {
            let event = match self.state.clone() {
                BootstrapState::ReadSettings => {
                    bail!("internal error: bootstrap read its settings twice")
                }
                BootstrapState::CheckingMembership { .. } => {
                    let (Some(state), Some(m)) = (&earlier, &earlier_member) else {
                        bail!("internal error: no member of an earlier boot");
                    };
                    let (membership, in_peer_set) =
                        check_membership(&c, md.as_ref(), state, m).await;
                    info!(
                        member = %m.name,
                        membership = membership.name(),
                        in_peer_set,
                        "asked the peers about the member of an earlier boot"
                    );
                    match membership {
                        Membership::OtherCluster { member_id, local, peers } => Event::Failed {
                            message: removed::ComebackError::other_cluster(
                                member_id,
                                local,
                                &peers,
                                &state.config.data_dir,
                                &state.config.state_file,
                            )
                            .to_string(),
                        },
                        membership => Event::MembershipChecked { membership, in_peer_set },
                    }
                }
                BootstrapState::MovingAside { name, member_id, .. } => {
                    let state = earlier.as_ref().context("internal error: no earlier member")?;
                    let unit = state.config.unit_name();
                    // Disabled, not only stopped: a boot before the join ends must not start
                    // it on a missing data directory. The join enables it again.
                    Systemctl::disable_now(&unit).with_context(|| {
                        format!("cannot stop and disable {unit} of removed member {name} before moving its data aside; nothing was moved")
                    })?;
                    let _ = Systemctl::reset_failed(&unit);
                    let stamp = crate::fsutil::utc_stamp(time::OffsetDateTime::now_utc());
                    let kept = match removed::move_aside(&state.config.data_dir, &stamp, member_id)?
                    {
                        Some(to) => {
                            info!(
                                member = %name,
                                data_dir = %state.config.data_dir.display(),
                                kept = %to.display(),
                                "moved the removed member's data directory aside (kept, never deleted)"
                            );
                            Some(to)
                        }
                        None => {
                            let earlier = removed::newest_kept(&state.config.data_dir);
                            info!(
                                data_dir = %state.config.data_dir.display(),
                                kept = ?earlier,
                                "the removed member's data directory was moved aside by an earlier run"
                            );
                            earlier
                        }
                    };
                    // The state file last: until it is moved, every run finds the member
                    // removed and finishes this.
                    if let Some(to) =
                        removed::move_aside(&state.config.state_file, &stamp, member_id)?
                    {
                        info!(kept = %to.display(), "moved the removed member's state file aside");
                    }
                    self.kept = kept.map(|p| p.display().to_string());
                    if rounds.is_none() {
                        rounds = Some(Rounds::prepare(&c, md.as_ref()).await?);
                    }
                    Event::MovedAside { kept: self.kept.clone() }
                }
                BootstrapState::StayingOut { name, .. } => {
                    let state = earlier.as_ref().context("internal error: no earlier member")?;
                    let unit = state.config.unit_name();
                    Systemctl::disable_now(&unit).with_context(|| {
                        format!("cannot stop and disable {unit} of removed member {name}, which stays out of the cluster")
                    })?;
                    let _ = Systemctl::reset_failed(&unit);
                    for timer in crate::config::TIMERS {
                        if let Err(e) = Systemctl::disable_now(timer) {
                            tracing::warn!("cannot disable {timer} of the removed member: {e:#}");
                        }
                    }
                    Event::StayedOut { data_dir: state.config.data_dir.display().to_string() }
                }
                BootstrapState::AlreadyMember { .. } => {
                    let (Some(state), Some(m)) = (&earlier, &earlier_member) else {
                        bail!("internal error: no member of an earlier boot");
                    };
                    // A member set up by an earlier version moves to the etcd user here.
                    if phases::needs_migration(&state.config, m)? {
                        phases::migrate_units(&state.config, m)?;
                    }
                    phases::start(&state.config)?;
                    phases::wait_healthy(&state.config, m).await?;
                    Event::MemberHealthy
                }
                BootstrapState::Discovering | BootstrapState::Settling { .. } => {
                    round += 1;
                    let r = rounds.as_ref().context("internal error: discovery is not set up")?;
                    let view = r.round(&c, &self.retries, self.head_start.as_mut()).await?;
                    let decision = decide(&view);
                    let settled = settled(&view);
                    info!(round, state = self.state.name(), settled, ?decision, "decided");
                    last = Some(view);
                    Event::Decided { decision, settled }
                }
                BootstrapState::Waiting { .. } | BootstrapState::SettlingWait { .. } => {
                    tokio::time::sleep(pause(round)).await;
                    Event::Paused
                }
                BootstrapState::Forming { initial_cluster, token }
                | BootstrapState::Restoring { initial_cluster, token } => {
                    let release = match self.head_start.take() {
                        Some(h) => h.finish().await,
                        None => None,
                    };
                    let view = last.as_ref().context("internal error: forming without a round")?;
                    let name = view
                        .me
                        .as_ref()
                        .map(|m| m.name.clone())
                        .ok_or_else(|| anyhow!("formed without being in the peer set"))?;
                    c.name =
                        Some(name.parse().map_err(|e| anyhow!("discovered member name: {e}"))?);
                    let m = LocalMember::from_config(&c)?;
                    let snapshot = match (&self.state, &c.bootstrap.restore_from) {
                        (BootstrapState::Restoring { .. }, Some(from)) => {
                            Some(crate::snapshot::resolve_source(from)?)
                        }
                        (BootstrapState::Restoring { .. }, None) => {
                            bail!("internal error: restoring without bootstrap.restore-from")
                        }
                        _ => None,
                    };
                    if let Some(from) = &snapshot {
                        info!(source = %from.display(), "restoring the cluster from the newest backup (bootstrap.restore-from)");
                    }
                    let restoring = snapshot.is_some();
                    let req = form::Request {
                        defer_member: view.authoritative,
                        snapshot,
                        release,
                        release_last: true,
                        ..Default::default()
                    };
                    form::form(&c, &m, form::NewCluster { initial_cluster, token }, req)
                        .await
                        .with_context(|| match (restoring, &c.bootstrap.restore_from) {
                            (true, Some(from)) => format!(
                                "cannot restore the cluster from bootstrap.restore-from {from} (a new cluster, so the peers wait for this machine); fix restore-from, or remove it to form an empty cluster"
                            ),
                            _ => "cannot form the new cluster".to_string(),
                        })?;
                    Event::Formed { name: m.name, settle: view.authoritative }
                }
                BootstrapState::Joining { endpoints } => {
                    let release = match self.head_start.take() {
                        Some(h) => h.finish().await,
                        None => None,
                    };
                    let view = last.as_ref().context("internal error: joining without a round")?;
                    if let Some(me) = &view.me {
                        c.name = Some(
                            me.name.parse().map_err(|e| anyhow!("discovered member name: {e}"))?,
                        );
                    }
                    let m = LocalMember::from_config(&c)?;
                    join::join(
                        &c,
                        &m,
                        join::Request {
                            endpoints,
                            retry: true,
                            phase: None,
                            defer_member: view.authoritative,
                            cluster_checked: true,
                            release,
                        },
                    )
                    .await?;
                    Event::Joined { name: m.name, settle: view.authoritative }
                }
                BootstrapState::RemovingStale { member, endpoints, .. } => {
                    let r = rounds.as_ref().context("internal error: discovery is not set up")?;
                    remove::remove_departed(
                        &endpoints,
                        &r.tls,
                        member.id,
                        c.timeout(),
                        Some(&self.retries),
                    )
                    .await?;
                    Event::StaleRemoved
                }
                BootstrapState::Settled { .. } => {
                    let mut state = State::load(&c.state_file)?
                        .context("the state file vanished while settling")?;
                    state.progress = Progress::Member;
                    state.save()?;
                    Event::Recorded
                }
                BootstrapState::Ready { .. } | BootstrapState::Out { .. } => return Ok(()),
                BootstrapState::Failed { message } => bail!("{message}"),
            };
            self.apply(event)?;
        }
    }
}

/// Whether the peers' cluster still lists the member of an earlier boot (`removed`), and
/// whether the peer set lists this machine: one discovery and one probe of the other peers.
/// Anything that keeps it from asking (kubelet mode, no recorded ids, discovery failing)
/// is `Unknown`, which starts etcd as before.
async fn check_membership(
    c: &Config,
    md: Option<&InstanceMetadata>,
    state: &State,
    m: &LocalMember,
) -> (Membership, bool) {
    if state.config.init_system != crate::config::InitSystem::Systemd {
        return (Membership::Unknown, false);
    }
    let Some(local) = removed::LocalIds::of(state) else {
        info!("the state file records no member and cluster id; not asking the peers");
        return (Membership::Unknown, false);
    };
    match ask_peers(c, md, m).await {
        Ok((probes, in_peer_set)) => {
            (removed::classify(Some(local), &m.peer_url, &probes), in_peer_set)
        }
        Err(e) => {
            tracing::warn!(
                "cannot ask the peers whether member {} is still a member ({e:#}); starting it as before",
                m.name
            );
            (Membership::Unknown, false)
        }
    }
}

/// How long the check of a member of an earlier boot waits for discovery.
const CHECK_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The other peers' answers, and whether the peer set lists this machine (`m`'s peer URL).
async fn ask_peers(
    c: &Config,
    md: Option<&InstanceMetadata>,
    m: &LocalMember,
) -> Result<(Vec<(Candidate, decide::Probe)>, bool)> {
    let discovery = c.bootstrap.discovery.clone().context("no `bootstrap: discovery:` section")?;
    let until = Instant::now() + CHECK_DISCOVERY_TIMEOUT;
    let ctx = discovery_context(&c.bootstrap, md, &discovery, until).await?;
    let set = tokio::time::timeout(CHECK_DISCOVERY_TIMEOUT, discovery::discover(&discovery, &ctx))
        .await
        .map_err(|_| {
            anyhow!("peer discovery did not answer within {}s", CHECK_DISCOVERY_TIMEOUT.as_secs())
        })?
        .context("peer discovery failed")?;
    let peers = candidates(&set, c);
    let in_peer_set = peers.iter().any(|p| p.peer_url == m.peer_url);
    let others: Vec<Candidate> = peers.into_iter().filter(|p| p.peer_url != m.peer_url).collect();
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    Ok((probe::probe_all(&others, &tls).await, in_peer_set))
}

impl Rounds {
    /// The discovery settings and context, and this machine's client certificate (signed by
    /// the CA, which must exist), which lets it probe its peers before it is a member.
    async fn prepare(c: &Config, md: Option<&InstanceMetadata>) -> Result<Rounds> {
        let discovery = c
            .bootstrap
            .discovery
            .clone()
            .context("no `bootstrap: discovery:` section in the configuration; add one (see README, \"Bootstrap\")")?;
        let until = Instant::now() + Duration::from_secs(c.bootstrap.deadline_seconds);
        let ctx = discovery_context(&c.bootstrap, md, &discovery, until).await?;
        let me = LocalMember::from_config(c)?;
        let ca = Ca::load_existing(&me.pki.ca_cert, &me.pki.ca_key)?;
        let (spec, cert, key) = crate::pki::client_cert(&me);
        ca.ensure_cert(&spec, &cert, &key, crate::pki::Lifetime::of(c))?;
        let tls = crate::cluster::TlsFiles::client(&me.pki);
        Ok(Rounds { discovery, ctx, peer_url: me.peer_url, tls })
    }

    /// One round's view: the peer set (discovery retried while its errors are transient),
    /// and what every peer answers.
    /// On a first boot, `head_start` learns this machine's member as soon as discovery lists
    /// it, before the peers are probed (`HeadStart::listed`).
    async fn round(
        &self,
        c: &Config,
        retries: &RetryObserver,
        head_start: Option<&mut HeadStart>,
    ) -> Result<View> {
        let set = retry_observed(
            "discovering peers",
            Duration::from_secs(c.bootstrap.deadline_seconds),
            discovery::DiscoveryError::is_retryable,
            Some(retries),
            || discovery::discover(&self.discovery, &self.ctx),
        )
        .await
        .context("peer discovery failed")?;
        let peers = candidates(&set, c);
        let me = peers.iter().find(|p| p.peer_url == self.peer_url).cloned();
        if let (Some(me), Some(head_start)) = (&me, head_start) {
            head_start.listed(&me.name);
        }
        let expected = discovery::expected_size(c.bootstrap.cluster_size, &set, &self.discovery);
        notify::status(&format!(
            "discovering peers {}/{}",
            peers.len(),
            expected.map_or("?".into(), |n| n.to_string())
        ));
        Ok(View {
            probes: probe_round(&peers, &self.tls).await,
            me,
            expected,
            authoritative: c.bootstrap.remove_departed_members.unwrap_or(set.authoritative),
            restore: c.bootstrap.restore_from.is_some(),
            has_data: crate::fsutil::dir_has_entries(&c.data_dir).with_context(|| {
                format!("cannot read the data directory {}", c.data_dir.display())
            })?,
            peers,
        })
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
    retries: Option<&RetryObserver>,
) -> Result<Option<InstanceMetadata>> {
    if matches!(cfg, MetadataConfig::None) {
        return Ok(None);
    }
    notify::status("reading instance metadata");
    let md = retry_observed(
        "reading instance metadata",
        Duration::from_secs(deadline),
        metadata::MetadataError::is_retryable,
        retries,
        || metadata::fetch(cfg),
    )
    .await
    .context("cannot read instance metadata")?;
    if let Some(m) = &md {
        info!(provider = m.provider, instance = %m.instance_id, "read instance metadata");
    }
    Ok(md)
}

/// What instance metadata contributes to the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataLayer {
    /// A configuration layer below the files.
    pub settings: Mapping,
    /// `etcdadm-*` tags or attributes that were left out: their key is not allowed.
    pub ignored: Vec<String>,
}

impl MetadataLayer {
    /// One warning per ignored tag, naming it (escaped: a tag may hold any character) and
    /// the allow-list; its value is never shown.
    pub fn warn_ignored(&self, md: &InstanceMetadata, allowed: &[String]) {
        for tag in &self.ignored {
            tracing::warn!(
                provider = md.provider,
                "ignoring instance {} {tag:?}: instance metadata may set only bootstrap.metadata.allowed-keys ({}); set it in the configuration file instead, or add its key to allowed-keys there",
                tag_word(md.provider),
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") },
            );
        }
    }
}

/// What the provider calls the settings attached to an instance.
fn tag_word(provider: &str) -> &'static str {
    match provider {
        "ec2" | "azure" => "tag",
        "openstack" => "meta key",
        _ => "attribute",
    }
}

/// Metadata as a configuration layer below the files: the instance's address, and each
/// `etcdadm-<key>` tag or attribute whose key is in `allowed` (`bootstrap.metadata.
/// allowed-keys`) as setting `<key>` (its value read as YAML, so numbers and lists work;
/// `cluster-size` is `bootstrap.cluster-size`). Tags are data, not configuration: any other
/// `etcdadm-*` tag is ignored (listed in `ignored`), so whoever may tag an instance cannot
/// choose what root installs or where data goes. An allowed tag whose value its setting
/// refuses is an error naming the tag and the key.
pub fn metadata_layer(
    md: &InstanceMetadata,
    allowed: &[String],
) -> Result<MetadataLayer, config::ConfigError> {
    let mut out = MetadataLayer::default();
    let address = md.private_ipv4.map(|a| a.to_string()).or(md.private_ipv6.map(|a| a.to_string()));
    if let Some(a) = address {
        out.settings.insert("advertise-address".into(), a.into());
    }
    for (k, v) in &md.attributes {
        let Some(key) = k.strip_prefix(ATTRIBUTE_PREFIX) else { continue };
        if !allowed.iter().any(|a| a == key) {
            out.ignored.push(k.clone());
            continue;
        }
        let text = Value::String(v.clone());
        let value = match serde_yaml_ng::from_str::<Value>(v) {
            Ok(parsed) if !fits(key, &parsed) && fits(key, &text) => text,
            Ok(parsed) => parsed,
            Err(_) => text,
        };
        let one = match key {
            "cluster-size" => Mapping::from_iter([(
                Value::from("bootstrap"),
                Value::Mapping(Mapping::from_iter([(Value::from(key), value)])),
            )]),
            _ => Mapping::from_iter([(Value::from(key), value)]),
        };
        let origin = format!("instance metadata, {} {k}", tag_word(md.provider));
        config::check_layer(&one, &origin)?;
        config::merge(&mut out.settings, one);
    }
    Ok(out)
}

/// Whether `value` has the type setting `key` takes.
fn fits(key: &str, value: &Value) -> bool {
    let one = match key {
        "cluster-size" => Mapping::from_iter([(
            Value::from("bootstrap"),
            Value::Mapping(Mapping::from_iter([(Value::from(key), value.clone())])),
        )]),
        _ => Mapping::from_iter([(Value::String(key.to_string()), value.clone())]),
    };
    serde_yaml_ng::from_value::<Config>(Value::Mapping(one)).is_ok()
}

/// What discovery needs, created once per process: this instance's id and region, the AWS
/// credentials (only for `aws-asg` and `aws-tags`, by the one policy of `aws_credentials`),
/// and a fresh state for the AWS providers' rate limiter and caches (and the GCE providers':
/// with this instance's zone and the metadata server, see `gce_discovery`). First the discovery
/// settings are checked, by themselves and against the rest of `bootstrap` (`b`, with the
/// instance metadata applied: `aws-tags` and `gce-labels` need `cluster-size`), before any credential or
/// network is involved. `until`: when discovery must have ended (`azure-vmss` waits out no
/// `Retry-After` past it).
pub(crate) async fn discovery_context(
    b: &crate::config::BootstrapConfig,
    md: Option<&InstanceMetadata>,
    discovery: &DiscoveryConfig,
    until: Instant,
) -> Result<DiscoveryContext> {
    discovery.validate()?;
    discovery.check_cluster_size(b.cluster_size)?;
    let credentials = match discovery {
        DiscoveryConfig::AwsAsg { .. } | DiscoveryConfig::AwsTags { .. } => {
            let provider = discovery.provider();
            let (credentials, source) = aws_credentials::resolve(
                aws_credentials::process_env,
                metadata::ec2_role_credentials(&b.metadata.imds()),
            )
            .await
            .with_context(|| format!("{provider} discovery needs AWS credentials"))?;
            info!(?source, "AWS credentials for {provider} discovery");
            Some(credentials)
        }
        _ => None,
    };
    let azure = match discovery {
        DiscoveryConfig::AzureVmss { subscription_id, resource_group, scale_set, .. } => {
            let unset = [subscription_id, resource_group, scale_set].iter().any(|v| v.is_none());
            azure_vmss_state(b, md.is_some() && unset, until).await?
        }
        _ => Default::default(),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(DiscoveryContext {
        instance_id: md.map(|m| m.instance_id.clone()),
        region: md.and_then(|m| m.region.clone()).or_else(|| env("AWS_REGION")),
        credentials,
        aws: Default::default(),
        gce: gce_discovery(b, md),
        azure,
    })
}

/// What the GCE providers take from the machine: its zone, when the instance metadata came
/// from GCE's metadata server, and that server's address (the `gce` source's `base-url`).
fn gce_discovery(
    b: &crate::config::BootstrapConfig,
    md: Option<&InstanceMetadata>,
) -> discovery::GceDiscovery {
    discovery::GceDiscovery::new(
        md.filter(|m| m.provider == "gce").and_then(|m| m.availability_zone.clone()),
        match &b.metadata {
            MetadataConfig::Gce(c) => Some(c.base_url.clone()),
            _ => None,
        },
    )
}

/// `azure-vmss`'s state: IMDS where the `azure` metadata source reads it (else the default
/// address), and, when that source is configured, this VM's subscription, resource group and
/// scale set (the settings' defaults), read from IMDS within the bootstrap deadline when a
/// setting is missing.
async fn azure_vmss_state(
    b: &crate::config::BootstrapConfig,
    read_identity: bool,
    until: Instant,
) -> Result<discovery::AzureDiscoveryState> {
    let deadline = Some(until);
    let MetadataConfig::Azure(imds) = &b.metadata else {
        let d = metadata::AzureConfig::default();
        return Ok(discovery::AzureDiscoveryState::new(
            &d.base_url,
            d.timeout_seconds,
            None,
            deadline,
        ));
    };
    let identity = if read_identity {
        Some(
            crate::retry::retry_while(
                "reading this VM's scale set from Azure IMDS",
                Duration::from_secs(b.deadline_seconds),
                metadata::MetadataError::is_retryable,
                || metadata::azure_identity(imds),
            )
            .await
            .context(
                "azure-vmss discovery: cannot read this VM's scale set from instance metadata",
            )?,
        )
    } else {
        None
    };
    Ok(discovery::AzureDiscoveryState::new(
        &imds.base_url,
        imds.timeout_seconds,
        identity,
        deadline,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_tags_become_settings_only_when_their_key_is_in_allowed_keys() {
        let md = InstanceMetadata {
            provider: "azure",
            instance_id: "02aab8a4-74ef-476e-8182-f6d2ba4166a6".into(),
            hostname: Some("etcd_2".into()),
            private_ipv4: Some("10.1.0.6".parse().unwrap()),
            private_ipv6: None,
            region: Some("westeurope".into()),
            availability_zone: Some("2".into()),
            attributes: [
                ("etcd-cluster", "prod"),
                ("etcdadm-data-dir", "/tmp/evil"),
                ("etcdadm-version", "3.5.17"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let allowed = metadata::AzureConfig::default().allowed_keys;
        let layer = metadata_layer(&md, &allowed).unwrap();
        assert_eq!(layer.ignored, ["etcdadm-data-dir"]);
        assert_eq!(layer.settings.get("version").and_then(|v| v.as_str()), Some("3.5.17"));
        assert!(layer.settings.get("data-dir").is_none(), "{:?}", layer.settings);
        assert_eq!(tag_word(md.provider), "tag");
    }

    #[test]
    fn names_from_hosts() {
        assert_eq!(name_for_host(&Host::parse("10.0.0.1").unwrap()), "etcd-10-0-0-1");
        assert_eq!(name_for_host(&Host::parse("fd00::1").unwrap()), "etcd-fd00--1");
        assert_eq!(name_for_host(&Host::parse("etcd-a.example.com").unwrap()), "etcd-a");
    }

    fn instance(attributes: &[(&str, &str)]) -> InstanceMetadata {
        InstanceMetadata {
            provider: "ec2",
            instance_id: "i-1".into(),
            hostname: None,
            private_ipv4: Some("10.1.2.3".parse().unwrap()),
            private_ipv6: None,
            region: None,
            availability_zone: None,
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// The configuration from `file` (YAML) with `md`'s layer under it, as bootstrap loads it.
    fn load_with(file: &str, md: &InstanceMetadata) -> Result<(Config, Vec<String>), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, file).unwrap();
        let mut sources = ConfigSources { file: path, ..Default::default() };
        let c = config::load(&sources).map_err(|e| e.to_string())?;
        let layer =
            metadata_layer(md, c.bootstrap.metadata.allowed_keys()).map_err(|e| e.to_string())?;
        sources.metadata = layer.settings;
        let c = config::load(&sources).map_err(|e| e.to_string())?;
        Ok((c, layer.ignored))
    }

    const EC2: &str = "bootstrap:\n  metadata:\n    provider: ec2\n";

    #[test]
    fn allowed_tags_apply_and_other_etcdadm_tags_are_ignored() {
        let md = instance(&[
            ("etcdadm-version", "3.5.16"),
            ("etcdadm-cluster-size", "5"),
            ("etcdadm-backup-on-calendar", "*-*-* 02:00"),
            ("etcdadm-client-port", "3379"),
            ("Name", "web"),
        ]);
        let (c, ignored) = load_with(EC2, &md).unwrap();
        assert_eq!(
            (
                c.advertise_address.map(|a| a.to_string()).as_deref(),
                c.version.as_str(),
                c.bootstrap.cluster_size,
                c.backup_on_calendar.as_str(),
                c.client_port
            ),
            (Some("10.1.2.3"), "3.5.16", Some(5), "*-*-* 02:00", 2379)
        );
        assert_eq!(ignored, ["etcdadm-client-port"]);
    }

    #[test]
    fn tags_that_would_choose_what_root_installs_or_where_data_goes_are_ignored() {
        let hostile = [
            ("etcdadm-release-url", "http://evil.example/etcd"),
            ("etcdadm-release-sha256", &"ab".repeat(32)),
            ("etcdadm-install-dir", "/tmp/evil"),
            ("etcdadm-unit-file", "/etc/systemd/system/evil.service"),
            ("etcdadm-env-file", "/etc/evil.env"),
            ("etcdadm-backup-s3-endpoint", "http://evil.example:9000"),
            ("etcdadm-backup-s3-url", "s3://evil/etcd/"),
            ("etcdadm-disk-priorities", "[Nice=-20]"),
            ("etcdadm-image-repository", "evil.example/etcd"),
            ("etcdadm-name", "m1\nExecStartPre=/bin/sh -c 'touch /pwned'"),
            ("etcdadm-allowed-keys", "[release-url]"),
            ("etcdadm-bootstrap", "{metadata: {provider: ec2, allowed-keys: [release-url]}}"),
            ("etcdadm-bootstrap.metadata.allowed-keys", "[release-url]"),
        ];
        let hostile: Vec<(&str, &str)> = hostile.iter().map(|(k, v)| (*k, &**v)).collect();
        let md = instance(&hostile);
        let (c, ignored) = load_with(EC2, &md).unwrap();
        let mut expected: Vec<&str> = hostile.iter().map(|(k, _)| *k).collect();
        expected.sort();
        assert_eq!(ignored, expected);
        let (plain, _) = load_with(EC2, &instance(&[])).unwrap();
        assert_eq!(c, plain, "a hostile tag changed the configuration");
        assert_eq!(c.release_url, Config::default().release_url);
        assert_eq!(c.install_dir, Config::default().install_dir);
        assert_eq!(c.name, None);
    }

    #[test]
    fn the_configuration_file_widens_the_allow_list() {
        let file = "bootstrap:\n  metadata:\n    provider: ec2\n    allowed-keys: [version, client-port, install-dir]\n";
        let md = instance(&[
            ("etcdadm-client-port", "3379"),
            ("etcdadm-install-dir", "/usr/local/bin"),
            ("etcdadm-cluster-size", "5"),
        ]);
        let (c, ignored) = load_with(file, &md).unwrap();
        assert_eq!((c.client_port, c.install_dir.to_str()), (3379, Some("/usr/local/bin")));
        // The list is the whole list: cluster-size, a default, was not named.
        assert_eq!(
            (c.bootstrap.cluster_size, ignored),
            (None, vec!["etcdadm-cluster-size".into()])
        );
    }

    #[test]
    fn the_allow_list_can_never_name_the_bootstrap_settings() {
        for key in ["bootstrap", "allowed-keys", "bootstrap.metadata", "no-such-key"] {
            let file = format!(
                "bootstrap:\n  metadata:\n    provider: ec2\n    allowed-keys: [version, {key}]\n"
            );
            let err = load_with(&file, &instance(&[])).unwrap_err();
            assert!(
                err.contains("config.yaml: key `bootstrap.metadata.allowed-keys[1]`: "),
                "{err}"
            );
            assert!(err.contains(&format!("\"{key}\"")), "{err}");
        }
        // And a provider without tags takes no list.
        let err = load_with(
            "bootstrap:\n  metadata:\n    provider: nocloud\n    allowed-keys: [version]\n",
            &instance(&[]),
        )
        .unwrap_err();
        assert!(err.contains("allowed-keys"), "{err}");
    }

    #[test]
    fn an_allowed_tag_with_a_bad_value_is_one_error_naming_the_tag_and_the_key() {
        let file = "bootstrap:\n  metadata:\n    provider: ec2\n    allowed-keys: [version, install-dir, name, backup-on-calendar]\n";
        for (tag, value, key) in [
            ("etcdadm-install-dir", "/opt/bin\nExecStartPre=/bin/sh", "install-dir"),
            ("etcdadm-install-dir", "/opt/$(reboot)", "install-dir"),
            ("etcdadm-name", "m1\nETCD_DATA_DIR=/tmp", "name"),
            ("etcdadm-name", "m1;reboot", "name"),
            ("etcdadm-backup-on-calendar", "daily\nExecStartPre=/bin/sh", "backup-on-calendar"),
            ("etcdadm-version", "3.5.16;reboot", "version"),
        ] {
            let err = load_with(file, &instance(&[(tag, value)])).unwrap_err();
            assert!(
                err.starts_with(&format!("instance metadata, tag {tag}: key `{key}`: ")),
                "{tag}={value:?}: {err}"
            );
            assert!(!err.contains('\n'), "the error shows the value raw: {err}");
        }
    }

    #[test]
    fn each_ignored_tag_is_warned_about_once_by_name_and_its_value_is_not_shown() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber =
            tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let md = instance(&[
            ("etcdadm-release-url", "http://evil.example/secret-value"),
            ("etcdadm-name", "m1\nforged line"),
            ("etcdadm-version", "3.5.16"),
        ]);
        let allowed: Vec<String> =
            metadata::DEFAULT_ALLOWED_KEYS.iter().map(|k| k.to_string()).collect();
        tracing::subscriber::with_default(subscriber, || {
            metadata_layer(&md, &allowed).unwrap().warn_ignored(&md, &allowed);
        });
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines.iter().all(|l| l.contains("WARN")), "{log}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("tag \"etcdadm-release-url\"")).count(),
            1,
            "{log}"
        );
        assert_eq!(lines.iter().filter(|l| l.contains("tag \"etcdadm-name\"")).count(), 1, "{log}");
        assert!(lines[0].contains("version, cluster-size, backup-on-calendar"), "{log}");
        assert!(!log.contains("evil") && !log.contains("forged"), "a value was logged: {log}");
    }
}
