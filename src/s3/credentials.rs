//! The credentials that sign S3 requests: the environment's (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) if set, else the EC2 instance role's from
//! the instance metadata service. Never logged (AwsCredentials' Debug redacts them).

use super::S3Error;
use crate::aws_credentials::AwsCredentials;
use crate::metadata::{Ec2Config, MetadataConfig};
use tracing::debug;

/// `metadata` is the configured metadata source (`bootstrap.metadata`): its EC2 settings
/// reach the instance role.
pub async fn credentials(metadata: &MetadataConfig) -> Result<AwsCredentials, S3Error> {
    if let Some(creds) = from_env(|k| std::env::var(k).ok())? {
        debug!("S3 credentials from the environment");
        return Ok(creds);
    }
    let imds = match metadata {
        MetadataConfig::Ec2(e) => e.clone(),
        _ => Ec2Config::default(),
    };
    match crate::metadata::ec2_role_credentials(&imds).await {
        Ok(creds) => {
            debug!("S3 credentials of the instance role");
            Ok(creds)
        }
        Err(e) => Err(S3Error::NoCredentials(format!(
            "no credentials for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and the instance role is not available ({e}); \
             set them (for the backup timer: in a drop-in of etcdadm-backup.service) or attach an instance role"
        ))),
    }
}

fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<AwsCredentials>, S3Error> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: get("AWS_SESSION_TOKEN"),
            expiration: None,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(S3Error::NoCredentials(
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither".into(),
        )),
        (None, Some(_)) => Err(S3Error::NoCredentials(
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn environment_pairs() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> =
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            from_env(move |k| m.get(k).cloned())
        };
        let c = env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("AWS_SESSION_TOKEN", "tok"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("AKID", Some("tok")));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(env(&[]).unwrap().is_none());
        assert!(env(&[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")])
            .unwrap()
            .is_none());
        let half = env(&[("AWS_ACCESS_KEY_ID", "AKID")]).unwrap_err().to_string();
        assert!(half.contains("AWS_SECRET_ACCESS_KEY is not"), "{half}");
    }
}
