//! Membership operations, the domain layer below `commands/` and `bootstrap/`: form a new
//! cluster, join a running one, promote a learner, remove a member, reset this machine, recover from a lost quorum.
//! Forming and joining run as tables of phases (`phase_table`), the steps of which are in
//! `crate::phases`; `existing` decides what a re-run does with what is already here;
//! `quorum` whether the cluster keeps its quorum without this member.

mod error;
pub mod existing;
pub mod form;
pub mod join;
pub mod phase_table;
pub mod planned_stop;
pub mod promote;
pub mod quorum;
pub mod recover;
pub mod remove;
pub mod reset;
mod start_order;

pub use error::MembershipError;
