//! AWS credentials and the one policy that finds them, for every AWS call etcdadm makes
//! (`aws-asg` and `aws-tags` discovery and S3 backups; README, "AWS credentials"):
//! 1. the environment, when it is complete: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
//!    (and `AWS_SESSION_TOKEN` if set);
//! 2. a half-set environment (only one of the two) is an error naming the missing variable,
//!    never silently skipped;
//! 3. otherwise the EC2 instance role's temporary credentials, from the instance metadata
//!    service (IMDSv2).
//!
//! `Debug` shows only the first four characters of the key id (`AKIA` for a user's key,
//! `ASIA` for a role's temporary one), never the secret or the token.

use std::fmt;
use std::future::Future;

#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// RFC 3339 time after which temporary credentials stop working.
    pub expiration: Option<String>,
}

impl AwsCredentials {
    /// The credentials as the SigV4 signer takes them.
    pub fn for_signing(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "etcdadm",
        )
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        let redacted = |present: bool| if present { "<redacted>" } else { "None" };
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &format_args!("<redacted>"))
            .field("session_token", &format_args!("{}", redacted(self.session_token.is_some())))
            .field("expiration", &self.expiration)
            .finish()
    }
}

pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// Where credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    InstanceRole,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// One of the two variables is set, the other is not (or is empty).
    #[error(
        "{set} is set but {missing} is not; set both (or neither, to use the EC2 instance role)"
    )]
    HalfSet { set: &'static str, missing: &'static str },
    /// The environment has none and the instance role gave none.
    #[error(
        "no AWS credentials: {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY} are not set and the EC2 \
         instance role is not available ({source}); set both variables or attach an instance \
         profile (IAM role) to the instance"
    )]
    NotFound {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The credentials the environment gives: `None` when neither variable is set (an empty
/// value counts as unset), an error when only one is.
pub fn from_env(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    match (get(ACCESS_KEY_ID), get(SECRET_ACCESS_KEY)) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: get(SESSION_TOKEN),
            expiration: None,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(CredentialsError::HalfSet { set: ACCESS_KEY_ID, missing: SECRET_ACCESS_KEY })
        }
        (None, Some(_)) => {
            Err(CredentialsError::HalfSet { set: SECRET_ACCESS_KEY, missing: ACCESS_KEY_ID })
        }
    }
}

/// The policy above. `env` reads a variable (`std::env::var` in production);
/// `instance_role` is the instance role lookup (`metadata::ec2_role_credentials`), awaited
/// only when the environment has no credentials.
pub async fn resolve<E>(
    env: impl Fn(&str) -> Option<String>,
    instance_role: impl Future<Output = Result<AwsCredentials, E>>,
) -> Result<(AwsCredentials, Source), CredentialsError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(c) = from_env(env)? {
        tracing::debug!("AWS credentials from the environment");
        return Ok((c, Source::Environment));
    }
    match instance_role.await {
        Ok(c) => {
            tracing::debug!("AWS credentials of the EC2 instance role");
            Ok((c, Source::InstanceRole))
        }
        Err(e) => Err(CredentialsError::NotFound { source: Box::new(e) }),
    }
}

/// The process environment, as `resolve` reads it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    fn role() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "ASIAROLE".into(),
            secret_access_key: "role-secret".into(),
            session_token: Some("role-token".into()),
            expiration: Some("2026-04-01T16:00:00Z".into()),
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("no IAM role at http://169.254.169.254/latest/meta-data/iam/security-credentials/")]
    struct NoRole;

    #[tokio::test]
    async fn a_complete_environment_wins_over_the_instance_role_which_is_not_asked() {
        let asked = AtomicBool::new(false);
        let lookup = async {
            asked.store(true, Ordering::SeqCst);
            Ok::<_, NoRole>(role())
        };
        let (c, source) = resolve(
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-s3cr3t"),
                ("AWS_SESSION_TOKEN", "env-token"),
            ]),
            lookup,
        )
        .await
        .unwrap();
        assert_eq!(source, Source::Environment);
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_deref()),
            ("AKIDENV", "env-s3cr3t", Some("env-token"))
        );
        assert!(!asked.load(Ordering::SeqCst), "the instance role was asked");
        assert!(!format!("{c:?}").contains("env-s3cr3t"));
    }

    #[tokio::test]
    async fn a_half_set_environment_is_an_error_naming_the_missing_variable() {
        for (set, missing) in [
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        ] {
            let e = resolve(env(&[(set, "x")]), async { Ok::<_, NoRole>(role()) })
                .await
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("{set} is set but {missing} is not; set both (or neither, to use the EC2 instance role)")
            );
        }
    }

    #[tokio::test]
    async fn without_environment_the_instance_role_is_used() {
        for empty in [env(&[]), env(&[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")])] {
            let (c, source) = resolve(empty, async { Ok::<_, NoRole>(role()) }).await.unwrap();
            assert_eq!((c, source), (role(), Source::InstanceRole));
        }
    }

    #[tokio::test]
    async fn neither_is_an_error_naming_both_variables_and_the_role_failure() {
        let e = resolve(env(&[]), async { Err::<AwsCredentials, _>(NoRole) })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
                && e.contains("no IAM role at http://169.254.169.254/")
                && e.contains("attach an instance profile"),
            "{e}"
        );
    }
}
