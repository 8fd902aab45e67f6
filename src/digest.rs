//! SHA-256 helpers shared by the release verification and file comparison.

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::path::Path;

pub type Sha256Digest = [u8; 32];

/// Hashes a file in one streaming pass.
pub fn sha256_file(path: &Path) -> io::Result<Sha256Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Parses a 64-character hex digest.
pub fn parse_hex(s: &str) -> Option<Sha256Digest> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

pub fn to_hex(d: &Sha256Digest) -> String {
    hex::encode(d)
}
