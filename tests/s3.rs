//! Snapshots in an S3-compatible store, against moto's S3 run as a server on 127.0.0.1 (one
//! per test; from scripts/install-deps.sh — a missing moto fails the tests, never skips
//! them): upload with the SHA-256 recorded, remote retention of our objects only, download
//! of the newest, tampered objects refused, clear errors for bad credentials and a missing
//! bucket (with moto's IAM signature checks on), and transient errors retried.
//!
//! Every test name starts with "s3_", so `cargo test --test s3` or `cargo test s3_` runs them.

#[path = "support/moto.rs"]
mod moto;
#[allow(dead_code)]
#[path = "discovery/support.rs"]
mod support;

use etcdadm::aws_credentials::AwsCredentials;
use etcdadm::s3::{
    download_snapshot, prune_remote, upload_snapshot, BackupKey, Client, S3Error, S3Url, Settings,
};
use moto::MotoServer;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REGION: &str = "us-east-1";
/// A well-formed Authorization header for moto's set-up calls while it checks no signatures;
/// moto picks the service from the credential scope.
fn setup_auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=AKIDSETUP/20250101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00")
}

fn creds(key: &str, secret: &str) -> AwsCredentials {
    AwsCredentials {
        access_key_id: key.into(),
        secret_access_key: secret.into(),
        session_token: None,
        expiration: None,
    }
}

/// The backup MAC key of the test cluster (from its CA key's DER).
fn key() -> BackupKey {
    BackupKey::from_ca_key_der(b"the test cluster's CA key")
}

fn any_creds() -> AwsCredentials {
    creds("AKIDTESTEXAMPLE", "test-secret-do-not-print")
}

fn settings(endpoint: &str) -> Settings {
    Settings::new(Some(endpoint), Some(REGION), None, Duration::from_secs(20)).unwrap()
}

struct S3 {
    server: MotoServer,
    http: reqwest::Client,
}

impl S3 {
    fn start() -> S3 {
        let server = MotoServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST));
        support::crypto();
        S3 { server, http: reqwest::Client::new() }
    }

    fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// A raw request for setting the test up (not through the code under test).
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint()))
            .header("authorization", setup_auth("s3"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.unwrap()
    }

    async fn create_bucket(&self, bucket: &str) {
        let r = self.raw(reqwest::Method::PUT, &format!("/{bucket}"), &[], Vec::new()).await;
        assert!(r.status().is_success(), "create bucket {bucket}: {}", r.status());
    }

    /// Puts `body` as `key` with these x-amz-meta-* headers, bypassing the code under test.
    async fn put_raw(&self, bucket: &str, key: &str, body: &[u8], meta: &[(&str, &str)]) {
        let mut headers = vec![("content-type", "application/octet-stream")];
        headers.extend_from_slice(meta);
        let r = self
            .raw(reqwest::Method::PUT, &format!("/{bucket}/{key}"), &headers, body.to_vec())
            .await;
        assert!(r.status().is_success(), "put {key}: {}", r.status());
    }

    /// The keys in `bucket` under `prefix`, sorted.
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let r = self
            .raw(
                reqwest::Method::GET,
                &format!("/{bucket}?list-type=2&prefix={prefix}"),
                &[],
                Vec::new(),
            )
            .await;
        let text = r.text().await.unwrap();
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect();
        keys.sort();
        keys
    }

    /// The object's body and its x-amz-meta-sha256.
    async fn get_raw(&self, bucket: &str, key: &str) -> (Vec<u8>, Option<String>) {
        let r = self.raw(reqwest::Method::GET, &format!("/{bucket}/{key}"), &[], Vec::new()).await;
        assert!(r.status().is_success(), "get {key}: {}", r.status());
        let meta = r.headers().get("x-amz-meta-sha256").map(|v| v.to_str().unwrap().to_string());
        (r.bytes().await.unwrap().to_vec(), meta)
    }

    /// An IAM user allowed s3:* with an access key, then moto checks every signature.
    async fn enable_iam(&self) -> AwsCredentials {
        let iam = |params: Vec<(&'static str, String)>| {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Version", "2010-05-08");
            for (k, v) in &params {
                form.append_pair(k, v);
            }
            self.http
                .post(format!("{}/", self.endpoint()))
                .header("authorization", setup_auth("iam"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.finish())
                .send()
        };
        let user = || ("UserName", "etcdadm-backup".to_string());
        for params in [
            vec![("Action", "CreateUser".to_string()), user()],
            vec![
                ("Action", "PutUserPolicy".to_string()),
                user(),
                ("PolicyName", "s3".to_string()),
                ("PolicyDocument", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.to_string()),
            ],
        ] {
            let r = iam(params).await.unwrap();
            assert!(r.status().is_success(), "IAM set-up: {}: {}", r.status(), r.text().await.unwrap());
        }
        let r = iam(vec![("Action", "CreateAccessKey".to_string()), user()]).await.unwrap();
        let text = r.text().await.unwrap();
        let tag = |t: &str| {
            text.split(&format!("<{t}>"))
                .nth(1)
                .and_then(|s| s.split_once(&format!("</{t}>")))
                .unwrap()
                .0
                .to_string()
        };
        let c = creds(&tag("AccessKeyId"), &tag("SecretAccessKey"));
        let r = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.endpoint()))
            .body("0")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "reset-auth: {}", r.status());
        c
    }
}

/// A file named like `etcdadm backup` names snapshots, with distinct content.
fn snapshot_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let content: Vec<u8> = name.bytes().cycle().take(300 * 1024 + name.len()).collect();
    std::fs::write(&p, content).unwrap();
    p
}

fn sha_hex(p: &Path) -> String {
    etcdadm::digest::to_hex(&etcdadm::digest::sha256_file(p).unwrap())
}

fn dir_entries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn s3_upload_records_sha_prunes_only_ours_and_restores_the_newest() {
    let s3 = S3::start();
    s3.create_bucket("backups").await;
    let client = Client::new(&settings(&s3.endpoint()), "backups", &any_creds()).unwrap();
    let prefix = S3Url::parse("s3://backups/etcd/prod").unwrap(); // the trailing / is implied
    let local = tempfile::tempdir().unwrap();

    // Objects that are not ours, or not this member's, stay whatever retention does.
    s3.put_raw("backups", "etcd/prod/notes.txt", b"keep me", &[]).await;
    s3.put_raw("backups", "etcd/prod/sub/m1-20200101T000000.000Z.db", b"nested", &[]).await;
    // Member m1-a's, which m1's retention must not count or delete.
    s3.put_raw("backups", "etcd/prod/m1-a-20200101T000000.000Z.db", b"m1-a's", &[]).await;
    let m2 = snapshot_file(local.path(), "m2-20260101T000000.000Z.db");
    upload_snapshot(&client, &prefix, &m2, &key()).await.unwrap();

    let names =
        ["m1-20260102T000000.000Z.db", "m1-20260103T000000.000Z.db", "m1-20260104T000000.000Z.db"];
    for n in names {
        let f = snapshot_file(local.path(), n);
        let url = upload_snapshot(&client, &prefix, &f, &key()).await.unwrap();
        assert_eq!(url.to_string(), format!("s3://backups/etcd/prod/{n}"));
        let (body, meta) = s3.get_raw("backups", &format!("etcd/prod/{n}")).await;
        assert_eq!(body, std::fs::read(&f).unwrap(), "uploaded body of {n}");
        assert_eq!(meta.as_deref(), Some(sha_hex(&f).as_str()), "recorded sha256 of {n}");
    }

    let removed = prune_remote(&client, &prefix, "m1", 2).await.unwrap();
    assert_eq!(
        removed,
        [S3Url::parse("s3://backups/etcd/prod/m1-20260102T000000.000Z.db").unwrap()]
    );
    assert_eq!(
        s3.keys("backups", "etcd/").await,
        [
            "etcd/prod/m1-20260103T000000.000Z.db",
            "etcd/prod/m1-20260104T000000.000Z.db",
            "etcd/prod/m1-a-20200101T000000.000Z.db",
            "etcd/prod/m2-20260101T000000.000Z.db",
            "etcd/prod/notes.txt",
            "etcd/prod/sub/m1-20200101T000000.000Z.db",
        ]
    );
    // Pruning again changes nothing.
    assert!(prune_remote(&client, &prefix, "m1", 2).await.unwrap().is_empty());

    // The prefix means the newest snapshot under it, whichever member took it.
    let restore_dir = tempfile::tempdir().unwrap();
    let d = download_snapshot(
        &client,
        &S3Url::parse("s3://backups/etcd/prod/").unwrap(),
        restore_dir.path(),
        &key(),
    )
    .await
    .unwrap();
    assert_eq!(d.source.key, "etcd/prod/m1-20260104T000000.000Z.db");
    assert_eq!(
        std::fs::read(d.file.path()).unwrap(),
        std::fs::read(local.path().join(names[2])).unwrap()
    );
    assert_eq!(d.sha256, sha_hex(&local.path().join(names[2])));
    assert_eq!(d.file.path().parent(), Some(restore_dir.path()));
    // One named object.
    let one = download_snapshot(
        &client,
        &S3Url::parse("s3://backups/etcd/prod/m2-20260101T000000.000Z.db").unwrap(),
        restore_dir.path(),
        &key(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(one.file.path()).unwrap(), std::fs::read(&m2).unwrap());
    drop((d, one));
    assert!(dir_entries(restore_dir.path()).is_empty(), "temporary downloads are removed on drop");

    // An empty prefix has nothing to restore.
    let e = download_snapshot(
        &client,
        &S3Url::parse("s3://backups/other/").unwrap(),
        restore_dir.path(),
        &key(),
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("no snapshot made by etcdadm backup"), "{e}");
}

/// The metadata headers `etcdadm backup` would record for `name` with content `body`,
/// signed with `key`.
fn signed_meta(key: &BackupKey, name: &str, body: &[u8]) -> (String, String) {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(body));
    let mac = key.sign(name, &sha);
    (sha, mac)
}

#[tokio::test]
async fn s3_tampered_or_unrecorded_objects_are_refused_and_leave_nothing() {
    let s3 = S3::start();
    s3.create_bucket("backups").await;
    let client = Client::new(&settings(&s3.endpoint()), "backups", &any_creds()).unwrap();
    let prefix = S3Url::parse("s3://backups/p/").unwrap();
    let local = tempfile::tempdir().unwrap();
    let f = snapshot_file(local.path(), "m1-20260101T000000.000Z.db");
    let url = upload_snapshot(&client, &prefix, &f, &key()).await.unwrap();

    // Same recorded hash and signature, one byte changed.
    let mut body = std::fs::read(&f).unwrap();
    body[1000] ^= 0x55;
    let (sha, mac) = signed_meta(&key(), "m1-20260101T000000.000Z.db", &std::fs::read(&f).unwrap());
    s3.put_raw(
        "backups",
        &url.key,
        &body,
        &[("x-amz-meta-sha256", &sha), ("x-amz-meta-etcdadm-mac", &mac)],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let e = download_snapshot(&client, &url, dir.path(), &key()).await.err().unwrap();
    assert!(matches!(e, S3Error::Integrity { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&url.to_string()) && msg.contains("altered or damaged") && msg.contains(&sha),
        "{msg}"
    );
    assert!(dir_entries(dir.path()).is_empty(), "the refused download is removed");
    // Under the prefix it is the only candidate: nothing genuine is left.
    let e = download_snapshot(&client, &prefix, dir.path(), &key()).await.err().unwrap();
    let msg = e.to_string();
    assert!(
        msg.contains("no genuine snapshot under s3://backups/p/")
            && msg.contains(&format!("{url}: the downloaded object's SHA-256"))
            && msg.contains("altered or damaged"),
        "{msg}"
    );
    assert!(dir_entries(dir.path()).is_empty(), "the refused download is removed");

    // No recorded hash at all.
    let named = S3Url::parse("s3://backups/p/m1-20260102T000000.000Z.db").unwrap();
    s3.put_raw("backups", &named.key, &std::fs::read(&f).unwrap(), &[]).await;
    let e = download_snapshot(&client, &named, dir.path(), &key()).await.err().unwrap();
    assert!(e.to_string().contains("no recorded SHA-256"), "{e}");
    assert!(dir_entries(dir.path()).is_empty());
}

/// What a writer to the prefix can plant there, and restore of the prefix and of each
/// planted object.
#[tokio::test]
async fn s3_restore_takes_the_newest_genuinely_signed_snapshot_and_refuses_planted_ones() {
    let s3 = S3::start();
    s3.create_bucket("backups").await;
    let client = Client::new(&settings(&s3.endpoint()), "backups", &any_creds()).unwrap();
    let prefix = S3Url::parse("s3://backups/p/").unwrap();
    let local = tempfile::tempdir().unwrap();
    let old = snapshot_file(local.path(), "m1-20260101T000000.000Z.db");
    upload_snapshot(&client, &prefix, &old, &key()).await.unwrap();
    let genuine = snapshot_file(local.path(), "m2-20260102T000000.000Z.db");
    upload_snapshot(&client, &prefix, &genuine, &key()).await.unwrap();

    // Newer than the genuine one, each with a recorded SHA-256 that matches its body.
    let body = b"a planted database".repeat(1000);
    let (sha, _) = signed_meta(&key(), "", &body);
    let unsigned = "p/m3-20260103T000000.000Z.db";
    s3.put_raw("backups", unsigned, &body, &[("x-amz-meta-sha256", &sha)]).await;
    let other_ca = BackupKey::from_ca_key_der(b"another cluster's CA key");
    let wrong = "p/m1-20260104T000000.000Z.db";
    let (_, mac) = signed_meta(&other_ca, "m1-20260104T000000.000Z.db", &body);
    s3.put_raw(
        "backups",
        wrong,
        &body,
        &[("x-amz-meta-sha256", &sha), ("x-amz-meta-etcdadm-mac", &mac)],
    )
    .await;
    // A genuine signature over an old name, copied onto a newer name.
    let renamed = "p/m2-20260105T000000.000Z.db";
    let (gsha, gmac) =
        signed_meta(&key(), "m2-20260102T000000.000Z.db", &std::fs::read(&genuine).unwrap());
    s3.put_raw(
        "backups",
        renamed,
        &std::fs::read(&genuine).unwrap(),
        &[("x-amz-meta-sha256", &gsha), ("x-amz-meta-etcdadm-mac", &gmac)],
    )
    .await;
    // Stamped far in the future, and even signed with the right key.
    let future = "p/m1-99991231T235959Z.db";
    let (_, fmac) = signed_meta(&key(), "m1-99991231T235959Z.db", &body);
    s3.put_raw(
        "backups",
        future,
        &body,
        &[("x-amz-meta-sha256", &sha), ("x-amz-meta-etcdadm-mac", &fmac)],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let d = download_snapshot(&client, &prefix, dir.path(), &key()).await.unwrap();
    assert_eq!(d.source.key, "p/m2-20260102T000000.000Z.db");
    assert_eq!(std::fs::read(d.file.path()).unwrap(), std::fs::read(&genuine).unwrap());
    let skipped: Vec<(String, String)> =
        d.skipped.iter().map(|s| (s.object.key.clone(), s.reason.clone())).collect();
    assert_eq!(
        skipped.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [future, renamed, wrong, unsigned],
        "newest first"
    );
    assert!(skipped[0].1.contains("stamped 99991231T235959.000Z, in the future"), "{skipped:?}");
    assert!(
        skipped[1].1.contains("signature (x-amz-meta-etcdadm-mac) does not match"),
        "{skipped:?}"
    );
    assert!(
        skipped[2].1.contains("signature (x-amz-meta-etcdadm-mac) does not match"),
        "{skipped:?}"
    );
    assert!(skipped[3].1.contains("unsigned (no x-amz-meta-etcdadm-mac)"), "{skipped:?}");
    drop(d);

    // Each planted object, named: refused with its reason, nothing left behind.
    for (object, want) in [
        (future, "in the future"),
        (renamed, "does not match"),
        (wrong, "does not match"),
        (unsigned, "unsigned"),
    ] {
        let url = prefix.with_key(object);
        let e = download_snapshot(&client, &url, dir.path(), &key()).await.err().unwrap();
        assert!(matches!(e, S3Error::Authenticity { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{url}: ")) && msg.contains(want), "{msg}");
        assert!(msg.contains("refusing to restore it, nothing was changed"), "{msg}");
        assert!(dir_entries(dir.path()).is_empty(), "{object}: nothing written");
    }
    // The genuine ones, named, are restored; with a third cluster's key nothing is.
    download_snapshot(
        &client,
        &prefix.with_key("p/m1-20260101T000000.000Z.db"),
        dir.path(),
        &key(),
    )
    .await
    .unwrap();
    let third = BackupKey::from_ca_key_der(b"a third cluster's CA key");
    let e = download_snapshot(&client, &prefix, dir.path(), &third).await.err().unwrap();
    assert!(matches!(e, S3Error::NoneGenuine { .. }), "{e:?}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test]
async fn s3_bad_credentials_and_missing_bucket_say_what_and_where() {
    let s3 = S3::start();
    s3.create_bucket("backups").await;
    let good = s3.enable_iam().await;
    let endpoint = s3.endpoint();
    let local = tempfile::tempdir().unwrap();
    let f = snapshot_file(local.path(), "m1-20260101T000000.000Z.db");
    let prefix = S3Url::parse("s3://backups/p/").unwrap();

    // moto now checks SigV4 signatures (botocore's) and the access key: ours pass.
    let client = Client::new(&settings(&endpoint), "backups", &good).unwrap();
    upload_snapshot(&client, &prefix, &f, &key()).await.unwrap();
    assert!(prune_remote(&client, &prefix, "m1", 1).await.unwrap().is_empty());
    let dir = tempfile::tempdir().unwrap();
    download_snapshot(&client, &prefix, dir.path(), &key()).await.unwrap();

    let wrong_secret = creds(&good.access_key_id, "not-the-secret-do-not-print");
    let e = upload_snapshot(
        &Client::new(&settings(&endpoint), "backups", &wrong_secret).unwrap(),
        &prefix,
        &f,
        &key(),
    )
    .await
    .err()
    .unwrap();
    let msg = e.to_string();
    assert!(!e.is_retryable());
    for want in [
        "upload s3://backups/p/m1-20260101T000000.000Z.db",
        &endpoint,
        "HTTP 403 SignatureDoesNotMatch",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(!msg.contains("not-the-secret"), "{msg}");

    let unknown = creds("AKIAUNKNOWNKEY000000", "whatever-secret");
    let e = upload_snapshot(
        &Client::new(&settings(&endpoint), "backups", &unknown).unwrap(),
        &prefix,
        &f,
        &key(),
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("HTTP 403 InvalidAccessKeyId"), "{e}");

    let e = upload_snapshot(
        &Client::new(&settings(&endpoint), "no-such-bucket", &good).unwrap(),
        &S3Url::parse("s3://no-such-bucket/p/").unwrap(),
        &f,
        &key(),
    )
    .await
    .err()
    .unwrap();
    let msg = e.to_string();
    for want in ["s3://no-such-bucket/p/", &endpoint, "HTTP 404 NoSuchBucket", "create it"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let e = download_snapshot(
        &Client::new(&settings(&endpoint), "backups", &good).unwrap(),
        &S3Url::parse("s3://backups/p/absent.db").unwrap(),
        dir.path(),
        &key(),
    )
    .await
    .err()
    .unwrap();
    // Inspected (HEAD) before it is downloaded: no error document, the status says it.
    let msg = e.to_string();
    assert!(
        msg.contains("s3://backups/p/absent.db")
            && msg.contains("HTTP 404 NotFound")
            && msg.contains("no such object"),
        "{msg}"
    );
}

/// A store that answers the first `failures` requests with 503 SlowDown and every other
/// with 200, recording the bodies it received.
async fn flaky_store(
    failures: usize,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<Vec<u8>>>>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let (b, n) = (bodies.clone(), count.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            let head_end = loop {
                let k = conn.read(&mut chunk).await.unwrap();
                assert!(k > 0, "connection closed before the request ended");
                buf.extend_from_slice(&chunk[..k]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let k = conn.read(&mut chunk).await.unwrap();
                assert!(k > 0, "body cut short");
                buf.extend_from_slice(&chunk[..k]);
            }
            b.lock().unwrap().push(buf[head_end..].to_vec());
            let reply = if n.fetch_add(1, Ordering::SeqCst) < failures {
                let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                format!("HTTP/1.1 503 Slow Down\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
            };
            conn.write_all(reply.as_bytes()).await.unwrap();
            let _ = conn.shutdown().await;
        }
    });
    (addr, bodies, count)
}

#[tokio::test]
async fn s3_throttling_is_retried_with_the_whole_body_each_time() {
    support::crypto();
    let (addr, bodies, count) = flaky_store(2).await;
    let client =
        Client::new(&settings(&format!("http://{addr}")), "backups", &any_creds()).unwrap();
    let local = tempfile::tempdir().unwrap();
    let f = snapshot_file(local.path(), "m1-20260101T000000.000Z.db");
    upload_snapshot(&client, &S3Url::parse("s3://backups/p/").unwrap(), &f, &key()).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3, "two throttled attempts, then success");
    let want = std::fs::read(&f).unwrap();
    for (i, b) in bodies.lock().unwrap().iter().enumerate() {
        assert!(
            b == &want,
            "attempt {i} sent {} bytes, not the snapshot's {}",
            b.len(),
            want.len()
        );
    }

    // A store that keeps failing: the error names it, after the retry time ran out.
    let (addr, _, count) = flaky_store(usize::MAX).await;
    let s =
        Settings::new(Some(&format!("http://{addr}")), Some(REGION), None, Duration::from_secs(1))
            .unwrap();
    let e = upload_snapshot(
        &Client::new(&s, "backups", &any_creds()).unwrap(),
        &S3Url::parse("s3://backups/p/").unwrap(),
        &f,
        &key(),
    )
    .await
    .err()
    .unwrap();
    assert!(count.load(Ordering::SeqCst) > 1, "retried");
    assert!(
        e.to_string().contains("HTTP 503 SlowDown") && e.to_string().contains("try again later"),
        "{e}"
    );
}

/// How a misbehaving store answers the n-th request (from 0).
#[derive(Clone, Copy)]
enum Misbehave {
    /// Accepts, reads the request, sends nothing.
    Silent,
    /// A 200 answer without a length, then body bytes forever.
    EndlessBody,
    /// A 403 with an endless error document.
    EndlessError,
    /// A valid one-key ListObjectsV2 page that always says there is more.
    EndlessListing,
}

/// Writes `head`, then body bytes until the peer goes away.
async fn endless(conn: &mut tokio::net::TcpStream, head: &str) {
    let _ = conn.write_all(head.as_bytes()).await;
    let chunk = vec![b'<'; 64 * 1024];
    while conn.write_all(&chunk).await.is_ok() {}
}

/// A store on loopback that misbehaves as told; returns its endpoint and the request count.
async fn misbehaving_store(how: Misbehave) -> (String, Arc<AtomicUsize>) {
    support::crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let n = n.clone();
            tokio::spawn(async move {
                // Keep-alive: answer each request on the connection.
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if conn.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    match how {
                        Misbehave::Silent => {
                            tokio::time::sleep(Duration::from_secs(600)).await;
                            return;
                        }
                        Misbehave::EndlessBody => {
                            endless(&mut conn, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                        Misbehave::EndlessError => {
                            endless(
                                &mut conn,
                                "HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n<Error><Code>",
                            )
                            .await;
                            return;
                        }
                        Misbehave::EndlessListing => {
                            let body = format!("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t{i}</NextContinuationToken><Contents><Key>p/m1-20260101T000000.{:03}Z.db</Key><Size>1</Size></Contents></ListBucketResult>", i % 1000);
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if conn.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (endpoint, count)
}

fn client_with_timeout(endpoint: &str, seconds: u64) -> Client {
    let s =
        Settings::new(Some(endpoint), Some(REGION), None, Duration::from_secs(seconds)).unwrap();
    Client::new(&s, "backups", &any_creds()).unwrap()
}

/// Bounds the test itself: a call that hangs fails the test instead of hanging it.
async fn within_a_minute<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f).await.expect("the call hung")
}

#[tokio::test]
async fn s3_a_store_that_accepts_and_sends_nothing_fails_within_timeout_seconds_naming_it() {
    let (endpoint, _) = misbehaving_store(Misbehave::Silent).await;
    let client = client_with_timeout(&endpoint, 1);
    let dir = tempfile::tempdir().unwrap();
    let prefix = S3Url::parse("s3://backups/p/").unwrap();
    let e = within_a_minute(download_snapshot(&client, &prefix, dir.path(), &key())).await;
    let e = e.err().unwrap();
    assert!(matches!(e, S3Error::Bounded { .. }), "{e:?}");
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "list s3://backups/p/ at {endpoint} failed: no answer within 1s (timeout-seconds)"
        )),
        "{msg}"
    );
    let object = prefix.with_key("p/m1-20260101T000000.000Z.db");
    let e = within_a_minute(download_snapshot(&client, &object, dir.path(), &key())).await;
    let msg = e.err().unwrap().to_string();
    assert!(msg.contains(&format!("{object} at {endpoint} failed: no answer within 1s")), "{msg}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test]
async fn s3_endless_answers_are_cut_at_their_caps() {
    let prefix = S3Url::parse("s3://backups/p/").unwrap();
    let (endpoint, _) = misbehaving_store(Misbehave::EndlessBody).await;
    let client = client_with_timeout(&endpoint, 10);
    let e = within_a_minute(prune_remote(&client, &prefix, "m1", 1)).await.err().unwrap();
    assert!(matches!(e, S3Error::Bounded { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("list s3://backups/p/ at {endpoint} failed: larger than 4194304 bytes (the cap for a listing page)")),
        "{msg}"
    );

    // An endless error document: the status still comes through, quickly.
    let (endpoint, _) = misbehaving_store(Misbehave::EndlessError).await;
    let client = client_with_timeout(&endpoint, 10);
    let e = within_a_minute(prune_remote(&client, &prefix, "m1", 1)).await.err().unwrap();
    assert!(e.to_string().contains("failed: HTTP 403 Forbidden"), "{e}");
}

#[tokio::test]
async fn s3_an_endless_listing_stops_at_the_page_bound() {
    let (endpoint, count) = misbehaving_store(Misbehave::EndlessListing).await;
    let client = client_with_timeout(&endpoint, 10);
    let prefix = S3Url::parse("s3://backups/p/").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = within_a_minute(download_snapshot(&client, &prefix, dir.path(), &key())).await;
    let e = e.err().unwrap();
    assert!(matches!(e, S3Error::TooMany { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "list s3://backups/p/ at {endpoint}: the store still says there is more after {} pages",
            etcdadm::s3::MAX_LIST_PAGES
        )) && msg.contains("a prefix of their own"),
        "{msg}"
    );
    assert_eq!(count.load(Ordering::SeqCst), etcdadm::s3::MAX_LIST_PAGES, "requests made");
    assert!(dir_entries(dir.path()).is_empty());
}
