//! etcd releases that etcd's maintainers warn against running in production because they can
//! lose or diverge data: `init`, `join`, `bootstrap` and `upgrade` refuse to install one
//! unless the operator says so explicitly (`allow-known-bad-release`).
//!
//! The list follows the production recommendation in etcd's CHANGELOG/README.md ("v3.4.22+
//! and v3.5.6+") and the announcements it links; each entry says what goes wrong and where
//! it is fixed, so that the refusal tells the operator which release to pick instead.

use semver::Version;

/// One range of affected releases, both ends included.
struct KnownBad {
    first: (u64, u64, u64),
    last: (u64, u64, u64),
    /// What can go wrong, for the operator.
    what: &'static str,
    fixed_in: &'static str,
}

const KNOWN_BAD: &[KnownBad] = &[
    KnownBad {
        first: (3, 4, 0),
        last: (3, 4, 7),
        what: "members can disagree about committed data (etcd-io/etcd#11651)",
        fixed_in: "3.4.8",
    },
    KnownBad {
        first: (3, 4, 20),
        last: (3, 4, 21),
        what: "with authentication enabled, a member added to the cluster can apply data differently (data inconsistency)",
        fixed_in: "3.4.22",
    },
    KnownBad {
        first: (3, 5, 0),
        last: (3, 5, 2),
        what: "under load, an etcd process killed at the wrong moment loses committed writes on that member (data inconsistency, etcd-io/etcd#13766)",
        fixed_in: "3.5.3",
    },
    KnownBad {
        first: (3, 5, 0),
        last: (3, 5, 5),
        what: "a member that crashes while defragmenting (which etcdadm's defrag timer does) can come back with inconsistent data",
        fixed_in: "3.5.6",
    },
];

/// What `check` refuses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("etcd {version} ({what}) is a release etcd's maintainers warn against: {reasons}. Choose a fixed release (etcd recommends 3.4.22+ or 3.5.6+ in production, e.g. `--version 3.5.30`), or, knowingly, set allow-known-bad-release (`--allow-known-bad-release`); nothing was changed")]
pub struct KnownBadError {
    pub version: String,
    /// Which setting or flag named the version.
    pub what: String,
    pub reasons: String,
}

/// Why `version` is known to be bad, one reason per affected range (none when it is fine
/// or not a version etcdadm can read; the version's own type checks its format).
pub fn reasons(version: &str) -> Vec<String> {
    let Ok(v) = Version::parse(version.trim().trim_start_matches('v')) else {
        return Vec::new();
    };
    let v = (v.major, v.minor, v.patch);
    KNOWN_BAD
        .iter()
        .filter(|bad| bad.first <= v && v <= bad.last)
        .map(|bad| format!("{} (fixed in {})", bad.what, bad.fixed_in))
        .collect()
}

/// Refuses a known-bad `version` (named by the setting or flag `what`) unless `allowed`;
/// when allowed, says once in the log what the operator accepted.
pub fn check(version: &str, what: &str, allowed: bool) -> Result<(), KnownBadError> {
    let reasons = reasons(version);
    if reasons.is_empty() {
        return Ok(());
    }
    let reasons = reasons.join("; ");
    if allowed {
        tracing::warn!(%version, %reasons, "installing a known-bad etcd release because allow-known-bad-release is set");
        return Ok(());
    }
    Err(KnownBadError { version: version.to_string(), what: what.to_string(), reasons })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_with_data_inconsistency_bugs_are_refused_with_the_fixed_release_named() {
        for v in ["3.5.0", "3.5.1", "3.5.2"] {
            let e = check(v, "version", false).unwrap_err().to_string();
            assert!(e.contains(&format!("etcd {v} (version)")), "{e}");
            assert!(e.contains("etcd-io/etcd#13766") && e.contains("fixed in 3.5.3"), "{e}");
            assert!(e.contains("--allow-known-bad-release") && e.contains("nothing was changed"));
        }
        for v in ["3.5.3", "3.5.5", "3.4.20", "3.4.21", "3.4.0", "3.4.7"] {
            assert!(check(v, "--version", false).is_err(), "{v} must be refused");
        }
        assert_eq!(reasons("3.5.4"), vec![reasons("3.5.5")[0].clone()]);
        assert_eq!(reasons("v3.5.1").len(), 2, "both 3.5.0-3.5.2 and 3.5.0-3.5.5 apply");
    }

    #[test]
    fn fixed_releases_pass_and_the_override_lets_a_bad_one_through() {
        for v in ["3.4.8", "3.4.19", "3.4.22", "3.4.23", "3.5.6", "3.5.16", "3.5.30", "3.6.0"] {
            assert_eq!(check(v, "version", false), Ok(()), "{v}");
        }
        assert_eq!(check("3.5.1", "version", true), Ok(()));
        assert!(reasons("not a version").is_empty());
    }
}
