//! What every AWS call etcdadm makes shares (the Auto Scaling and EC2 Query APIs of `aws-asg`
//! and `aws-tags` discovery, and S3): the SigV4 signature, by `aws-sigv4`, and the error document.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use serde::Deserialize;
use std::time::SystemTime;

/// What the signature covers of the body.
pub enum Payload<'a> {
    /// The body itself (the Query APIs' form).
    Bytes(&'a [u8]),
    /// The body's SHA-256, hex (S3; also sent as `x-amz-content-sha256`).
    Sha256(&'a str),
}

/// One request to sign.
pub struct SignRequest<'a> {
    /// The signing name: `autoscaling`, `ec2`, `s3`.
    pub service: &'a str,
    pub region: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    /// Headers the request carries besides those the signature adds; all are signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: Payload<'a>,
}

/// The headers SigV4 adds (authorization, x-amz-date, x-amz-security-token, and for S3
/// x-amz-content-sha256), signed now. S3 takes the path as it is (no normalization, single
/// percent-encoding), as its SigV4 variant requires.
pub fn sigv4_headers(
    credentials: &Credentials,
    r: &SignRequest<'_>,
) -> Result<Vec<(&'static str, String)>, String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    let body = match r.payload {
        Payload::Bytes(b) => SignableBody::Bytes(b),
        Payload::Sha256(sha) => {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            SignableBody::Precomputed(sha.to_string())
        }
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(r.region)
        .name(r.service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(r.method, r.url, r.headers.iter().copied(), body)
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers.into_iter().map(|h| (h.name(), h.value().to_string())).collect())
}

/// The code and message of an AWS error document: S3's `<Error><Code>`, Auto Scaling's
/// `<ErrorResponse><Error><Code>` or EC2's `<Response><Errors><Error><Code>`. `None` when the
/// body is none of these (an HTML page of a proxy, nothing).
pub fn error_document(text: &str) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Document {
        #[serde(rename = "Code", default)]
        code: String,
        #[serde(rename = "Message", default)]
        message: String,
        #[serde(rename = "Error", default)]
        error: Option<ErrorXml>,
        #[serde(rename = "Errors", default)]
        errors: Option<ErrorsXml>,
    }
    #[derive(Deserialize)]
    struct ErrorsXml {
        #[serde(rename = "Error", default)]
        error: Vec<ErrorXml>,
    }
    #[derive(Deserialize)]
    struct ErrorXml {
        #[serde(rename = "Code", default)]
        code: String,
        #[serde(rename = "Message", default)]
        message: String,
    }
    if !text.contains("<Error") {
        return None;
    }
    let d: Document = quick_xml::de::from_str(text).ok()?;
    let nested = d.error.or_else(|| d.errors.and_then(|e| e.error.into_iter().next()));
    let (code, message) = match nested {
        Some(e) => (e.code, e.message),
        None => (d.code, d.message),
    };
    (!code.is_empty()).then_some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_of_s3_auto_scaling_and_ec2() {
        let s3 = r#"<?xml version="1.0" encoding="utf-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>b</BucketName></Error>"#;
        let asg = r#"<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>a3</RequestId></ErrorResponse>"#;
        let ec2 = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>e</RequestID></Response>"#;
        let pair = |c: &str, m: &str| Some((c.to_string(), m.to_string()));
        assert_eq!(error_document(s3), pair("NoSuchBucket", "The specified bucket does not exist"));
        assert_eq!(error_document(asg), pair("Throttling", "Rate exceeded"));
        assert_eq!(error_document(ec2), pair("RequestLimitExceeded", "Request limit exceeded."));
        assert_eq!(error_document("<html><body>502 Bad Gateway</body></html>"), None);
        assert_eq!(error_document("<Error><Message>no code</Message></Error>"), None);
        assert_eq!(error_document(""), None);
    }

    fn credentials() -> Credentials {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "t")
    }

    #[test]
    fn query_requests_sign_the_body_and_s3_requests_its_hash() {
        let query = sigv4_headers(
            &credentials(),
            &SignRequest {
                service: "autoscaling",
                region: "eu-west-1",
                method: "POST",
                url: "https://autoscaling.eu-west-1.amazonaws.com/",
                headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                payload: Payload::Bytes(b"Action=DescribeAutoScalingGroups"),
            },
        )
        .unwrap();
        let get =
            |h: &[(&str, String)], n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        let auth = get(&query, "authorization").unwrap();
        assert!(auth.contains("/eu-west-1/autoscaling/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date,"), "{auth}");
        assert_eq!(get(&query, "x-amz-content-sha256"), None);

        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let s3 = sigv4_headers(
            &credentials(),
            &SignRequest {
                service: "s3",
                region: "us-east-1",
                method: "GET",
                url: "http://127.0.0.1:9000/bucket/a//b",
                headers: &[],
                payload: Payload::Sha256(sha),
            },
        )
        .unwrap();
        let auth = get(&s3, "authorization").unwrap();
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"), "{auth}");
        assert_eq!(get(&s3, "x-amz-content-sha256").as_deref(), Some(sha));
    }
}
