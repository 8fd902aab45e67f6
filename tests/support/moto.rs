//! moto, the AWS emulator from scripts/install-deps.sh, run as a server for one test and
//! killed when it is dropped. Shared by the discovery (EC2, Auto Scaling) and S3 tests.

use crate::support::{free_port, tool, wait_for_tcp, ChildGuard};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct MotoServer {
    _child: ChildGuard,
    pub addr: SocketAddr,
}

impl MotoServer {
    /// Starts moto_server on a free port of `ip` and waits until it listens.
    pub fn start(ip: IpAddr) -> MotoServer {
        let bin = tool(
            "moto_server (pip moto[server])",
            "ETCDADM_TEST_MOTO_SERVER",
            &["/opt/etcdadm-test/moto/bin/moto_server"],
        );
        let port = free_port(ip);
        let child = Command::new(bin)
            .args(["-H", &ip.to_string(), "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut child = ChildGuard(child);
        let addr = SocketAddr::new(ip, port);
        wait_for_tcp(addr, Duration::from_secs(20), &mut child.0, "moto_server");
        MotoServer { _child: child, addr }
    }

    /// `http://ip:port` (IPv6 bracketed).
    #[allow(dead_code)] // not every test binary that includes this module calls it
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}
