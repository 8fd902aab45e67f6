//! Forming a new cluster (`etcdadm init`, and bootstrap's form): this machine becomes a
//! member of a new cluster, optionally restored from a snapshot. The init phases
//! (cli::InitPhase) run in table order; `init phase X` runs X after its prerequisites.

use super::error::{MembershipError, Result};
use super::existing::{check_existing, has_data, vanished, Existing};
use super::phase_table::{plan, PhaseTable};
use crate::cli::InitPhase;
use crate::config::Config;
use crate::member::LocalMember;
use crate::phases;
use crate::pki::Ca;
use crate::release::{EtcdFirst, Prefetch};
use crate::service::ClusterBootstrap;
use crate::snapshot::Restored;
use crate::state::{Origin, Progress, State};
use std::path::PathBuf;
use tracing::info;

/// The cluster a new member starts: every initial member and the cluster token.
pub struct NewCluster {
    pub initial_cluster: Vec<(String, String)>,
    pub token: String,
}

/// What `init` was asked for besides the configuration.
#[derive(Default)]
pub struct Request {
    pub snapshot: Option<PathBuf>,
    pub skip_hash_check: bool,
    /// Run only this phase (and its prerequisites).
    pub phase: Option<InitPhase>,
    /// Leave the state file short of `member` once healthy: bootstrap saves it after its
    /// last round (spec/README.md, F4).
    pub defer_member: bool,
    /// The release being fetched in the background already for this configuration
    /// (`phases::prefetch_release`; bootstrap starts it before it discovers); None: `form`
    /// starts it (the whole command) or the install phase fetches it (`init phase`).
    pub release: Option<Prefetch>,
    /// Write the certificates and the configuration while the release still downloads,
    /// then wait for it right before etcd starts (bootstrap, whose head start writes the
    /// units before the release is ready anyway). Otherwise (`init`) the release is checked
    /// before anything on the system changes. Without a snapshot only.
    pub release_last: bool,
}

/// Sets up this machine as a member of a new cluster and waits until it is healthy (for a
/// multi-member cluster, until enough of its members have started). Returns whether it was
/// already a healthy member, in which case nothing was changed.
pub async fn form(c: &Config, m: &LocalMember, new: NewCluster, mut req: Request) -> Result<bool> {
    // Names and URLs may come from discovery or from another member's member list: checked
    // before anything is written (they go into the environment file).
    crate::member::check_members(
        new.initial_cluster.iter().map(|(n, u)| (n.as_str(), u.as_str())),
        false,
        "the initial cluster",
    )?;
    new.token.parse::<crate::config::ClusterToken>().map_err(|e| {
        MembershipError::Refused(format!("the initial cluster token: {e}; nothing was written"))
    })?;
    let state = match check_existing(c, m, Origin::Init).await? {
        // A member set up by an earlier version moves to the etcd user here.
        Existing::HealthyMember if req.phase.is_none() => return Ok(!phases::migrate(c, m).await?),
        Existing::HealthyMember => State::load(&c.state_file)?.ok_or_else(vanished(c))?,
        Existing::Resume(state) | Existing::TakeOver(state) => state,
        Existing::Fresh => {
            if has_data(c)? {
                return Err(MembershipError::Refused(format!(
                    "{} already holds data that etcdadm did not create; move it away (never deleted by etcdadm) or, to start from it, take a snapshot and use `init --snapshot`",
                    c.data_dir.display()
                )));
            }
            State::new(Origin::Init, c, m)
        }
    };
    crate::release::known_bad::check(&c.version, "version", c.allow_known_bad_release)?;
    // The whole command starts the release's fetch now (bootstrap hands over its own), so
    // that etcd can start while etcdctl and etcdutl still unpack.
    let prefetched = match req.release.take() {
        None if req.phase.is_none() => phases::prefetch_release(c),
        handed => handed,
    };
    let mut phases = plan(req.phase);
    if req.release_last && req.snapshot.is_none() {
        if let Some(i) = phases.iter().position(|p| *p == InitPhase::Install) {
            let install = phases.remove(i);
            let start = phases.iter().position(|p| *p == InitPhase::Start);
            phases.insert(start.unwrap_or(phases.len()), install);
        }
        // Recorded before the first file is written, as the install phase does otherwise.
        state.save()?;
    }
    let mut run = InitRun { c, m, new, req: &req, state, prefetched, rest: None, restored: None };
    for p in phases {
        info!(phase = %p.name(), "init phase");
        run.phase(p).await.map_err(|e| MembershipError::InPhase {
            command: "init",
            phase: p.name(),
            source: Box::new(e),
        })?;
    }
    Ok(false)
}

struct InitRun<'a> {
    c: &'a Config,
    m: &'a LocalMember,
    new: NewCluster,
    req: &'a Request,
    state: State,
    prefetched: Option<Prefetch>,
    /// The release's binaries still unpacking while etcd starts (`phases::install_ready`).
    rest: Option<EtcdFirst>,
    restored: Option<Restored>,
}

impl InitRun<'_> {
    async fn phase(&mut self, p: InitPhase) -> Result<()> {
        let (c, m) = (self.c, self.m);
        match p {
            InitPhase::Install => {
                // Everything that can be checked is checked before the system changes: the
                // release, and the snapshot (restored into staging).
                let snap = self
                    .req
                    .snapshot
                    .as_deref()
                    .filter(|_| !crate::fsutil::dir_has_entries(&c.data_dir).unwrap_or(true));
                // An s3:// snapshot is downloaded beside the data directory and verified
                // against its recorded SHA-256 first; the temporary file goes on drop.
                let downloaded = match snap {
                    Some(s) => crate::snapshot::fetch_s3(c, s).await?,
                    None => None,
                };
                match snap {
                    // A snapshot is restored with the release's etcdutl: all of it first.
                    Some(snap) => {
                        let ready = phases::ready_release(c, self.prefetched.take()).await?;
                        let release = phases::whole_release(c, ready).await?;
                        let local = downloaded.as_ref().map_or(snap, |d| d.file.path());
                        self.restored = Some(crate::snapshot::prepare(
                            release.dir(),
                            c,
                            m,
                            &self.new.token,
                            local,
                            self.req.skip_hash_check,
                        )?);
                        self.state.save()?;
                        phases::install(c, &release)?;
                    }
                    None => {
                        let ready = phases::ready_release(c, self.prefetched.take()).await?;
                        self.state.save()?;
                        self.rest = phases::install_ready(c, ready).await?;
                    }
                }
            }
            InitPhase::Certificates => {
                let ca = Ca::load_or_create(&m.pki.ca_cert, &m.pki.ca_key, c.ca_validity_days)?;
                phases::certificates(c, m, &ca)?;
            }
            InitPhase::Snapshot => match (self.restored.take(), self.req.snapshot.as_deref()) {
                (Some(r), _) => r.commit(&c.data_dir)?,
                (None, Some(_)) => {
                    info!(data_dir = %c.data_dir.display(), "data directory already holds data; not restoring again")
                }
                (None, None) => info!("no --snapshot given; nothing to restore"),
            },
            InitPhase::Configure => {
                let b = ClusterBootstrap {
                    initial_cluster: self.new.initial_cluster.clone(),
                    state: "new",
                    token: Some(self.new.token.clone()),
                };
                phases::configure(c, m, &b)?;
            }
            InitPhase::Start => {
                // A restored member has its WAL already: its etcd asks no peer first.
                let tls = crate::cluster::TlsFiles::client(&m.pki);
                if self.new.initial_cluster.len() > 1
                    && self.req.snapshot.is_none()
                    && tls.cert.is_file()
                {
                    super::start_order::wait_for_first(&self.new.initial_cluster, &m.name, &tls)
                        .await;
                }
                phases::start(c)?
            }
            InitPhase::Etcdctl => phases::etcdctl(c, m)?,
            // Printed by `commands::init` (on stdout, once the member is up), not by every
            // caller of form.
            InitPhase::PostInitInstructions => {}
            InitPhase::Health => {
                let (healthy, rest) = tokio::join!(
                    phases::wait_healthy(c, m),
                    phases::install_rest(c, self.rest.take())
                );
                let cl = healthy?;
                rest?;
                phases::make_durable(c)?;
                let st = cl.status().await?;
                if !self.req.defer_member {
                    self.state.progress = Progress::Member;
                }
                self.state.member_id = Some(crate::cluster::format_id(st.member_id));
                self.state.cluster_id = Some(crate::cluster::format_id(st.cluster_id));
                self.state.save()?;
                info!(member = %m.name, id = %crate::cluster::format_id(st.member_id), "etcd member is healthy");
            }
        }
        Ok(())
    }
}
