//! moto, the AWS emulator from scripts/install-deps.sh, run as a server for one test and
//! killed when it is dropped. Shared by the discovery (EC2, Auto Scaling) and S3 tests.

use crate::support::{free_port, listening, tool, ChildGuard};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How many ports `start` tries.
const TRIES: usize = 5;

pub struct MotoServer {
    _child: ChildGuard,
    /// Its standard error (each request is logged there, so not a pipe nobody reads).
    _stderr: tempfile::NamedTempFile,
    pub addr: SocketAddr,
}

impl MotoServer {
    /// Starts moto_server on a free port of `ip` and waits until it listens. `free_port`'s
    /// port is free only until moto binds it, and the other tests of this binary start
    /// servers at the same time: when one took it first, moto exits saying "Address already
    /// in use", and another port is tried. Any other early exit fails the test.
    pub fn start(ip: IpAddr) -> MotoServer {
        let bin = tool(
            "moto_server (pip moto[server])",
            "ETCDADM_TEST_MOTO_SERVER",
            &["/opt/etcdadm-test/moto/bin/moto_server"],
        );
        for _ in 0..TRIES {
            let port = free_port(ip);
            let stderr = tempfile::NamedTempFile::new().expect("a file for moto_server's stderr");
            let child = Command::new(&bin)
                .args(["-H", &ip.to_string(), "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.reopen().expect("open moto_server's stderr file"))
                .spawn()
                .expect("start moto_server");
            let mut child = ChildGuard(child);
            let addr = SocketAddr::new(ip, port);
            match listening(addr, Duration::from_secs(20), &mut child.0, "moto_server") {
                Ok(()) => return MotoServer { _child: child, _stderr: stderr, addr },
                Err(status) => {
                    let said = std::fs::read_to_string(stderr.path()).unwrap_or_default();
                    assert!(
                        said.contains("Address already in use"),
                        "moto_server exited before listening on {addr}: {status}: {said}"
                    );
                }
            }
        }
        panic!("moto_server found its port taken by another program {TRIES} times on {ip}");
    }

    /// `http://ip:port` (IPv6 bracketed).
    #[allow(dead_code)] // not every test binary that includes this module calls it
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}
