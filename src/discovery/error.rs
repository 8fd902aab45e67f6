//! Discovery errors: what failed, where (entry, record, endpoint) and what to do about it.

use std::fmt;

/// Why a discovery attempt failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The discovery settings cannot work; fix the configuration.
    #[error("discovery settings: {0}")]
    Config(String),

    /// A static peer entry is not `name=host` or `host`.
    #[error("static peer {entry:?}: {reason}; write each peer as name=host or host (an IP or a DNS name, no port)")]
    InvalidPeer { entry: String, reason: String },

    /// A DNS query failed (other than by not finding records).
    #[error("DNS {kind} query for {record} via {server} failed: {detail}; {}", dns_hint(*.retryable))]
    Dns { kind: &'static str, record: String, server: String, detail: String, retryable: bool },

    /// The system's DNS settings cannot be read (yet). Retryable: at early boot the network
    /// configuration may still be written.
    #[error("cannot read the DNS settings in /etc/resolv.conf: {detail}; the network may not be configured yet (temporary), or set nameserver in the dns settings")]
    DnsSetup { detail: String },

    /// The provider answered but named no peer. Retryable: records and instances may appear.
    #[error("no peers found: {what}; {hint}")]
    NoPeers { what: String, hint: String },

    /// An AWS API answered with an error.
    #[error("AWS {action} at {endpoint} failed: HTTP {status}, {code}: {message}; {}", aws_hint(code, *.status))]
    Aws { action: &'static str, endpoint: String, status: u16, code: String, message: String },

    /// An AWS API could not be reached or did not answer in time.
    #[error("AWS {action} at {endpoint} failed: {detail}; {}", if *.retryable { "check the network path to the endpoint (security groups, VPC endpoints, proxy)" } else { "not worth retrying" })]
    Http { action: &'static str, endpoint: String, detail: String, retryable: bool },

    /// An AWS API answered something this client does not understand.
    #[error("AWS {action} at {endpoint}: unexpected answer: {detail}; check that the endpoint is an AWS (or moto) {service} endpoint")]
    BadResponse { action: &'static str, endpoint: String, service: &'static str, detail: String },

    /// A GCE call (Compute API, metadata server) failed.
    #[error(transparent)]
    Gce(#[from] crate::discovery::GceError),
    /// An Azure call (the IMDS managed-identity token, an ARM read) failed or answered
    /// something unexpected; `hint` says what to do.
    #[error("Azure {call} ({url}) failed: {detail}; {hint}")]
    Azure { call: &'static str, url: String, detail: String, hint: String, retryable: bool },
}

/// AWS error codes that mean "slow down" or "not now".
const RETRYABLE_AWS_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "ServerError",
    "RequestTimeout",
    "RequestTimeoutException",
    // The clock of a machine at first boot may not be synchronised yet.
    "RequestExpired",
    "RequestTimeTooSkewed",
    // EC2 is eventually consistent: an instance the Auto Scaling group just launched may not
    // be visible to DescribeInstances yet.
    "InvalidInstanceID.NotFound",
];

impl DiscoveryError {
    /// Whether another attempt may succeed: throttling (AWS `Throttling`,
    /// `RequestLimitExceeded`, HTTP 429 and 5xx), timeouts, SERVFAIL, connection errors, and
    /// answers that name no peer yet.
    pub fn is_retryable(&self) -> bool {
        match self {
            DiscoveryError::Config(_)
            | DiscoveryError::InvalidPeer { .. }
            | DiscoveryError::BadResponse { .. } => false,
            DiscoveryError::Dns { retryable, .. } | DiscoveryError::Http { retryable, .. } => {
                *retryable
            }
            DiscoveryError::NoPeers { .. } | DiscoveryError::DnsSetup { .. } => true,
            DiscoveryError::Aws { status, code, .. } => aws_retryable(code, *status),
            DiscoveryError::Gce(e) => e.is_retryable(),
            DiscoveryError::Azure { retryable, .. } => *retryable,
        }
    }

    /// The AWS error code, when AWS answered with one.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            DiscoveryError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub(crate) fn aws_retryable(code: &str, status: u16) -> bool {
    status == 429 || (500..600).contains(&status) || RETRYABLE_AWS_CODES.contains(&code)
}

fn dns_hint(retryable: bool) -> &'static str {
    if retryable {
        "the nameserver is unreachable, slow or failing (temporary)"
    } else {
        "check the nameserver and that it serves this zone"
    }
}

struct AwsHint<'a>(&'a str, u16);

fn aws_hint(code: &str, status: u16) -> AwsHint<'_> {
    AwsHint(code, status)
}

impl fmt::Display for AwsHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AwsHint(code, status) = *self;
        let hint = match code {
            "RequestExpired" | "RequestTimeTooSkewed" => {
                "the system clock is off by more than 5 minutes; wait for time synchronisation (chrony, systemd-timesyncd)"
            }
            "InvalidInstanceID.NotFound" => "the instance was launched moments ago and EC2 does not list it yet (temporary)",
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess" => {
                "grant the instance role what its discovery provider calls: aws-asg autoscaling:DescribeAutoScalingGroups, autoscaling:DescribeAutoScalingInstances and ec2:DescribeInstances; aws-tags ec2:DescribeInstances"
            }
            "AuthFailure" | "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" | "IncompleteSignature" => {
                "the credentials are not valid for this endpoint and region; check the instance role, the region and the clock"
            }
            "ExpiredToken" | "ExpiredTokenException" | "RequestExpiredToken" => {
                "the temporary credentials expired; fetch fresh ones from the instance metadata"
            }
            "ValidationError" | "InvalidParameterValue" | "InvalidParameterCombination" | "MissingParameter" => {
                "check the group name (aws-asg) or tag-key and tag-value (aws-tags), and the region, in the discovery settings"
            }
            _ if aws_retryable(code, status) => "AWS is throttling or failing for now (temporary)",
            _ => "see the AWS error code above",
        };
        f.write_str(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(status: u16, code: &str) -> DiscoveryError {
        DiscoveryError::Aws {
            action: "DescribeAutoScalingGroups",
            endpoint: "https://autoscaling.eu-west-1.amazonaws.com/".into(),
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn aws_retry_classification() {
        for (status, code) in [
            (400, "Throttling"),
            (503, "RequestLimitExceeded"),
            (429, "x"),
            (500, "InternalError"),
            (502, "HTTP 502"),
            (400, "RequestExpired"),
        ] {
            assert!(aws(status, code).is_retryable(), "{status} {code}");
        }
        for (status, code) in [
            (403, "AccessDenied"),
            (400, "ValidationError"),
            (401, "AuthFailure"),
            (400, "SignatureDoesNotMatch"),
        ] {
            assert!(!aws(status, code).is_retryable(), "{status} {code}");
        }
    }

    #[test]
    fn messages_say_where_and_what_to_do() {
        let e = aws(400, "Throttling").to_string();
        assert!(
            e.contains("DescribeAutoScalingGroups")
                && e.contains("autoscaling.eu-west-1")
                && e.contains("temporary"),
            "{e}"
        );
        let e = aws(403, "AccessDenied").to_string();
        assert!(e.contains("autoscaling:DescribeAutoScalingGroups"), "{e}");
        let e = DiscoveryError::Dns {
            kind: "SRV",
            record: "_etcd-server-ssl._tcp.example.com.".into(),
            server: "127.0.0.1:53".into(),
            detail: "request timed out".into(),
            retryable: true,
        };
        assert!(e.is_retryable());
        let setup = DiscoveryError::DnsSetup { detail: "no nameservers".into() };
        assert!(setup.is_retryable() && setup.to_string().contains("/etc/resolv.conf"));
        assert!(
            e.to_string().contains("_etcd-server-ssl._tcp.example.com. via 127.0.0.1:53"),
            "{e}"
        );
    }
}
