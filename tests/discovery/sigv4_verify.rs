//! An independent check of AWS Signature Version 4, written from AWS's documentation of the
//! signing process (canonical request, string to sign, derived key), sharing no code with
//! the product's signer (`aws-sigv4`). moto does not check signatures of the Auto Scaling and
//! EC2 Query APIs, so the throttling proxy in front of it checks every call with this and
//! answers a bad one as AWS does (403 `SignatureDoesNotMatch`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// What a request carries that the signature covers.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The request target: path and optional `?query`.
    pub target: &'a str,
    /// Header names and values as sent.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// Checks the `Authorization` header of `req` with `secret`: the signature, that `host` and
/// `x-amz-date` are signed, and that the date is within 15 minutes of now (as AWS does).
pub fn verify(req: &Signed, secret: &str) -> Result<(), String> {
    let auth = header(req, "authorization").ok_or("no Authorization header")?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not AWS4-HMAC-SHA256")?;
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or(format!("Authorization has no {name}"))
    };
    let (credential, signed_headers, signature) =
        (field("Credential")?, field("SignedHeaders")?, field("Signature")?);
    let (_access_key, scope) = credential.split_once('/').ok_or("Credential has no scope")?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [day, region, service, "aws4_request"] = scope_parts[..] else {
        return Err(format!("credential scope {scope:?} is not DATE/REGION/SERVICE/aws4_request"));
    };
    let names: Vec<&str> = signed_headers.split(';').collect();
    for needed in ["host", "x-amz-date"] {
        if !names.contains(&needed) {
            return Err(format!("{needed} is not signed (SignedHeaders={signed_headers})"));
        }
    }
    if header(req, "x-amz-security-token").is_some() && !names.contains(&"x-amz-security-token") {
        return Err("x-amz-security-token is sent but not signed".into());
    }
    let amz_date = header(req, "x-amz-date").ok_or("no x-amz-date header")?;
    if !amz_date.starts_with(day) {
        return Err(format!("x-amz-date {amz_date} is not on the scope's day {day}"));
    }
    check_fresh(amz_date)?;
    let expected = signature_of(req, &names, amz_date, scope, day, region, service, secret)?;
    if expected == signature {
        Ok(())
    } else {
        Err(format!("signature {signature} does not match the expected {expected}"))
    }
}

#[allow(clippy::too_many_arguments)]
fn signature_of(
    req: &Signed,
    names: &[&str],
    amz_date: &str,
    scope: &str,
    day: &str,
    region: &str,
    service: &str,
    secret: &str,
) -> Result<String, String> {
    let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
    let mut canonical_headers = String::new();
    for name in names {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is not in the request"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = match header(req, "x-amz-content-sha256") {
        Some(h) => h.to_string(),
        None => hex::encode(Sha256::digest(req.body)),
    };
    let canonical_request = [
        req.method,
        &canonical_path(path),
        &canonical_query(query),
        &canonical_headers,
        &names.join(";"),
        &payload_hash,
    ]
    .join("\n");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    Ok(hex::encode(hmac(&key, string_to_sign.as_bytes())))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn header<'a>(req: &Signed<'a>, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// RFC 3986 unreserved characters stay, everything else is %XX (upper case).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    // Non-S3 services encode each segment of the (already encoded) path once more.
    uri_encode(path, true)
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn check_fresh(amz_date: &str) -> Result<(), String> {
    let bad = || format!("x-amz-date {amz_date:?} is not YYYYMMDDTHHMMSSZ");
    let digits = amz_date.strip_suffix('Z').ok_or_else(bad)?.replace('T', "");
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) =
        (n(0..4), n(4..6), n(6..8), n(8..10), n(10..12), n(12..14))
    else {
        return Err(bad());
    };
    let month = time::Month::try_from(mo as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y as i32, month, d as u8).map_err(|_| bad())?;
    let at = date.with_hms(h as u8, mi as u8, s as u8).map_err(|_| bad())?.assume_utc();
    let skew = (time::OffsetDateTime::now_utc() - at).abs();
    if skew > time::Duration::minutes(15) {
        return Err(format!("x-amz-date {amz_date} is {skew} away from now"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn example(signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        )
    }

    fn iam_list_users(auth: &str) -> Signed<'_> {
        Signed {
            method: "GET",
            target: "/?Action=ListUsers&Version=2010-05-08",
            headers: vec![
                ("Host", "iam.amazonaws.com"),
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("Authorization", auth),
            ],
            body: b"",
        }
    }

    /// AWS's documented example (IAM ListUsers, 2015-08-30): this verifier computes the
    /// published signature, so it implements the documented process, not the product's.
    #[test]
    fn sigv4_verifier_computes_the_signature_aws_documents() {
        let auth = example("x");
        let req = iam_list_users(&auth);
        let names = ["content-type", "host", "x-amz-date"];
        let scope = "20150830/us-east-1/iam/aws4_request";
        let got = signature_of(
            &req,
            &names,
            "20150830T123600Z",
            scope,
            "20150830",
            "us-east-1",
            "iam",
            SECRET,
        )
        .unwrap();
        assert_eq!(got, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    /// A request signed now verifies; changing its body, its secret or its target does not.
    #[test]
    fn sigv4_verifier_refuses_a_tampered_body_target_or_secret() {
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let day = &amz_date[..8];
        let scope = format!("{day}/us-east-1/autoscaling/aws4_request");
        let names = ["content-type", "host", "x-amz-date"];
        let body = b"Action=DescribeAutoScalingGroups&Version=2011-01-01";
        let unsigned = Signed {
            method: "POST",
            target: "/",
            headers: vec![
                ("host", "127.0.0.1:9"),
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-amz-date", &amz_date),
            ],
            body,
        };
        let sig = signature_of(
            &unsigned,
            &names,
            &amz_date,
            &scope,
            day,
            "us-east-1",
            "autoscaling",
            "s3cr3t",
        )
        .unwrap();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        );
        let mut req = unsigned;
        req.headers.push(("authorization", &auth));
        verify(&req, "s3cr3t").unwrap();
        assert!(verify(&req, "other").is_err(), "another secret");
        req.body = b"Action=DescribeAutoScalingGroups&Version=2011-01-02";
        assert!(verify(&req, "s3cr3t").is_err(), "another body");
        req.body = body;
        req.target = "/x";
        assert!(verify(&req, "s3cr3t").is_err(), "another path");
    }

    #[test]
    fn sigv4_verifier_refuses_a_stale_date_and_unsigned_host() {
        let auth = example("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
        let e = verify(&iam_list_users(&auth), SECRET).unwrap_err();
        assert!(e.contains("away from now"), "{e}");
        let auth = auth.replace("content-type;host;x-amz-date", "content-type;x-amz-date");
        let e = verify(&iam_list_users(&auth), SECRET).unwrap_err();
        assert!(e.contains("host is not signed"), "{e}");
    }
}
