//! An HTTP/1.1 proxy in front of moto that records every AWS call and answers the ones the
//! test picks the way AWS throttles (Auto Scaling with HTTP 400 `Throttling`, EC2 with HTTP
//! 503 `RequestLimitExceeded`) or fails (HTTP 500 `InternalFailure`; HTTP 502 with an HTML
//! body, as a load balancer in front answers). One request per connection (`Connection: close`).
//! Every call's SigV4 signature is checked independently (`sigv4_verify`, with the secret
//! every test client uses, `TEST_SECRET`); a call that does not verify is answered as AWS
//! answers it, 403 `SignatureDoesNotMatch`, and recorded as such.

use crate::sigv4_verify::{self, Signed};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    /// `autoscaling` or `ec2`, from the signature's credential scope.
    pub service: String,
    pub action: String,
    /// The access key id of the signature: which client called.
    pub access_key: String,
    /// Refused (throttled or failed) rather than passed to moto.
    pub throttled: bool,
    /// The form parameters of the request.
    pub params: Vec<(String, String)>,
    /// Why its signature did not verify, if it did not.
    pub bad_signature: Option<String>,
}

/// The secret access key of the clients in the discovery tests, by access key id: the
/// credential-source tests' own keys, and `TEST_SECRET` for every other client.
pub const TEST_SECRET: &str = "test-secret-do-not-print";
const SECRETS: &[(&str, &str)] = &[("AKIDFROMENV", "env-secret"), ("ASIAFROMROLE", "role-secret")];

fn secret_of(access_key: &str) -> &'static str {
    SECRETS.iter().find(|(k, _)| *k == access_key).map_or(TEST_SECRET, |(_, s)| s)
}

impl Call {
    /// The values of the instance-id filter of a DescribeInstances call.
    pub fn filtered_instance_ids(&self) -> Vec<&str> {
        let filter = self
            .params
            .iter()
            .find(|(_, v)| v == "instance-id")
            .map(|(k, _)| k.trim_end_matches(".Name").to_string());
        let Some(prefix) = filter else { return Vec::new() };
        let prefix = format!("{prefix}.Value.");
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the proxy does with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass it to moto.
    None,
    /// AWS throttling: `Throttling` (Auto Scaling, 400) or `RequestLimitExceeded` (EC2, 503).
    Throttle,
    /// HTTP 500 `InternalFailure`.
    Internal,
    /// HTTP 502 with a non-AWS (HTML) body.
    BadGateway,
}

pub struct ThrottleProxy {
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Throttle = dyn Fn(usize) -> Fault + Send + Sync;

impl ThrottleProxy {
    /// `throttle(n)` decides whether the n-th call (from 1) is throttled.
    pub async fn start(
        upstream: SocketAddr,
        throttle: impl Fn(usize) -> bool + Send + Sync + 'static,
    ) -> ThrottleProxy {
        Self::with_faults(
            upstream,
            move |n| if throttle(n) { Fault::Throttle } else { Fault::None },
        )
        .await
    }

    /// `fault(n)` decides what happens to the n-th call (from 1).
    pub async fn with_faults(
        upstream: SocketAddr,
        throttle: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> ThrottleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let throttle: Arc<Throttle> = Arc::new(throttle);
        let log = calls.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (log, throttle) = (log.clone(), throttle.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(conn, upstream, &log, &*throttle).await {
                        eprintln!("throttle proxy: {e}");
                    }
                });
            }
        });
        ThrottleProxy { url, calls, task }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn actions(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.action).collect()
    }
}

async fn handle(
    mut conn: TcpStream,
    upstream: SocketAddr,
    log: &Mutex<Vec<Call>>,
    throttle: &Throttle,
) -> std::io::Result<()> {
    let (head, body) = read_message(&mut conn).await?;
    let head_text = String::from_utf8_lossy(&head).into_owned();
    let credential = header(&head_text, "authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .unwrap_or_default()
        .to_string();
    let mut scope = credential.split('/');
    let access_key = scope.next().unwrap_or_default().to_string();
    let service = scope.nth(2).unwrap_or_default().to_string();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let action =
        params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
    let bad_signature = signature_check(&head_text, &body, secret_of(&access_key)).err();
    let fault = {
        let mut log = log.lock().unwrap();
        let fault = throttle(log.len() + 1);
        log.push(Call {
            at: Instant::now(),
            service: service.clone(),
            action,
            access_key,
            throttled: fault != Fault::None,
            params,
            bad_signature: bad_signature.clone(),
        });
        fault
    };
    let refusal = match fault {
        _ if bad_signature.is_some() => Some((
            "403 Forbidden",
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
             <Message>The request signature we calculated does not match the signature you provided.</Message>\
             </Error><RequestId>proxy</RequestId></ErrorResponse>",
        )),
        Fault::None => None,
        Fault::Throttle if service == "ec2" => Some((
            "503 Service Unavailable",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
             <Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy</RequestID></Response>",
        )),
        Fault::Throttle => Some((
            "400 Bad Request",
            "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type>\
             <Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>",
        )),
        Fault::Internal => Some((
            "500 Internal Server Error",
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
             <Message>An internal error occurred.</Message></Error><RequestId>proxy</RequestId></ErrorResponse>",
        )),
        Fault::BadGateway => Some(("502 Bad Gateway", "<html><body><h1>502 Bad Gateway</h1></body></html>")),
    };
    if let Some((status, xml)) = refusal {
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        conn.write_all(resp.as_bytes()).await?;
        return conn.shutdown().await;
    }
    // Forward with Connection: close, read the answer to its end, and pass it back the same way.
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&with_connection_close(&head_text)).await?;
    up.write_all(&body).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    let split = find(&answer, b"\r\n\r\n").map(|i| i + 4).unwrap_or(answer.len());
    let answer_head = String::from_utf8_lossy(&answer[..split]).into_owned();
    conn.write_all(&with_connection_close(&answer_head)).await?;
    conn.write_all(&answer[split..]).await?;
    conn.shutdown().await
}

/// Checks the SigV4 signature of a request given as its head text and body.
fn signature_check(head: &str, body: &[u8], secret: &str) -> Result<(), String> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    sigv4_verify::verify(&Signed { method, target, headers, body }, secret)
}

/// Reads one request: the head (through the blank line) and a Content-Length body.
async fn read_message(conn: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in the request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = buf[..head_end].to_vec();
    let len: usize = header(&String::from_utf8_lossy(&head), "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The head with any Connection header replaced by `Connection: close`.
fn with_connection_close(head: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Asserts that `calls` (of one client) never exceed `rps`: at most `rps * w + 1` calls
/// within any `w` seconds, as seen here. The `+ 1` allows one interval of delay between the
/// client's limiter and this proxy (a loaded test machine delays single requests by tens of
/// milliseconds); a client without a limiter fails it at once.
pub fn assert_rate(calls: &[&Call], rps: f64, who: &str) {
    let mut at: Vec<Instant> = calls.iter().map(|c| c.at).collect();
    at.sort();
    for i in 0..at.len() {
        for j in i + 1..at.len() {
            let w = (at[j] - at[i]).as_secs_f64();
            assert!(
                (j - i) as f64 <= rps * w + 1.0,
                "{who}: {} calls within {w:.3}s exceed {rps} per second",
                j - i + 1
            );
        }
    }
}
