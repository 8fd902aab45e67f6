//! Authentic backups: each snapshot `etcdadm backup` uploads carries an HMAC-SHA256 over its
//! object name and SHA-256 (`x-amz-meta-etcdadm-mac`), keyed with a key derived from the
//! cluster CA's private key, which every member holds and whoever can only write to the
//! bucket does not. Restore checks it before it trusts the object or its name's time stamp.

use super::S3Error;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;

/// The user-defined metadata key holding the snapshot's MAC (lower-case hex).
pub const MAC_META: &str = "x-amz-meta-etcdadm-mac";

/// HKDF salt and info (RFC 5869): the key is for this purpose only, never the CA key itself.
const HKDF_SALT: &[u8] = b"etcdadm backup MAC";
const HKDF_INFO: &[u8] = b"etcdadm snapshot object name and sha256, v1";
/// Prefixed to every MAC'd message, so that a MAC is never valid for another format.
const MESSAGE_TAG: &[u8] = b"etcdadm-snapshot-v1";

/// The MAC key of a cluster's backups.
#[derive(Clone)]
pub struct BackupKey([u8; 32]);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac
}

impl BackupKey {
    /// HKDF-SHA256 over the CA private key (PKCS#8 DER), one 32-byte block.
    pub fn from_ca_key_der(der: &[u8]) -> BackupKey {
        let prk = hmac(HKDF_SALT, &[der]).finalize().into_bytes();
        let okm = hmac(&prk, &[HKDF_INFO, &[1u8]]).finalize().into_bytes();
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm);
        BackupKey(key)
    }

    /// From the cluster CA key file (PEM) at `path`, `certs-dir/ca.key`. `purpose` says what
    /// needs it ("sign the upload", "verify the backups"), for the error.
    pub fn from_ca_key_file(path: &Path, purpose: &str) -> Result<BackupKey, S3Error> {
        let err = |detail: String| S3Error::BackupKey { path: path.into(), detail };
        let pem = match std::fs::read_to_string(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(err(format!(
                    "missing; the cluster CA key is needed to {purpose}: snapshots in S3 are \
                     signed with a key derived from it. Copy ca.crt and ca.key of the cluster \
                     that made the backups (from any member, or from where `etcdadm ca create` \
                     made them) into certs-dir and run again"
                )))
            }
            Err(e) => return Err(err(format!("cannot read it to {purpose}: {e}"))),
        };
        let pair = rcgen::KeyPair::from_pem(&pem)
            .map_err(|e| err(format!("not a usable private key ({e}); cannot {purpose}")))?;
        Ok(BackupKey::from_ca_key_der(&pair.serialize_der()))
    }

    /// The MAC (hex) of the snapshot `name` (the object's last path segment) with SHA-256
    /// `sha256_hex`.
    pub fn sign(&self, name: &str, sha256_hex: &str) -> String {
        hex::encode(self.mac(name, sha256_hex).finalize().into_bytes())
    }

    /// Whether `mac_hex` is the MAC of `name` and `sha256_hex` (compared in constant time).
    pub fn verify(&self, name: &str, sha256_hex: &str, mac_hex: &str) -> bool {
        match hex::decode(mac_hex.trim()) {
            Ok(tag) => self.mac(name, sha256_hex).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }

    fn mac(&self, name: &str, sha256_hex: &str) -> Hmac<Sha256> {
        let sha = sha256_hex.trim().to_ascii_lowercase();
        hmac(&self.0, &[MESSAGE_TAG, &[0], name.as_bytes(), &[0], sha.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_binds_name_hash_and_key() {
        let k = BackupKey::from_ca_key_der(b"ca key one");
        let sha = "ab".repeat(32);
        let mac = k.sign("m1-20260101T000000.000Z.db", &sha);
        assert_eq!(mac.len(), 64);
        assert!(k.verify("m1-20260101T000000.000Z.db", &sha, &mac));
        assert!(k.verify("m1-20260101T000000.000Z.db", &sha.to_uppercase(), &mac.to_uppercase()));
        assert!(!k.verify("m1-99991231T235959.000Z.db", &sha, &mac), "another name");
        assert!(!k.verify("m1-20260101T000000.000Z.db", &"cd".repeat(32), &mac), "another hash");
        let other = BackupKey::from_ca_key_der(b"ca key two");
        assert!(!other.verify("m1-20260101T000000.000Z.db", &sha, &mac), "another CA");
        assert!(!k.verify("m1-20260101T000000.000Z.db", &sha, "not hex"));
        assert!(!k.verify("m1-20260101T000000.000Z.db", &sha, ""));
        assert_eq!(format!("{k:?}"), "BackupKey(..)");
    }

    #[test]
    fn the_key_comes_from_the_ca_key_file_or_the_error_says_how_to_provide_it() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ca.key");
        let e = BackupKey::from_ca_key_file(&path, "verify the backups").unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("Copy ca.crt and ca.key"),
            "{e}"
        );
        let pair = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&path, pair.serialize_pem()).unwrap();
        let k = BackupKey::from_ca_key_file(&path, "x").unwrap();
        assert_eq!(k.0, BackupKey::from_ca_key_der(&pair.serialize_der()).0);
        std::fs::write(&path, "garbage").unwrap();
        assert!(BackupKey::from_ca_key_file(&path, "x").is_err());
    }
}
