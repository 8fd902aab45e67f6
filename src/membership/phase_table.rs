//! Phases as the seed tool and kubeadm offer them: a command is its table of phases run in
//! order, and `<command> phase <name>` runs one phase after its prerequisites. The table is
//! the enum's variant order, so the command and its phase subcommands cannot drift apart.

use crate::cli::{InitPhase, JoinPhase};
use clap::ValueEnum;

pub trait PhaseTable: ValueEnum + Copy + PartialEq + std::fmt::Debug + 'static {
    /// Phases that must have run before this one (their own prerequisites follow).
    fn prerequisites(self) -> &'static [Self];

    fn name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }
}

/// What to run: every phase, or `target` after its prerequisites; in table order.
pub fn plan<P: PhaseTable>(target: Option<P>) -> Vec<P> {
    let Some(target) = target else { return P::value_variants().to_vec() };
    let mut needed = vec![target];
    let mut i = 0;
    while i < needed.len() {
        for p in needed[i].prerequisites() {
            if !needed.contains(p) {
                needed.push(*p);
            }
        }
        i += 1;
    }
    P::value_variants().iter().copied().filter(|p| needed.contains(p)).collect()
}

impl PhaseTable for InitPhase {
    fn prerequisites(self) -> &'static [Self] {
        use InitPhase::*;
        match self {
            Install | Certificates => &[],
            Snapshot => &[Install],
            Configure => &[Certificates],
            Start => &[Install, Configure],
            Etcdctl => &[Certificates],
            Health => &[Start],
            PostInitInstructions => &[],
        }
    }
}

impl PhaseTable for JoinPhase {
    fn prerequisites(self) -> &'static [Self] {
        use JoinPhase::*;
        match self {
            Stop | Certificates | Install => &[],
            Membership => &[Certificates],
            Configure => &[Install, Membership],
            Start => &[Configure],
            Etcdctl => &[Certificates],
            Health => &[Start],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_table_and_include_prerequisites() {
        assert_eq!(plan::<InitPhase>(None).len(), 8);
        assert_eq!(plan(Some(InitPhase::Install)), [InitPhase::Install]);
        assert_eq!(
            plan(Some(InitPhase::Health)),
            [
                InitPhase::Install,
                InitPhase::Certificates,
                InitPhase::Configure,
                InitPhase::Start,
                InitPhase::Health
            ]
        );
        assert_eq!(
            plan(Some(JoinPhase::Configure)),
            [
                JoinPhase::Certificates,
                JoinPhase::Install,
                JoinPhase::Membership,
                JoinPhase::Configure
            ]
        );
        let names: Vec<String> =
            plan::<JoinPhase>(None).into_iter().map(PhaseTable::name).collect();
        assert_eq!(
            names,
            [
                "stop",
                "certificates",
                "install",
                "membership",
                "configure",
                "start",
                "etcdctl",
                "health"
            ]
        );
    }
}
