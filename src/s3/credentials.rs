//! The credentials that sign S3 requests, found by the one AWS credential policy
//! (`aws_credentials::resolve`: a complete environment, else the EC2 instance role; a
//! half-set environment is an error). Never logged (AwsCredentials' Debug redacts them).

use super::S3Error;
use crate::aws_credentials::{self, AwsCredentials, CredentialsError};
use crate::metadata::{self, MetadataConfig};

/// `metadata` is the configured metadata source (`bootstrap.metadata`): its EC2 settings
/// reach the instance role.
pub async fn credentials(metadata: &MetadataConfig) -> Result<AwsCredentials, S3Error> {
    let imds = metadata.imds();
    aws_credentials::resolve(aws_credentials::process_env, metadata::ec2_role_credentials(&imds))
        .await
        .map(|(creds, _)| creds)
        .map_err(|e| {
            S3Error::NoCredentials(match e {
                CredentialsError::NotFound { .. } => format!(
                    "no credentials for S3: {e} (for the backup timer: in a drop-in of etcdadm-backup.service)"
                ),
                CredentialsError::HalfSet { .. } => format!("S3 credentials: {e}"),
            })
        })
}
