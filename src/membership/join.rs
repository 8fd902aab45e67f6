//! Joining a running cluster (`etcdadm join`, and bootstrap's join): add this machine as a
//! learner, start it, wait until it caught up, promote it to a voter. Re-runs complete or
//! repair; they never add a second member for this machine. The join phases (cli::JoinPhase)
//! run in table order; `join phase X` runs X after its prerequisites.

use super::error::{MembershipError, Result};
use super::existing::{check_existing, has_data, vanished, Existing};
use super::phase_table::{plan, PhaseTable};
use super::promote::promote_when_caught_up;
use crate::cli::JoinPhase;
use crate::cluster::until_deadline;
use crate::cluster::{format_id, Cluster, MemberInfo};
use crate::config::Config;
use crate::member::LocalMember;
use crate::phases;
use crate::pki::Ca;
use crate::release::{EtcdFirst, Prefetch};
use crate::service::{ClusterBootstrap, Systemctl};
use crate::state::{Origin, Progress, State};
use std::time::Duration;
use tracing::info;

/// What `join` was asked for besides the configuration.
pub struct Request {
    pub endpoints: Vec<String>,
    /// Retry membership changes until timeout-seconds (else one attempt).
    pub retry: bool,
    /// Run only this phase (and its prerequisites).
    pub phase: Option<JoinPhase>,
    /// Leave the state file short of `member` once healthy: bootstrap saves it after its
    /// last round (spec/README.md, F4).
    pub defer_member: bool,
    /// The caller already reached the cluster with this machine's own client certificate
    /// (bootstrap's probes): no preflight.
    pub cluster_checked: bool,
    /// The release being fetched in the background already for this configuration
    /// (`phases::prefetch_release`; bootstrap starts it before it discovers); None: `join`
    /// starts it (the whole command) or the install phase fetches it (`join phase`).
    pub release: Option<Prefetch>,
}

/// Joins the cluster at the request's endpoints and waits until this member is a healthy
/// voter. Returns its member id, or `None` when it already was a healthy voter and nothing
/// changed (or when only a phase before membership ran).
pub async fn join(c: &Config, m: &LocalMember, mut req: Request) -> Result<Option<u64>> {
    let mut fresh = false;
    let mut taken_over = false;
    let state = match check_existing(c, m, Origin::Join).await? {
        Existing::HealthyMember if req.phase.is_none() => {
            // A member set up by an earlier version moves to the etcd user here.
            if !crate::phases::migrate(c, m).await? {
                info!("this machine is already a healthy voting member; nothing to do");
            }
            return Ok(None);
        }
        Existing::HealthyMember => State::load(&c.state_file)?.ok_or_else(vanished(c))?,
        Existing::Resume(state) => state,
        Existing::TakeOver(state) => {
            taken_over = true;
            state
        }
        Existing::Fresh => {
            if has_data(c)? {
                return Err(MembershipError::Refused(format!(
                    "{} already holds etcd data but this machine is not a member set up by etcdadm; move it away (etcdadm never deletes it) and run join again",
                    c.data_dir.display()
                )));
            }
            fresh = true;
            State::new(Origin::Join, c, m)
        }
    };
    crate::release::known_bad::check(&c.version, "version", c.allow_known_bad_release)?;
    // The whole command starts the release's fetch now (bootstrap hands over its own): it
    // downloads while the cluster is checked and the certificates are made, and etcd can
    // start while etcdctl and etcdutl still unpack.
    let prefetched = match req.release.take() {
        None if req.phase.is_none() => phases::prefetch_release(c),
        handed => handed,
    };
    if fresh && req.phase.is_none() && !req.cluster_checked {
        preflight(c, m, &req).await?;
    }
    let mut run = JoinRun {
        c,
        m,
        req: &req,
        state,
        taken_over,
        cluster: None,
        member: None,
        prefetched,
        rest: None,
    };
    for p in plan(req.phase) {
        info!(phase = %p.name(), "join phase");
        run.phase(p).await.map_err(|e| MembershipError::InPhase {
            command: "join",
            phase: p.name(),
            source: Box::new(e),
        })?;
    }
    Ok(run.member.map(|(id, _)| id))
}

/// Before a fresh join changes anything on this machine: the CA is usable and the cluster
/// answers, to a client certificate issued into a temporary directory.
async fn preflight(c: &Config, m: &LocalMember, req: &Request) -> Result<()> {
    let ca = Ca::load_existing(&m.pki.ca_cert, &m.pki.ca_key)?;
    if req.endpoints.is_empty() {
        return Ok(());
    }
    let tmp = tempfile::tempdir().map_err(crate::fsutil::on_file(
        "cannot create a temporary directory in",
        std::env::temp_dir(),
    ))?;
    let (spec, _, _) = crate::pki::client_cert(m);
    let (cert, key) = (tmp.path().join("client.crt"), tmp.path().join("client.key"));
    ca.ensure_cert(&spec, &cert, &key, crate::pki::Lifetime::of(c))?;
    let tls = crate::cluster::TlsFiles { ca: m.pki.ca_cert.clone(), cert, key };
    let deadline = if req.retry { c.timeout() } else { Duration::ZERO };
    until_deadline("connecting to the cluster", deadline, || {
        Cluster::connect_any(&req.endpoints, &tls)
    })
    .await
    .map_err(|source| MembershipError::Unreachable { endpoints: req.endpoints.clone(), source })?;
    Ok(())
}

/// A phase after membership ran without it (`join phase X` runs its prerequisites first).
fn no_membership() -> MembershipError {
    MembershipError::Refused(
        "the membership phase did not run before this one; run `etcdadm join` again".into(),
    )
}

struct JoinRun<'a> {
    c: &'a Config,
    m: &'a LocalMember,
    req: &'a Request,
    state: State,
    /// Continuing an unfinished init: the etcd running here is that member's.
    taken_over: bool,
    cluster: Option<Cluster>,
    /// This member's id and the member list, once membership ran.
    member: Option<(u64, Vec<MemberInfo>)>,
    prefetched: Option<Prefetch>,
    /// The release's binaries still unpacking while etcd starts (`phases::install_ready`).
    rest: Option<EtcdFirst>,
}

impl JoinRun<'_> {
    fn deadline(&self) -> Duration {
        if self.req.retry {
            self.c.timeout()
        } else {
            Duration::ZERO
        }
    }

    async fn phase(&mut self, p: JoinPhase) -> Result<()> {
        let (c, m) = (self.c, self.m);
        match p {
            JoinPhase::Stop => {
                let unit = c.unit_name();
                if self.state.progress == Progress::Installing
                    && !self.taken_over
                    && Systemctl::state(&unit) == "active"
                {
                    info!(%unit, "stopping an etcd that is not a member set up by etcdadm");
                    Systemctl::stop(&unit)?;
                }
            }
            JoinPhase::Certificates => {
                let ca = Ca::load_existing(&m.pki.ca_cert, &m.pki.ca_key)?;
                phases::certificates(c, m, &ca)?;
            }
            JoinPhase::Install => {
                let ready = self.release_and_units().await?;
                self.state.save()?;
                self.rest = phases::install_ready(c, ready).await?;
            }
            JoinPhase::Membership => self.membership().await?,
            JoinPhase::Configure => {
                let (id, members) = self.member.as_ref().ok_or_else(no_membership)?;
                let b = ClusterBootstrap {
                    initial_cluster: initial_cluster(members, *id, m),
                    state: "existing",
                    token: None,
                };
                phases::configure(c, m, &b)?;
            }
            JoinPhase::Start => phases::start(c)?,
            JoinPhase::Etcdctl => phases::etcdctl(c, m)?,
            JoinPhase::Health => {
                let (id, members) = self.member.clone().ok_or_else(no_membership)?;
                let cl = self.cluster.as_ref().ok_or_else(no_membership)?;
                if members.iter().any(|x| x.id == id && x.is_learner) {
                    promote_when_caught_up(cl, id, self.deadline()).await?;
                }
                let (healthy, rest) = tokio::join!(
                    phases::wait_healthy(c, m),
                    phases::install_rest(c, self.rest.take())
                );
                let local = healthy?;
                rest?;
                phases::make_durable(c)?;
                let st = local.status().await?;
                if !self.req.defer_member {
                    self.state.progress = Progress::Member;
                }
                self.state.member_id = Some(format_id(id));
                self.state.cluster_id = Some(format_id(st.cluster_id));
                self.state.save()?;
            }
        }
        Ok(())
    }

    /// The release, ready to install. While the whole command waits for its download, the
    /// `etcd` user and the units are made (`phases::prepare_units`, which leaves alone a unit
    /// that exists), so that configure finds them in place. A release that then fails takes
    /// the units away again (`phases::unprepare_units`; the `etcd` user and the empty backup
    /// and metrics directories stay, as after bootstrap's head start).
    async fn release_and_units(&mut self) -> Result<crate::release::Ready> {
        let c = self.c;
        let fetching = self.prefetched.take();
        if self.req.phase.is_some() || fetching.is_none() {
            return Ok(phases::ready_release(c, fetching).await?);
        }
        let units = phases::UnitsAhead::start(c, "while the release downloads");
        let ready = phases::ready_release(c, fetching).await;
        match ready {
            Ok(_) => {
                units.finish().await;
            }
            Err(_) => units.undo(c).await,
        }
        Ok(ready?)
    }

    /// Finds this machine in the member list by peer URL, or adds it as a learner.
    async fn membership(&mut self) -> Result<()> {
        let (c, m) = (self.c, self.m);
        let endpoints = &self.req.endpoints;
        if endpoints.is_empty() {
            return Err(MembershipError::Refused("membership needs the client URL of a member: `etcdadm join phase membership https://10.0.0.1:2379`".into()));
        }
        let tls = crate::cluster::TlsFiles::client(&m.pki);
        let cl = until_deadline("connecting to the cluster", self.deadline(), || {
            Cluster::connect_any(endpoints, &tls)
        })
        .await
        .map_err(|source| MembershipError::Unreachable { endpoints: endpoints.clone(), source })?;
        info!(endpoint = %cl.endpoint, "connected to the cluster");
        let members = cl.members().await?;
        crate::member::check_members(
            members.iter().flat_map(|x| x.peer_urls.iter().map(|u| (x.name.as_str(), u.as_str()))),
            true,
            &format!("the member list of the cluster at {}", cl.endpoint),
        )?;
        let (id, members) = match members.iter().find(|x| x.peer_urls.contains(&m.peer_url)) {
            Some(me) if me.started() && !has_data(c)? => return Err(MembershipError::Refused(format!(
                "the cluster lists this machine as started member {} ({}), but {} is empty: its data is lost. \
                 Remove the stale member from a healthy member (`etcdctl member remove {}`), then run join again",
                me.name, format_id(me.id), c.data_dir.display(), format_id(me.id)
            ))),
            Some(me) => {
                info!(id = %format_id(me.id), learner = me.is_learner, started = me.started(), "this machine is already in the member list; completing the join");
                (me.id, members.clone())
            }
            None => {
                if has_data(c)? {
                    return Err(MembershipError::Refused(format!(
                        "{} holds data of a member that is no longer in the cluster; move it away (etcdadm never deletes it) and run join again",
                        c.data_dir.display()
                    )));
                }
                add_as_learner(&cl, &m.peer_url, self.deadline()).await?
            }
        };
        if self.state.progress == Progress::Installing {
            self.state.progress = Progress::Learner;
        }
        self.state.member_id = Some(format_id(id));
        self.state.save()?;
        self.cluster = Some(cl);
        self.member = Some((id, members));
        Ok(())
    }
}

/// Adds `peer_url` as a learner through `cl`, retrying what etcd asks callers to retry until
/// `deadline`. An attempt whose answer was lost is not added twice: the next one finds the
/// learner already listed and continues with it (`Cluster::add_learner`).
pub async fn add_as_learner(
    cl: &Cluster,
    peer_url: &str,
    deadline: Duration,
) -> Result<(u64, Vec<MemberInfo>)> {
    let (id, members) =
        until_deadline("adding this machine as a learner", deadline, || cl.add_learner(peer_url))
            .await
            .map_err(MembershipError::AddLearner)?;
    info!(id = %format_id(id), "added as learner");
    Ok((id, members))
}

/// `name=peer-url` for every member, this one under its own name. Members added as learners
/// and never started have no name yet; etcd matches members by peer URL, so a placeholder
/// serves.
fn initial_cluster(members: &[MemberInfo], my_id: u64, m: &LocalMember) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for x in members {
        let name = if x.id == my_id {
            m.name.clone()
        } else if !x.name.is_empty() {
            x.name.clone()
        } else {
            format!("unstarted-{}", format_id(x.id))
        };
        for u in &x.peer_urls {
            out.push((name.clone(), u.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_names_every_member() {
        let c = Config {
            name: Some("m3".into()),
            advertise_address: Some("10.0.0.3".into()),
            ..Default::default()
        };
        let m = LocalMember::resolve(&c, || Ok("x".into()), || Err("unused".into())).unwrap();
        let member = |id, name: &str, ip: &str, learner| MemberInfo {
            id,
            name: name.into(),
            peer_urls: vec![format!("https://{ip}:2380")],
            client_urls: vec![],
            is_learner: learner,
        };
        let members = [
            member(1, "m1", "10.0.0.1", false),
            member(2, "", "10.0.0.2", true),
            member(3, "", "10.0.0.3", true),
        ];
        assert_eq!(
            initial_cluster(&members, 3, &m),
            [
                ("m1".to_string(), "https://10.0.0.1:2380".to_string()),
                ("unstarted-2".into(), "https://10.0.0.2:2380".into()),
                ("m3".into(), "https://10.0.0.3:2380".into())
            ]
        );
    }
}
