//! AWS credentials, as the instance role (IMDS) or the environment provides them. `Debug`
//! shows only the first four characters of the key id (`AKIA` for a user's key, `ASIA` for
//! a role's temporary one), never the secret or the token.

use std::fmt;

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
