//! Why a membership operation failed. The steps below keep their own error types (state
//! file, phases, snapshot, etcd API, ...), which pass through unchanged; the variants here
//! are this layer's own findings, each saying what is wrong, where, and what to do.

use crate::cluster::ClusterError;
use crate::fsutil::FileError;
use crate::member::UnsafeMember;
use crate::phases::PhaseError;
use crate::pki::PkiError;
use crate::release::known_bad::KnownBadError;
use crate::release::ReleaseError;
use crate::service::SystemctlError;
use crate::snapshot::SnapshotError;
use crate::state::StateError;
use crate::stdout::StdoutError;

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Phase(#[from] PhaseError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Systemctl(#[from] SystemctlError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    KnownBad(#[from] KnownBadError),
    #[error(transparent)]
    UnsafeMember(#[from] UnsafeMember),
    #[error(transparent)]
    Recover(Box<super::recover::RecoverError>),
    #[error("cannot print the outcome")]
    Stdout(#[from] StdoutError),
    #[error(transparent)]
    Leadership(#[from] crate::leadership::LeadershipError),
    /// This machine or its cluster is in a state the operation must not touch; the message
    /// says what was found and what to do. Nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A step of `init` or `join` (`command` is which) failed.
    #[error("{command} phase {phase}")]
    InPhase { command: &'static str, phase: String, source: Box<MembershipError> },
    #[error("cannot reach the cluster at {}", .endpoints.join(", "))]
    Unreachable { endpoints: Vec<String>, source: ClusterError },
    #[error("cannot add this machine to the cluster as a learner")]
    AddLearner(#[source] ClusterError),
    #[error("the learner did not catch up with the leader in time")]
    NotCaughtUp(#[source] ClusterError),
    #[error("cannot remove this member from the cluster; nothing was uninstalled")]
    Remove(#[source] ClusterError),
    #[error(
        "cannot reach the local member to check the cluster's quorum before {what}; start \
         etcd and retry, or use --force"
    )]
    QuorumUnknown { what: String, source: ClusterError },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{context}")]
    AfterMovingAside { context: String, source: Box<MembershipError> },
}

impl From<super::recover::RecoverError> for MembershipError {
    fn from(e: super::recover::RecoverError) -> Self {
        MembershipError::Recover(Box::new(e))
    }
}

pub type Result<T> = std::result::Result<T, MembershipError>;
