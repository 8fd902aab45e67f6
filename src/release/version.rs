//! Which etcd version changes `etcdadm upgrade` makes: forward only, within one major
//! version, at most one minor version at a time, and never more than one minor version
//! ahead of any member of the cluster (etcd supports a mixed cluster of two adjacent minor
//! versions only, while it rolls).

use semver::Version;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("{text:?} ({what}) is not an etcd version like 3.5.1")]
    Malformed { what: String, text: String },
    #[error("etcd {target} would be a downgrade from {current}; etcdadm upgrade only moves forward (to go back, restore a snapshot taken before the upgrade)")]
    Downgrade { current: String, target: String },
    #[error("etcd {target} is another major version than {current}; etcdadm upgrades within one major version only")]
    Major { current: String, target: String },
    #[error(
        "etcd {current} to {target} skips a minor version; upgrade one minor at a time: {path}"
    )]
    SkipsMinor { current: String, target: String, path: String },
    #[error("member {member} runs etcd {version}; every member must run {need} before any member moves to {target}; upgrade one minor at a time: {path}")]
    MemberBehind { member: String, version: String, need: String, target: String, path: String },
}

/// What upgrading the local member to the target means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The member runs the target version already.
    Current,
    /// Same minor version, newer patch release.
    Patch,
    /// The next minor version.
    Minor,
}

/// Parses an etcd version (`3.5.1`, also `v3.5.1`); `what` names it in the error.
pub fn parse(what: &str, text: &str) -> Result<Version, StepError> {
    Version::parse(text.trim().trim_start_matches('v'))
        .map_err(|_| StepError::Malformed { what: what.into(), text: text.into() })
}

/// `3.4 → 3.5 → 3.6`: the minor versions from `from` up to `to`.
fn path(major: u64, from: u64, to: u64) -> String {
    (from..=to).map(|m| format!("{major}.{m}")).collect::<Vec<_>>().join(" → ")
}

/// Decides whether the local member, running `current`, may move to `target` while the
/// cluster's members (name, version; the local one included or not) run `members`.
pub fn plan(
    current: &Version,
    target: &Version,
    members: &[(String, Version)],
) -> Result<Step, StepError> {
    if target == current {
        return Ok(Step::Current);
    }
    if target < current {
        return Err(StepError::Downgrade {
            current: current.to_string(),
            target: target.to_string(),
        });
    }
    if target.major != current.major {
        return Err(StepError::Major { current: current.to_string(), target: target.to_string() });
    }
    if target.minor > current.minor + 1 {
        return Err(StepError::SkipsMinor {
            current: current.to_string(),
            target: target.to_string(),
            path: path(target.major, current.minor, target.minor),
        });
    }
    // The member furthest behind decides how far anyone may go.
    if let Some((name, v)) = members.iter().min_by(|a, b| a.1.cmp(&b.1)) {
        if v.major != target.major || target.minor > v.minor + 1 {
            let need_minor = target.minor.saturating_sub(1);
            return Err(StepError::MemberBehind {
                member: name.clone(),
                version: v.to_string(),
                need: format!("{}.{need_minor} or newer", target.major),
                target: target.to_string(),
                path: if v.major == target.major {
                    path(target.major, v.minor, target.minor)
                } else {
                    format!("{v} → {target}")
                },
            });
        }
    }
    Ok(if target.minor == current.minor { Step::Patch } else { Step::Minor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse("test", s).unwrap()
    }

    fn others(list: &[(&str, &str)]) -> Vec<(String, Version)> {
        list.iter().map(|(n, s)| (n.to_string(), v(s))).collect()
    }

    #[test]
    fn one_minor_or_a_patch_forward_is_allowed() {
        let cluster = others(&[("m1", "3.4.23"), ("m2", "3.4.23"), ("m3", "3.4.23")]);
        assert_eq!(plan(&v("3.4.23"), &v("3.5.1"), &cluster), Ok(Step::Minor));
        assert_eq!(plan(&v("3.4.23"), &v("3.4.30"), &cluster), Ok(Step::Patch));
        assert_eq!(plan(&v("3.5.1"), &v("3.5.30"), &others(&[("m2", "3.5.1")])), Ok(Step::Patch));
        // mid-roll: some members on 3.5 already, the rest on 3.4
        let mixed = others(&[("m1", "3.5.1"), ("m2", "3.4.23")]);
        assert_eq!(plan(&v("3.4.23"), &v("3.5.1"), &mixed), Ok(Step::Minor));
        assert_eq!(plan(&v("3.4.23"), &v("3.5.0"), &mixed), Ok(Step::Minor));
    }

    #[test]
    fn the_running_version_is_no_step() {
        assert_eq!(plan(&v("3.5.1"), &v("3.5.1"), &others(&[("m2", "3.4.23")])), Ok(Step::Current));
        assert_eq!(plan(&v("3.5.1"), &parse("flag", "v3.5.1").unwrap(), &[]), Ok(Step::Current));
    }

    #[test]
    fn skipping_a_minor_is_refused_with_the_path() {
        let e = plan(&v("3.4.23"), &v("3.6.0"), &[]).unwrap_err();
        assert_eq!(e.to_string(), "etcd 3.4.23 to 3.6.0 skips a minor version; upgrade one minor at a time: 3.4 → 3.5 → 3.6");
        let e = plan(&v("3.3.9"), &v("3.6.1"), &[]).unwrap_err();
        assert!(e.to_string().ends_with("3.3 → 3.4 → 3.5 → 3.6"), "{e}");
    }

    #[test]
    fn downgrades_and_major_changes_are_refused() {
        assert!(matches!(plan(&v("3.5.1"), &v("3.4.23"), &[]), Err(StepError::Downgrade { .. })));
        assert!(matches!(plan(&v("3.5.30"), &v("3.5.1"), &[]), Err(StepError::Downgrade { .. })));
        assert!(matches!(
            plan(&v("3.6.0"), &v("3.6.0-rc.1"), &[]),
            Err(StepError::Downgrade { .. })
        ));
        assert!(matches!(plan(&v("3.5.1"), &v("4.0.0"), &[]), Err(StepError::Major { .. })));
        assert!(plan(&v("3.5.1"), &v("3.4.23"), &[])
            .unwrap_err()
            .to_string()
            .contains("downgrade"));
    }

    #[test]
    fn no_member_may_fall_two_minors_behind() {
        // this member is on 3.5 already, m2 still on 3.4: 3.6 must wait
        let e = plan(&v("3.5.1"), &v("3.6.0"), &others(&[("m1", "3.5.1"), ("m2", "3.4.23")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "member m2 runs etcd 3.4.23; every member must run 3.5 or newer before any member moves to 3.6.0; upgrade one minor at a time: 3.4 → 3.5 → 3.6"
        );
        assert_eq!(
            plan(&v("3.5.1"), &v("3.6.0"), &others(&[("m1", "3.5.1"), ("m2", "3.5.30")])),
            Ok(Step::Minor)
        );
    }

    #[test]
    fn malformed_versions_name_their_source() {
        let e = parse("--version", "3.5").unwrap_err();
        assert_eq!(e.to_string(), "\"3.5\" (--version) is not an etcd version like 3.5.1");
        assert!(parse("member m2", "latest").is_err());
        assert_eq!(parse("x", "v3.4.23").unwrap(), v("3.4.23"));
    }
}
