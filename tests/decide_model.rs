//! `decide()` held to the model of the bootstrap protocol (spec/bootstrap.pml, spec/README.md).
//!
//! A small simulated world — machines with a state file, a data directory and an etcd
//! process; clusters with members; discovery that is stale or still growing; crashes; lost
//! probes and calls — in which every machine runs the steps of `bootstrap::converge` under
//! the model's names (ROUND, FORM, FORM_START, ..., JOIN_PROMOTE, REMOVE) and takes its
//! decisions from the real `decide()`. The invariants are the model's:
//!
//! * S1 never two clusters, each of which had a leader, each with a started member on a live machine;
//! * S2 never a voter of such a cluster whose (live) machine holds another cluster's data;
//! * S3 a removal never takes a cluster that has a quorum of running voters below it;
//! * S4 a member whose etcd once ran never starts again from an empty data directory;
//! * S5 with `restore-from`, a machine restores a backup only while no other live machine
//!   holds member data;
//! * S6 with `restore-from`, at most one machine restores (another only once it is dead);
//! * L  once discovery settles, partitions heal and crashes stop, every live machine ends a
//!   started voter of the one cluster, its agent done (checked where the model proves it).
//!
//! The scenario tests replay the checker's counterexamples step by step (spec/README.md,
//! "Regression cases"); the proptests drive random interleavings through the same world.

use etcdadm::bootstrap::decide::{decide, token, Candidate, Decision, Probe, View};
use etcdadm::cluster::MemberInfo;
use proptest::prelude::*;
use std::collections::BTreeMap;

// ---- addresses, candidates, members ---------------------------------------------------

fn peer_url(a: usize) -> String {
    format!("https://10.0.0.{}:2380", a + 1)
}
fn client_url(a: usize) -> String {
    format!("https://10.0.0.{}:2379", a + 1)
}
fn addr_of_url(u: &str) -> usize {
    let host = u.trim_start_matches("https://10.0.0.");
    host[..host.find(':').unwrap()].parse::<usize>().unwrap() - 1
}

/// The model's machine states (`pc`), named after the Rust steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Down,
    MemberUp,
    Round,
    Form,
    FormStart,
    FormHealthy,
    Join,
    JoinAdd,
    JoinStart,
    JoinPromote,
    JoinHealthy,
    Remove,
    /// F4: the last rounds of a new member with an authoritative peer set
    Settle,
    Ready,
    Gone,
    Unborn,
}

/// state.rs `State` on disk: (origin, phase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sf {
    None,
    InitInstalling,
    JoinInstalling,
    JoinLearner,
    Member,
}

/// etcd.env, once enabled: `new` for a cluster, or `existing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Env {
    Off,
    New(usize),
    Existing(usize),
}

#[derive(Clone, Debug)]
struct Machine {
    pc: Pc,
    up: bool,
    etcd: bool,
    sf: Sf,
    /// Data directory: the cluster (1-based) whose data it holds, 0 = empty.
    data: usize,
    env: Env,
    /// This round's decision and what it refers to.
    form: Option<(String, Vec<(String, usize)>)>,
    cluster: usize,
    target: u64,
    learner: bool,
    /// converge's `settling` (memory: lost on restart)
    settling: bool,
    /// This round decided Restore: FORM restores the backup (memory: lost on restart)
    restoring: bool,
}

#[derive(Clone, Debug)]
struct Member {
    id: u64,
    /// Initial members carry their names from the start; others once they start.
    name: String,
    voter: bool,
    started: bool,
}

#[derive(Clone, Debug)]
struct Cluster {
    token: String,
    /// By address (peer URL).
    members: BTreeMap<usize, Member>,
    led: bool,
    everled: bool,
}

/// The world's knobs: the model's -D switches.
#[derive(Clone, Copy, Debug)]
struct Setup {
    n: usize,
    repl: bool,
    reuse: bool,
    names_by_addr: bool,
    auth: bool,
    lossy: bool,
    fresh_views: bool,
    max_crash: usize,
    form_waits: bool,
    replace_late: bool,
    zombie: bool,
    /// bootstrap.restore-from: a cluster formed from nothing is restored by one machine
    restore: bool,
}

impl Setup {
    fn formation(n: usize) -> Setup {
        Setup {
            n,
            repl: false,
            reuse: false,
            names_by_addr: false,
            auth: true,
            lossy: true,
            fresh_views: false,
            max_crash: 1,
            form_waits: false,
            replace_late: false,
            zombie: true,
            restore: false,
        }
    }
}

/// One step of the world: the model's transitions. `ok: false` takes the failure branch (a
/// lost call, a wait_healthy timeout, etcd not reaching its peers).
#[derive(Clone, Copy, Debug)]
enum Act {
    /// discovery lists the next machine / the victim leaves / the replacement is launched
    List,
    Depart,
    Launch,
    Die,
    Calm,
    /// ROUND: discover version `ver` (clamped), probes of the candidates in `lost` lost
    Round {
        k: usize,
        ver: usize,
        lost: u8,
    },
    Step {
        k: usize,
        ok: bool,
    },
    Crash {
        k: usize,
    },
    EtcdRestart {
        k: usize,
    },
}

const MAX_LEARNERS: usize = 1;
const STRICT: bool = true;

struct World {
    s: Setup,
    m: Vec<Machine>,
    c: Vec<Cluster>,
    nev: usize,
    calm: bool,
    crashes: usize,
    next_id: u64,
    log: Vec<String>,
    /// The first invariant violated (S1..S6), if any.
    violation: Option<String>,
    /// The machines that restored a backup (S6).
    restorers: Vec<usize>,
}

impl World {
    fn new(s: Setup) -> World {
        let machines = s.n + usize::from(s.repl);
        let m = (0..machines)
            .map(|k| Machine {
                pc: if k < s.n { Pc::Round } else { Pc::Unborn },
                up: k < s.n,
                etcd: false,
                sf: Sf::None,
                data: 0,
                env: Env::Off,
                form: None,
                cluster: 0,
                target: 0,
                learner: false,
                settling: false,
                restoring: false,
            })
            .collect();
        let dummy =
            Cluster { token: String::new(), members: BTreeMap::new(), led: false, everled: false };
        World {
            s,
            m,
            c: vec![dummy],
            nev: 0,
            calm: false,
            crashes: 0,
            next_id: 100,
            log: Vec::new(),
            violation: None,
            restorers: Vec::new(),
        }
    }

    fn victim(&self) -> usize {
        self.s.n - 1
    }
    /// Machine -> peer URL (the replacement may reuse the victim's).
    fn addr(&self, k: usize) -> usize {
        if self.s.repl && self.s.reuse && k == self.s.n {
            self.victim()
        } else {
            k
        }
    }
    /// Machine -> Candidate index (names: instance ids, or from the address).
    fn cand(&self, k: usize) -> usize {
        if self.s.repl && self.s.reuse && self.s.names_by_addr && k == self.s.n {
            self.victim()
        } else {
            k
        }
    }
    fn candidate(&self, j: usize) -> Candidate {
        let a = self.addr(j);
        Candidate { peer_url: peer_url(a), client_url: client_url(a), name: format!("m{j}") }
    }
    fn dead(&self, k: usize) -> bool {
        matches!(self.m[k].pc, Pc::Gone | Pc::Unborn)
    }
    fn final_version(&self) -> usize {
        self.s.n + if self.s.repl { 2 } else { 0 }
    }
    /// Discovery's history: versions 0..=n list machines 0..v; n+1: the victim left; n+2:
    /// the replacement is listed.
    fn view_set(&self, v: usize) -> Vec<usize> {
        let n = self.s.n;
        let mut set: Vec<usize> = (0..v.min(n)).collect();
        if v > n {
            set.retain(|j| *j != self.victim());
        }
        if v > n + 1 {
            let r = self.cand(n);
            if !set.contains(&r) {
                set.push(r);
            }
        }
        set
    }
    fn all_ready(&self) -> bool {
        (0..self.s.n).all(|k| self.m[k].pc == Pc::Ready)
    }

    // ---- etcd ------------------------------------------------------------------------

    fn present(&self, c: usize, a: usize) -> bool {
        self.c[c].members.contains_key(&a)
    }
    /// A running etcd at peer URL `a` is a member of `c`.
    fn runs_in(&self, a: usize, c: usize) -> bool {
        self.present(c, a)
            && (0..self.m.len())
                .any(|k| self.addr(k) == a && self.m[k].up && self.m[k].etcd && self.m[k].data == c)
    }
    fn raft(&mut self) {
        for c in 1..self.c.len() {
            let voters: Vec<usize> =
                self.c[c].members.iter().filter(|(_, x)| x.voter).map(|(a, _)| *a).collect();
            let running = voters.iter().filter(|a| self.runs_in(**a, c)).count();
            let led = !voters.is_empty() && running > voters.len() / 2;
            self.c[c].led = led;
            if led {
                self.c[c].everled = true;
                let addrs: Vec<usize> = self.c[c].members.keys().copied().collect();
                for a in addrs {
                    if self.runs_in(a, c) {
                        self.c[c].members.get_mut(&a).unwrap().started = true;
                    }
                }
            }
        }
        for k in 0..self.m.len() {
            let d = self.m[k].data;
            if d != 0 && !self.present(d, self.addr(k)) {
                self.m[k].etcd = false; // removed: etcd stops
            }
        }
    }

    fn violate(&mut self, what: String) {
        self.log.push(format!("!! {what}"));
        if self.violation.is_none() {
            self.violation = Some(what);
        }
    }

    /// phases::start / systemd: etcd with data runs it; without, `new` bootstraps (refusing
    /// when a reachable peer lists it as started), `existing` needs a running member.
    fn etcd_start(&mut self, k: usize, reach: bool) {
        let a = self.addr(k);
        if self.m[k].data != 0 {
            self.m[k].etcd = self.present(self.m[k].data, a);
            return;
        }
        let (c, new) = match self.m[k].env {
            Env::Off => return,
            Env::New(c) => (c, true),
            Env::Existing(c) => (c, false),
        };
        let reachable = reach && (0..self.s.n + 2).any(|b| b != a && self.runs_in(b, c));
        let started = self.c[c].members.get(&a).is_some_and(|x| x.started);
        if new && reachable && started {
            self.m[k].etcd = false; // "member has already been bootstrapped"
            return;
        }
        if !new && (!reachable || !self.present(c, a)) {
            self.m[k].etcd = false;
            return;
        }
        if started {
            self.violate(format!(
                "S4: m{k} starts the started member at address {a} of c{c} from an empty data dir"
            ));
        }
        self.m[k].data = c;
        self.m[k].etcd = self.present(c, a);
    }

    /// S5 and S6, when machine `k` restores.
    fn check_restore(&mut self, k: usize) {
        if let Some(j) =
            (0..self.m.len()).find(|j| *j != k && !self.dead(*j) && self.m[*j].data != 0)
        {
            self.violate(format!("S5: m{k} restores while m{j} holds c{}'s data", self.m[j].data));
        }
        if let Some(r) = self.restorers.iter().copied().find(|r| *r != k && !self.dead(*r)) {
            self.violate(format!("S6: m{k} restores, but m{r} restored before"));
        }
        if !self.restorers.contains(&k) {
            self.restorers.push(k);
        }
    }

    fn healthy(&self, k: usize) -> bool {
        let d = self.m[k].data;
        d != 0 && self.m[k].up && self.m[k].etcd && self.present(d, self.addr(k)) && self.c[d].led
    }

    fn check(&mut self) {
        let live_started = |w: &World, c: usize| {
            (0..w.m.len()).any(|k| {
                !w.dead(k)
                    && w.m[k].data == c
                    && w.c[c].members.get(&w.addr(k)).is_some_and(|x| x.started)
            })
        };
        let formed: Vec<usize> =
            (1..self.c.len()).filter(|c| self.c[*c].everled && live_started(self, *c)).collect();
        if formed.len() > 1 {
            self.violate(format!("S1: two clusters {formed:?} had a leader and have started members on live machines"));
        }
        for c in 1..self.c.len() {
            if !self.c[c].everled {
                continue;
            }
            for k in 0..self.m.len() {
                let a = self.addr(k);
                let stranded = self.c[c].members.get(&a).is_some_and(|x| x.voter && !x.started)
                    && !self.dead(k)
                    && self.m[k].data != 0
                    && self.m[k].data != c;
                if stranded {
                    self.violate(format!(
                        "S2: voter at address {a} of c{c}, but m{k} holds c{}'s data",
                        self.m[k].data
                    ));
                }
            }
        }
    }

    /// The liveness goal: every live machine READY, a started voter of one cluster that has
    /// no other members (with AUTH off a dead victim's member may stay).
    fn settled(&self) -> bool {
        (1..self.c.len()).any(|c| {
            let live: Vec<usize> = (0..self.m.len()).filter(|k| !self.dead(*k)).collect();
            live.iter().all(|k| {
                self.m[*k].pc == Pc::Ready
                    && self.runs_in(self.addr(*k), c)
                    && self.c[c].members.get(&self.addr(*k)).is_some_and(|x| x.voter && x.started)
            }) && (!self.s.auth
                || self.c[c].members.keys().all(|a| live.iter().any(|k| self.addr(*k) == *a)))
        })
    }

    fn restart(&mut self, k: usize) {
        self.m[k].settling = false;
        self.m[k].restoring = false;
        self.m[k].pc = if self.m[k].sf == Sf::Member { Pc::MemberUp } else { Pc::Round };
    }

    fn cluster_of(&mut self, tok: &str, initial: &[(String, usize)]) -> usize {
        if let Some(c) = (1..self.c.len()).find(|c| self.c[*c].token == tok) {
            return c;
        }
        let members = initial
            .iter()
            .map(|(n, a)| {
                (*a, Member { id: *a as u64 + 1, name: n.clone(), voter: true, started: false })
            })
            .collect();
        self.c.push(Cluster { token: tok.to_string(), members, led: false, everled: false });
        self.c.len() - 1
    }

    // ---- ROUND: discovery, probes, decide() ------------------------------------------

    fn member_list(&self, c: usize) -> Vec<MemberInfo> {
        self.c[c]
            .members
            .iter()
            .map(|(a, x)| MemberInfo {
                id: x.id,
                name: if x.started || x.voter { x.name.clone() } else { String::new() },
                peer_urls: vec![peer_url(*a)],
                client_urls: if x.started { vec![client_url(*a)] } else { vec![] },
                is_learner: !x.voter,
            })
            .collect()
    }

    /// probe.rs: a led member answers on its client port; a leaderless one gives its member
    /// list on the peer port; an up machine without etcd refuses; a down one is silent.
    fn probe(&self, a: usize) -> Probe {
        for c in 1..self.c.len() {
            if self.runs_in(a, c) {
                let led = self.c[c].led;
                return Probe::Member {
                    cluster_id: c as u64,
                    leader: if led { 1 } else { 0 },
                    members: self.member_list(c),
                };
            }
        }
        if (0..self.m.len()).any(|k| self.addr(k) == a && self.m[k].up) {
            Probe::Refused
        } else {
            Probe::Silent
        }
    }

    fn view(&self, k: usize, ver: usize, lost: u8) -> View {
        let mut peers: Vec<Candidate> =
            self.view_set(ver).into_iter().map(|j| self.candidate(j)).collect();
        peers.sort();
        let me_c = self.candidate(self.cand(k));
        let me = peers.iter().find(|p| **p == me_c).cloned();
        // bootstrap::probe_round: every peer, this machine's own member, then members of a
        // running cluster outside the peer set. Probes of others may be lost.
        let me_url = peer_url(self.addr(k));
        let probe = |p: &Candidate, j: usize| {
            let a = addr_of_url(&p.peer_url);
            let lost_now = p.peer_url != me_url && lost >> j & 1 == 1;
            (p.clone(), if lost_now { Probe::Silent } else { self.probe(a) })
        };
        let mut probes: Vec<(Candidate, Probe)> = peers
            .iter()
            .filter(|p| p.peer_url != me_url || Some(*p) == me.as_ref())
            .map(|p| probe(p, p.name[1..].parse().unwrap()))
            .collect();
        let mut outside: Vec<usize> = Vec::new();
        for (_, pr) in &probes {
            if let Probe::Member { leader, members, .. } = pr {
                if *leader != 0 {
                    for x in members {
                        let a = addr_of_url(&x.peer_urls[0]);
                        if !peers.iter().any(|p| p.peer_url == x.peer_urls[0])
                            && !outside.contains(&a)
                        {
                            outside.push(a);
                        }
                    }
                }
            }
        }
        for a in outside {
            let c = Candidate {
                peer_url: peer_url(a),
                client_url: client_url(a),
                name: format!("x{a}"),
            };
            probes.push(probe(&c, a));
        }
        View {
            me,
            peers,
            expected: Some(self.s.n),
            authoritative: self.s.auth,
            probes,
            has_data: self.m[k].data != 0,
            restore: self.s.restore,
        }
    }

    fn round(&mut self, k: usize, ver: usize, lost: u8) {
        let ver = if self.calm || self.s.fresh_views { self.nev } else { ver.min(self.nev) };
        let lost = if self.calm || !self.s.lossy { 0 } else { lost };
        let v = self.view(k, ver, lost);
        let d = decide(&v);
        let cluster_of_endpoint = |eps: &[String]| -> usize {
            let (_, p) = v.probes.iter().find(|(c, _)| c.client_url == eps[0]).unwrap();
            match p {
                Probe::Member { cluster_id, .. } => *cluster_id as usize,
                _ => unreachable!(),
            }
        };
        self.log.push(format!(
            "m{k} {:?}: discovers {:?} lost {lost:#b}: {d:?}",
            self.m[k].pc,
            self.view_set(ver)
        ));
        if self.m[k].pc == Pc::Settle {
            // bootstrap::converge while settling (F4)
            // bootstrap::settled: the own member answers, led, and its cluster has no member
            // outside the view
            let own = v.me.as_ref().and_then(|me| {
                v.probes.iter().find_map(|(c, p)| match p {
                    Probe::Member { leader, members, .. } if c == me && *leader != 0 => {
                        Some(members)
                    }
                    _ => None,
                })
            });
            let settled = v.expected == Some(v.peers.len())
                && own.is_some_and(|ms| {
                    ms.iter().all(|x| v.peers.iter().any(|p| x.peer_urls.contains(&p.peer_url)))
                });
            match d {
                Decision::Join { .. } if settled => {
                    self.m[k].sf = Sf::Member;
                    self.m[k].pc = Pc::Ready;
                    self.m[k].settling = false;
                }
                Decision::RemoveStale { member, endpoints } => {
                    self.m[k].cluster = cluster_of_endpoint(&endpoints);
                    self.m[k].target = member.id;
                    self.m[k].pc = Pc::Remove;
                }
                _ => {}
            }
            return;
        }
        let restoring = matches!(d, Decision::Restore { .. });
        match d {
            Decision::Wait(_) => {}
            Decision::Form { initial_cluster, token }
            | Decision::Restore { initial_cluster, token } => {
                self.m[k].restoring = restoring;
                let initial =
                    initial_cluster.iter().map(|(n, u)| (n.clone(), addr_of_url(u))).collect();
                self.m[k].form = Some((token, initial));
                self.m[k].pc = Pc::Form;
            }
            Decision::Join { endpoints } => {
                self.m[k].cluster = cluster_of_endpoint(&endpoints);
                self.m[k].pc = Pc::Join;
            }
            Decision::RemoveStale { member, endpoints } => {
                self.m[k].cluster = cluster_of_endpoint(&endpoints);
                self.m[k].target = member.id;
                self.m[k].pc = Pc::Remove;
            }
        }
    }

    // ---- the other steps ---------------------------------------------------------------

    fn step(&mut self, k: usize, ok: bool) {
        let a = self.addr(k);
        let netfail = !ok && self.s.lossy && !self.calm;
        match self.m[k].pc {
            Pc::MemberUp => {
                if !self.m[k].etcd {
                    self.etcd_start(k, ok || self.calm);
                }
                self.raft();
                if self.healthy(k) {
                    self.m[k].pc = Pc::Ready;
                }
            }
            // membership::form: check_existing(Init), state.save
            // F1: an unfinished join (Installing) is taken over
            Pc::Form => match self.m[k].sf {
                Sf::JoinLearner => self.restart(k),
                Sf::None if self.m[k].data != 0 => self.restart(k),
                _ => {
                    self.m[k].sf = Sf::InitInstalling;
                    self.m[k].pc = Pc::FormStart;
                }
            },
            // configure (new) + phases::start; a restore first restores the backup into the
            // empty data directory (snapshot::prepare + commit), which etcd then starts from
            Pc::FormStart => {
                if self.m[k].restoring {
                    self.check_restore(k);
                }
                let (tok, urls) = self.m[k].form.clone().unwrap();
                let c = self.cluster_of(&tok, &urls);
                self.m[k].env = Env::New(c);
                if !self.m[k].etcd {
                    self.etcd_start(k, ok || self.calm || !self.s.lossy);
                }
                self.m[k].pc = Pc::FormHealthy;
            }
            // wait_healthy, state.save (Member)
            Pc::FormHealthy => {
                if self.healthy(k) {
                    self.finish(k);
                } else if !ok && !self.s.form_waits {
                    self.restart(k); // timed out
                }
            }
            // membership::join: check_existing(Join), state.save
            // F1: an unfinished init (Installing) is taken over
            Pc::Join => match self.m[k].sf {
                Sf::None if self.m[k].data != 0 => self.restart(k),
                sf => {
                    if sf == Sf::None || sf == Sf::InitInstalling {
                        self.m[k].sf = Sf::JoinInstalling;
                    }
                    self.m[k].pc = Pc::JoinAdd;
                }
            },
            // connect_any, members(), find me by peer URL or add_learner, state.save (Learner)
            Pc::JoinAdd => {
                let c = self.m[k].cluster;
                if netfail || !self.c[c].led {
                    self.restart(k);
                } else {
                    match self.c[c].members.get(&a).cloned() {
                        Some(x) if x.started && self.m[k].data == 0 => self.restart(k), // "its data is lost"
                        Some(x) => {
                            self.m[k].learner = !x.voter;
                            self.m[k].target = x.id;
                            self.m[k].pc = Pc::JoinStart;
                        }
                        None if self.m[k].data != 0 => self.restart(k),
                        None => {
                            if self.c[c].members.values().filter(|x| !x.voter).count()
                                >= MAX_LEARNERS
                            {
                                self.restart(k);
                            } else {
                                self.next_id += 1;
                                let name = self.candidate(self.cand(k)).name;
                                self.c[c].members.insert(
                                    a,
                                    Member { id: self.next_id, name, voter: false, started: false },
                                );
                                self.m[k].learner = true;
                                self.m[k].target = self.next_id;
                                self.m[k].pc = Pc::JoinStart;
                            }
                        }
                    }
                    if self.m[k].pc == Pc::JoinStart && self.m[k].sf == Sf::JoinInstalling {
                        self.m[k].sf = Sf::JoinLearner;
                    }
                }
            }
            // configure (existing) + phases::start
            Pc::JoinStart => {
                self.m[k].env = Env::Existing(self.m[k].cluster);
                if !self.m[k].etcd {
                    self.etcd_start(k, ok || self.calm || !self.s.lossy);
                }
                self.m[k].pc = if self.m[k].learner { Pc::JoinPromote } else { Pc::JoinHealthy };
            }
            Pc::JoinPromote => {
                let c = self.m[k].cluster;
                let voters = self.c[c].members.values().filter(|x| x.voter).count() + 1;
                let started =
                    self.c[c].members.values().filter(|x| x.voter && x.started).count() + 1;
                let me = self.c[c].members.get(&a).cloned();
                let promotable = matches!(&me, Some(x) if x.id == self.m[k].target && !x.voter)
                    && self.c[c].led
                    && self.m[k].up
                    && self.m[k].etcd
                    && self.m[k].data == c
                    && (!STRICT || started > voters / 2);
                if netfail || !promotable {
                    self.restart(k);
                } else {
                    self.c[c].members.get_mut(&a).unwrap().voter = true;
                    self.m[k].pc = Pc::JoinHealthy;
                }
            }
            Pc::JoinHealthy => {
                let d = self.m[k].data;
                if self.healthy(k) && self.c[d].members.get(&a).is_some_and(|x| x.voter) {
                    self.finish(k);
                } else {
                    self.restart(k);
                }
            }
            // Decision::RemoveStale: connect_any + remove(member.id)
            Pc::Remove => {
                let c = self.m[k].cluster;
                let target = self.c[c]
                    .members
                    .iter()
                    .find(|(_, x)| x.id == self.m[k].target)
                    .map(|(a, x)| (*a, x.clone()));
                match target {
                    Some((t, x)) if !netfail && self.c[c].led => {
                        let voters = self.c[c].members.values().filter(|y| y.voter).count();
                        let running = self.c[c]
                            .members
                            .iter()
                            .filter(|(b, y)| y.voter && self.runs_in(**b, c))
                            .count();
                        let started_others = self.c[c]
                            .members
                            .iter()
                            .filter(|(b, y)| **b != t && y.voter && y.started)
                            .count();
                        let t_runs = self.runs_in(t, c);
                        let refused = STRICT
                            && x.voter
                            && (started_others < (voters - 1) / 2 + 1
                                || (t_runs && running - 1 < (voters - 1) / 2 + 1));
                        if refused {
                            self.restart(k);
                        } else {
                            if x.voter
                                && running > voters / 2
                                && running - usize::from(t_runs) < (voters - 1) / 2 + 1
                            {
                                self.violate(format!("S3: removing the member at address {t} takes c{c} below quorum"));
                            }
                            self.c[c].members.remove(&t);
                            self.m[k].pc = if self.m[k].settling { Pc::Settle } else { Pc::Round };
                        }
                    }
                    _ => self.restart(k),
                }
            }
            Pc::Round | Pc::Settle | Pc::Ready | Pc::Gone | Pc::Unborn => {}
            Pc::Down => {
                self.m[k].up = true;
                if self.m[k].env != Env::Off {
                    self.etcd_start(k, ok || self.calm || !self.s.lossy);
                }
                self.restart(k);
            }
        }
    }

    /// Healthy at the end of membership::form / membership::join: READY, or with an authoritative peer
    /// set first settle (F4).
    fn finish(&mut self, k: usize) {
        if self.s.auth {
            self.m[k].settling = true;
            self.m[k].pc = Pc::Settle;
        } else {
            self.m[k].sf = Sf::Member;
            self.m[k].pc = Pc::Ready;
        }
    }

    fn can_crash(&self, k: usize) -> bool {
        self.m[k].up
            && !self.calm
            && self.crashes < self.s.max_crash
            && !self.dead(k)
            && !(self.s.form_waits && self.m[k].sf == Sf::InitInstalling)
    }

    /// The world's enabled transitions; Round{..} and Step{..} carry placeholder choices.
    fn enabled(&self) -> Vec<Act> {
        let s = &self.s;
        let mut v = Vec::new();
        if self.nev < s.n {
            v.push(Act::List);
        }
        let victim_gone = s.repl && self.m[self.victim()].pc == Pc::Gone;
        if s.repl
            && self.nev == s.n
            && (s.zombie || victim_gone)
            && (!s.replace_late || self.all_ready() || victim_gone)
        {
            v.push(Act::Depart);
        }
        if s.repl && self.nev == s.n + 1 && (!s.reuse || victim_gone) {
            v.push(Act::Launch);
        }
        if s.repl && !victim_gone && (!s.replace_late || self.all_ready()) {
            v.push(Act::Die);
        }
        if !self.calm && self.nev == self.final_version() && (!s.repl || victim_gone) {
            v.push(Act::Calm);
        }
        for k in 0..self.m.len() {
            match self.m[k].pc {
                Pc::Round | Pc::Settle => v.push(Act::Round { k, ver: 0, lost: 0 }),
                Pc::Ready | Pc::Gone | Pc::Unborn => {}
                _ => v.push(Act::Step { k, ok: true }),
            }
            if self.can_crash(k) {
                v.push(Act::Crash { k });
            }
            if self.m[k].up
                && self.m[k].env != Env::Off
                && !self.m[k].etcd
                && self.m[k].pc != Pc::Down
            {
                v.push(Act::EtcdRestart { k });
            }
        }
        v
    }

    fn apply(&mut self, act: Act) {
        match act {
            Act::List => self.nev += 1,
            Act::Depart => self.nev += 1,
            Act::Launch => {
                self.nev += 1;
                let r = self.s.n;
                self.m[r].up = true;
                self.m[r].pc = Pc::Round;
            }
            Act::Die => {
                let v = self.victim();
                self.m[v].up = false;
                self.m[v].etcd = false;
                self.m[v].pc = Pc::Gone;
            }
            Act::Calm => self.calm = true,
            Act::Round { k, ver, lost } => self.round(k, ver, lost),
            Act::Step { k, ok } => self.step(k, ok),
            Act::Crash { k } => {
                self.crashes += 1;
                self.m[k].up = false;
                self.m[k].etcd = false;
                self.m[k].pc = Pc::Down;
            }
            Act::EtcdRestart { k } => self.etcd_start(k, self.calm || !self.s.lossy),
        }
        self.raft();
        self.check();
        if !matches!(act, Act::Round { .. }) {
            let line = match act {
                Act::Step { k, .. } | Act::Crash { k } | Act::EtcdRestart { k } => format!(
                    "{act:?} -> m{k} {:?} {:?} data=c{} etcd={}",
                    self.m[k].pc, self.m[k].sf, self.m[k].data, self.m[k].etcd
                ),
                _ => format!("{act:?}"),
            };
            self.log.push(line);
        }
    }

    /// Runs scripted steps, checking each is enabled (a replayed counterexample).
    fn script(&mut self, acts: &[Act]) {
        for a in acts {
            let en = self.enabled();
            let allowed = en.iter().any(|e| match (e, a) {
                (Act::Round { k, .. }, Act::Round { k: k2, .. }) => k == k2,
                (Act::Step { k, .. }, Act::Step { k: k2, .. }) => k == k2,
                (x, y) => format!("{x:?}") == format!("{y:?}"),
            });
            assert!(allowed, "{a:?} is not enabled; log:\n{}", self.log.join("\n"));
            self.apply(*a);
        }
    }

    /// After the storm: discovery settled, network healed, no crashes. Fair round-robin
    /// until settled or `bound` rounds.
    fn calm_down(&mut self, bound: usize) -> bool {
        for _ in 0..bound {
            for a in [Act::List, Act::Depart, Act::Launch, Act::Die, Act::Calm] {
                if self.enabled().iter().any(|e| format!("{e:?}") == format!("{a:?}")) {
                    self.apply(a);
                }
            }
            if self.calm && self.settled() {
                return true;
            }
            for k in 0..self.m.len() {
                let act = match self.m[k].pc {
                    Pc::Round | Pc::Settle => Act::Round { k, ver: usize::MAX, lost: 0 },
                    Pc::Ready | Pc::Gone | Pc::Unborn => continue,
                    _ => Act::Step { k, ok: true },
                };
                self.apply(act);
                if self.m[k].up
                    && self.m[k].env != Env::Off
                    && !self.m[k].etcd
                    && self.m[k].pc != Pc::Down
                {
                    self.apply(Act::EtcdRestart { k });
                }
            }
        }
        self.calm && self.settled()
    }
}

// ---- randomized interleavings -----------------------------------------------------------

/// Plays `tape` as the scheduler's and the world's choices, then calms the world down.
/// Returns the world and whether it settled.
fn play(s: Setup, tape: &[(u16, u8, u8, bool)]) -> (World, bool) {
    let mut w = World::new(s);
    for (pick, ver, lost, ok) in tape {
        let en = w.enabled();
        if en.is_empty() {
            break;
        }
        let act = match en[*pick as usize % en.len()] {
            Act::Round { k, .. } => Act::Round { k, ver: *ver as usize, lost: *lost },
            Act::Step { k, .. } => Act::Step { k, ok: *ok },
            a => a,
        };
        w.apply(act);
        if w.violation.is_some() {
            return (w, false);
        }
    }
    let settled = w.calm_down(60);
    (w, settled)
}

fn tape() -> impl Strategy<Value = Vec<(u16, u8, u8, bool)>> {
    proptest::collection::vec(
        (any::<u16>(), 0u8..8, any::<u8>(), proptest::bool::weighted(0.8)),
        0..160,
    )
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn assert_safe(w: &World) -> Result<(), TestCaseError> {
    prop_assert!(
        w.violation.is_none(),
        "{}\n{}",
        w.violation.as_deref().unwrap_or(""),
        w.log.join("\n")
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Formation, any N, authoritative or not, stale and growing views, a crash, lost
    /// probes and calls: S1-S4 hold (the model: `safety-formation-N*`).
    #[test]
    fn formation_is_safe(n in prop_oneof![Just(1usize), Just(3), Just(5)], auth in any::<bool>(), t in tape()) {
        let (w, _) = play(Setup { auth, ..Setup::formation(n) }, &t);
        assert_safe(&w)?;
    }

    /// ... and converges once the world calms down (the model: `live-formation-N1/N3*`).
    #[test]
    fn formation_converges(n in prop_oneof![Just(1usize), Just(3)], auth in any::<bool>(), t in tape()) {
        let (w, settled) = play(Setup { auth, ..Setup::formation(n) }, &t);
        assert_safe(&w)?;
        prop_assert!(settled, "did not settle:\n{}", w.log.join("\n"));
    }

    /// N=5 converges for a static or DNS peer set when membership::form is not interrupted (the
    /// model: `live-formation-N5`, the largest that fits its budget).
    #[test]
    fn formation_of_five_converges(t in tape()) {
        let (w, settled) = play(Setup { auth: false, form_waits: true, ..Setup::formation(5) }, &t);
        assert_safe(&w)?;
        prop_assert!(settled, "did not settle:\n{}", w.log.join("\n"));
    }

    /// A member replaced after the cluster formed, at a new address or at the same one
    /// (instance-id names or names from the address): S1-S4 hold (`safety-replace-*`).
    #[test]
    fn late_replacement_is_safe(reuse in any::<bool>(), names_by_addr in any::<bool>(), t in tape()) {
        let s = Setup { repl: true, reuse, names_by_addr, replace_late: true, ..Setup::formation(3) };
        let (w, _) = play(s, &t);
        assert_safe(&w)?;
    }

    /// ... and converges, the departed member removed, with stale views, lost messages and
    /// a crash, when the victim dies before it leaves the peer set (`live-replace-*`).
    #[test]
    fn late_replacement_converges(reuse in any::<bool>(), names_by_addr in any::<bool>(), t in tape()) {
        let s = Setup { repl: true, reuse, names_by_addr, replace_late: true, zombie: false, ..Setup::formation(3) };
        let (w, settled) = play(s, &t);
        assert_safe(&w)?;
        prop_assert!(settled, "did not settle:\n{}", w.log.join("\n"));
    }

    /// With `restore-from`: one machine restores, only while no other holds member data,
    /// whatever the interleaving (the model: `safety-restore-*`).
    #[test]
    fn restore_is_safe(n in prop_oneof![Just(1usize), Just(3), Just(5)], auth in any::<bool>(), t in tape()) {
        let (w, _) = play(Setup { auth, restore: true, ..Setup::formation(n) }, &t);
        assert_safe(&w)?;
        prop_assert!(w.restorers.len() <= 1, "{:?}\n{}", w.restorers, w.log.join("\n"));
    }

    /// ... and the others join it once the world calms down (`live-restore-*`).
    #[test]
    fn restore_converges(n in prop_oneof![Just(1usize), Just(3)], auth in any::<bool>(), t in tape()) {
        let (w, settled) = play(Setup { auth, restore: true, ..Setup::formation(n) }, &t);
        assert_safe(&w)?;
        prop_assert!(settled, "did not settle:\n{}", w.log.join("\n"));
        prop_assert_eq!(w.restorers.len(), 1, "{}", w.log.join("\n"));
    }

    /// A late replacement of a restored cluster joins it; nobody restores again
    /// (`safety-restore-replace`).
    #[test]
    fn late_replacement_after_a_restore_is_safe(reuse in any::<bool>(), t in tape()) {
        let s = Setup { repl: true, reuse, replace_late: true, restore: true, ..Setup::formation(3) };
        let (w, _) = play(s, &t);
        assert_safe(&w)?;
        prop_assert!(w.restorers.len() <= 1, "{:?}\n{}", w.restorers, w.log.join("\n"));
    }

    /// ... and with the victim still answering after it left the set, when nothing is
    /// lost and nothing crashes (the departed member goes once it stops answering).
    #[test]
    fn late_replacement_with_a_terminating_victim_converges(t in tape()) {
        let s = Setup { repl: true, replace_late: true, lossy: false, max_crash: 0, ..Setup::formation(3) };
        let (w, settled) = play(s, &t);
        assert_safe(&w)?;
        prop_assert!(settled, "did not settle:\n{}", w.log.join("\n"));
    }
}

// ---- the checker's counterexamples, replayed (spec/README.md, "Regression cases") -------

use Act::*;
fn round(k: usize, ver: usize, lost: u8) -> Act {
    Round { k, ver, lost }
}
fn ok(k: usize) -> Act {
    Step { k, ok: true }
}
fn fail(k: usize) -> Act {
    Step { k, ok: false }
}

/// Replays a counterexample's steps as far as the fixed protocol still allows them (a step
/// that is no longer enabled is skipped: the decision that led there changed), then lets
/// the world calm down. Returns whether it settled; the world must stay safe throughout.
fn replay(s: Setup, acts: &[Act]) -> (World, bool) {
    let mut w = World::new(s);
    for a in acts {
        let en = w.enabled();
        let allowed = en.iter().any(|e| match (e, a) {
            (Act::Round { k, .. }, Act::Round { k: k2, .. }) => k == k2,
            (Act::Step { k, .. }, Act::Step { k: k2, .. }) => k == k2,
            (x, y) => format!("{x:?}") == format!("{y:?}"),
        });
        if allowed {
            w.apply(*a);
        }
    }
    let settled = w.calm_down(60);
    assert!(w.violation.is_none(), "{:?}\n{}", w.violation, w.log.join("\n"));
    (w, settled)
}

fn assert_settles(s: Setup, acts: &[Act]) -> World {
    let (w, settled) = replay(s, acts);
    assert!(settled, "did not settle:\n{}", w.log.join("\n"));
    w
}

/// R1a: wait_healthy times out in membership::form before the peers start. F1: join takes the
/// unfinished init over, so the agent converges (F6 already keeps m2 from forming while its
/// probes are lost).
#[test]
fn r1a_interrupted_form_is_completed_by_join() {
    let s = Setup { auth: false, ..Setup::formation(3) };
    let w = World::new(s);
    assert!(matches!(decide(&w.view(2, 3, 0b011)), Decision::Wait(x) if x.contains("to answer")));
    assert_settles(
        s,
        &[
            List,
            List,
            List,
            round(2, 3, 0b011),
            ok(2),
            ok(2),
            fail(2),
            round(1, 3, 0b101),
            ok(1),
            ok(1),
            ok(1),
            Calm,
        ],
    );
    // The interruption itself, with every probe answered: form, time out, then join.
    let mut w = World::new(s);
    w.script(&[List, List, List, round(2, 3, 0), ok(2), ok(2), fail(2)]);
    assert_eq!((w.m[2].pc, w.m[2].sf), (Pc::Round, Sf::InitInstalling));
    w.script(&[round(1, 3, 0), ok(1), ok(1), ok(1), round(2, 3, 0)]);
    assert_eq!(w.m[2].pc, Pc::Join);
    w.script(&[ok(2)]);
    assert_eq!(w.m[2].pc, Pc::JoinAdd, "join took over the unfinished init");
    assert!(w.calm_down(30), "{}", w.log.join("\n"));
}

/// R1b: the mirror image: an interrupted join (state Installing) is taken over by form.
#[test]
fn r1b_interrupted_join_is_completed_by_form() {
    let s = Setup { repl: true, ..Setup::formation(1) };
    let w = assert_settles(
        s,
        &[
            List,
            round(0, 1, 0),
            ok(0),
            ok(0),
            ok(0),
            Depart,
            Launch,
            round(1, 1, 0),
            ok(1),
            fail(1),
            Die,
            round(1, 3, 0),
        ],
    );
    assert_eq!(w.m[1].pc, Pc::Ready);
}

/// R2: a stale authoritative view that does not list this machine. F2: no removal unless
/// the view is complete and lists this machine.
#[test]
fn r2_stale_view_no_longer_removes_this_machines_own_member() {
    let s = Setup { auth: true, form_waits: true, ..Setup::formation(3) };
    let mut w = World::new(s);
    w.script(&[
        List,
        List,
        List,
        round(0, 3, 0),
        ok(0),
        ok(0),
        round(1, 3, 0),
        ok(1),
        ok(1),
        ok(1),
        ok(0),
    ]);
    assert!(w.c[1].led);
    let v = w.view(2, 2, 0);
    assert!(v.me.is_none());
    assert!(!matches!(decide(&v), Decision::RemoveStale { .. }), "{:?}", decide(&v));
    assert_settles(
        s,
        &[
            List,
            List,
            List,
            round(0, 3, 0),
            ok(0),
            ok(0),
            round(1, 3, 0),
            ok(1),
            ok(1),
            ok(1),
            ok(0),
            round(2, 2, 0),
            ok(2),
            Calm,
        ],
    );
}

/// R3: a replacement while the cluster forms still strands a voter (S2), when m0 and the
/// replacement decide on different peer sets before either has started etcd: the known
/// limitation (spec/README.md).
#[test]
fn r3_replacement_during_formation_strands_a_voter() {
    let s = Setup { repl: true, zombie: false, lossy: false, ..Setup::formation(3) };
    let mut w = World::new(s);
    w.script(&[
        List,
        List,
        List,
        round(0, 3, 0),
        ok(0),
        Die,
        Depart,
        Launch,
        round(3, 5, 0),
        ok(3),
        round(1, 5, 0),
        ok(1),
        ok(0),
        ok(1),
        ok(3),
    ]);
    assert!(
        w.violation.as_deref().is_some_and(|v| v.starts_with("S2")),
        "{:?}\n{}",
        w.violation,
        w.log.join("\n")
    );
}

/// R4: the same with the victim still running after it left the peer set. With F6 the
/// machines whose probes are lost no longer form, so this trace is safe now; the model
/// still finds S1 with simultaneous decisions (spec/check.sh R4).
#[test]
fn r4_lost_probes_no_longer_form_a_second_cluster() {
    let s = Setup { repl: true, zombie: true, ..Setup::formation(3) };
    let (w, _) = replay(
        s,
        &[
            List,
            List,
            List,
            round(2, 3, 0b011),
            ok(2),
            round(0, 3, 0b110),
            ok(0),
            Depart,
            Launch,
            round(1, 5, 0b1001),
            ok(1),
            round(3, 5, 0b011),
            ok(3),
            ok(0),
            ok(2),
            ok(1),
            ok(3),
        ],
    );
    assert!(!w.log.iter().any(|l| l.starts_with("!! S1")), "{}", w.log.join("\n"));
}

fn formed_and_ready(s: Setup) -> World {
    let mut w = World::new(s);
    w.script(&[List, List, List, round(0, 3, 0), round(1, 3, 0), round(2, 3, 0)]);
    w.script(&[ok(0), ok(1), ok(2), ok(0), ok(1), ok(2), ok(0), ok(1), ok(2)]);
    for _ in 0..3 {
        for k in 0..3 {
            if w.m[k].pc == Pc::Settle {
                w.script(&[round(k, 3, 0)]);
            }
        }
    }
    assert!(w.all_ready(), "{}", w.log.join("\n"));
    w
}

/// R5: a same-address replacement with lost probes. F6: it no longer forms (its peers do
/// not answer), so it never starts the dead member from an empty data dir.
#[test]
fn r5_same_address_replacement_with_lost_probes_waits() {
    let s = Setup {
        repl: true,
        reuse: true,
        names_by_addr: true,
        replace_late: true,
        ..Setup::formation(3)
    };
    let mut w = formed_and_ready(s);
    w.script(&[Die, Depart, Launch]);
    assert!(matches!(decide(&w.view(3, 5, 0b011)), Decision::Wait(x) if x.contains("to answer")));
    w.script(&[round(3, 5, 0b011)]);
    assert_eq!(w.m[3].pc, Pc::Round);
    assert!(w.calm_down(40), "{}", w.log.join("\n"));
    assert!(w.violation.is_none());
}

/// R6: a same-address replacement. F5: the started member at its own peer URL, while it
/// has no data, is its dead predecessor: removed, then the machine joins.
#[test]
fn r6_same_address_replacement_removes_its_predecessor_then_joins() {
    let s = Setup {
        repl: true,
        reuse: true,
        names_by_addr: true,
        replace_late: true,
        lossy: false,
        max_crash: 0,
        ..Setup::formation(3)
    };
    let mut w = formed_and_ready(s);
    w.script(&[Die, Depart, Launch]);
    assert!(
        matches!(decide(&w.view(3, 5, 0)), Decision::RemoveStale { member, .. } if member.peer_urls == [peer_url(2)])
    );
    assert!(w.calm_down(40), "{}", w.log.join("\n"));
    assert!(
        w.c[1].members.get(&2).is_some_and(|x| x.voter && x.started && x.id > 3),
        "a new member at the address"
    );
}

/// R7: the replacement's view still lists the dead member. F4: it does not report ready
/// (nor save `member`) until a complete view finds nothing departed: the dead voter goes.
#[test]
fn r7_replacement_settles_only_once_the_dead_member_is_gone() {
    let s =
        Setup { repl: true, replace_late: true, lossy: false, max_crash: 0, ..Setup::formation(3) };
    let mut w = formed_and_ready(s);
    w.script(&[Depart, Launch, round(3, 3, 0), ok(3), ok(3), ok(3), ok(3), ok(3), Die]);
    assert_eq!(w.m[3].pc, Pc::Settle);
    assert!(w.calm_down(40), "{}", w.log.join("\n"));
    assert_eq!(w.c[1].members.values().filter(|x| x.voter).count(), 3);
}

/// R8: a survivor reboots right after the replacement removed the departed member. F3:
/// the leaderless survivor's member list shows an established cluster: wait, not form.
#[test]
fn r8_survivor_reboot_makes_the_replacement_wait() {
    let s = Setup {
        repl: true,
        replace_late: true,
        lossy: false,
        max_crash: 1,
        fresh_views: true,
        ..Setup::formation(3)
    };
    let mut w = formed_and_ready(s);
    w.script(&[Depart, Launch, Die, round(3, 5, 0)]);
    assert_eq!(w.m[3].pc, Pc::Remove);
    w.script(&[ok(3), Crash { k: 1 }]);
    assert!(
        matches!(decide(&w.view(3, 5, 0)), Decision::Wait(x) if x.contains("no leader")),
        "{:?}",
        decide(&w.view(3, 5, 0))
    );
    w.script(&[round(3, 5, 0)]);
    assert_eq!(w.m[3].pc, Pc::Round);
    assert!(w.calm_down(40), "{}", w.log.join("\n"));
    assert_eq!(w.m[3].data, 1);
}

// ---- decide() at the counterexamples' decisive points, and the proposed fixes ------------

fn cand(i: usize) -> Candidate {
    Candidate { peer_url: peer_url(i), client_url: client_url(i), name: format!("m{i}") }
}
fn member(i: usize, started: bool, learner: bool) -> MemberInfo {
    MemberInfo {
        id: i as u64 + 1,
        name: format!("m{i}"),
        peer_urls: vec![peer_url(i)],
        client_urls: if started { vec![client_url(i)] } else { vec![] },
        is_learner: learner,
    }
}
fn running(members: &[MemberInfo]) -> Probe {
    Probe::Member { cluster_id: 7, leader: 1, members: members.to_vec() }
}
fn view(me: usize, peers: &[usize], expected: usize, probes: Vec<(usize, Probe)>) -> View {
    View {
        me: peers.contains(&me).then(|| cand(me)),
        peers: peers.iter().map(|i| cand(*i)).collect(),
        expected: Some(expected),
        authoritative: true,
        probes: probes.into_iter().map(|(i, p)| (cand(i), p)).collect(),
        has_data: false,
        restore: false,
    }
}

/// F4's premise (R7, and the wait in the README's R9): a replacement that already became a
/// voter does not count itself, so removing the dead member waits forever; with its own
/// probe in the View (the proposed fix in bootstrap/mod.rs) decide() removes it.
#[test]
fn own_member_counts_once_probed() {
    let ms = [
        member(0, true, false),
        member(1, true, false),
        member(2, true, false),
        member(3, true, false),
    ];
    let others = vec![(0, running(&ms)), (1, running(&ms))];
    assert!(
        matches!(decide(&view(3, &[0, 1, 3], 3, others.clone())), Decision::Wait(w) if w.contains("needs 3 healthy voters"))
    );
    let mut with_self = others;
    with_self.push((3, running(&ms)));
    assert!(
        matches!(decide(&view(3, &[0, 1, 3], 3, with_self)), Decision::RemoveStale { member, .. } if member.id == 3)
    );
}

/// Proposed fix F2 (decide.rs): never remove from a view that does not list this machine.
#[test]
fn f2_no_removal_from_a_view_without_this_machine() {
    let ms = [member(0, true, false), member(1, true, false), member(2, false, true)];
    let v = view(2, &[0, 1], 3, vec![(0, running(&ms)), (1, running(&ms))]);
    assert!(!matches!(decide(&v), Decision::RemoveStale { .. }), "{:?}", decide(&v));
}

/// Proposed fix F2 (decide.rs): never remove from an incomplete view.
#[test]
fn f2_no_removal_from_an_incomplete_view() {
    // N=5; m3 is a live voter that the stale view {m0,m1,m2,m4} does not list yet
    let ms: Vec<MemberInfo> = (0..5).map(|i| member(i, i != 4, false)).collect();
    let v = view(4, &[0, 1, 2, 4], 5, (0..3).map(|i| (i, running(&ms))).collect());
    assert!(!matches!(decide(&v), Decision::RemoveStale { .. }), "{:?}", decide(&v));
}

/// Proposed fix F2 (decide.rs): a departed member that still answers (its client URL probed,
/// included in `probes`) is not removed yet.
#[test]
fn f2_no_removal_of_a_member_that_answers() {
    let ms = [
        member(0, true, false),
        member(1, true, false),
        member(2, true, false),
        member(3, true, true),
    ];
    // m1 reboots with the old view {m0,m1,m2}; the replacement m3 (a started learner) answers
    let mut v =
        view(1, &[0, 1, 2], 3, vec![(0, running(&ms)), (2, running(&ms)), (3, running(&ms))]);
    v.has_data = true;
    assert!(!matches!(decide(&v), Decision::RemoveStale { .. }), "{:?}", decide(&v));
}

/// Proposed fix F3 (decide.rs, probe.rs): a leaderless peer whose (serializable) member list
/// shows started members belongs to an established cluster: wait, do not form another.
#[test]
fn f3_leaderless_established_cluster_is_not_formed_around() {
    let ms = [member(0, true, false), member(1, true, false)];
    let v = view(
        3,
        &[0, 1, 3],
        3,
        vec![
            (0, Probe::Member { cluster_id: 7, leader: 0, members: ms.to_vec() }),
            (1, Probe::Silent),
        ],
    );
    assert!(matches!(decide(&v), Decision::Wait(_)), "{:?}", decide(&v));
}

/// Proposed fix F3: a forming cluster that lists this machine is formed with exactly, even
/// when this machine's view changed since (R3).
#[test]
fn f3_forming_cluster_that_lists_me_is_adopted() {
    let forming = [member(0, false, false), member(1, false, false), member(2, false, false)];
    let v = view(
        1,
        &[0, 1, 3],
        3,
        vec![
            (0, Probe::Member { cluster_id: 9, leader: 0, members: forming.to_vec() }),
            (3, Probe::Silent),
        ],
    );
    let ic: Vec<(String, String)> = (0..3).map(|i| (format!("m{i}"), peer_url(i))).collect();
    assert_eq!(decide(&v), Decision::Form { token: token(&ic), initial_cluster: ic });
}
