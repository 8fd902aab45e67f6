//! The cluster CA and the member certificates (ECDSA P-256, issued with rcgen).
//!
//! An existing certificate is kept only while it still fits: issued by the current CA, for
//! every name the member needs, valid beyond the renewal window, and matching its key.
//! Otherwise it is issued again. Keys are written 0600, certificates 0644.

use crate::fsutil::{write_atomic, MODE_PRIVATE, MODE_PUBLIC};
use crate::net::Host;
use crate::pair_files::{write_pair, PairFile};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};
use tracing::info;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How long member certificates live, and how close to expiry they are issued again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetime {
    pub days: u32,
    pub renew_within_days: u32,
}

impl Lifetime {
    pub fn of(c: &crate::config::Config) -> Lifetime {
        Lifetime { days: c.cert_validity_days, renew_within_days: c.cert_renew_within_days }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("no cluster CA on this machine: {cert} and {key} are missing. Copy both files from a member of the cluster (e.g. {cert} and {key} on the machine that ran `etcdadm init`) to the same paths here, key mode 0600, then run this again")]
    MissingCa { cert: String, key: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Why an existing certificate is re-issued rather than kept (logged, never fatal).
#[derive(Debug, thiserror::Error)]
enum Reissue {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error("not a PEM certificate")]
    NotPem,
    #[error(transparent)]
    Parse(#[from] x509_parser::nom::Err<x509_parser::error::X509Error>),
    #[error("not issued by the current CA")]
    OtherCa,
    #[error("key unusable: {0}")]
    Key(rcgen::Error),
    #[error("key does not match the certificate")]
    KeyMismatch,
    #[error("expires {0}")]
    Expires(OffsetDateTime),
    #[error("does not cover {0}")]
    MissingSan(Host),
    #[error("different common name")]
    CommonName,
    #[error("different key usage")]
    KeyUsage,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.display().to_string(), cause: source }
}

fn invalid(path: &Path, message: impl Into<String>) -> PkiError {
    PkiError::Invalid { path: path.display().to_string(), message: message.into() }
}

/// The loaded CA: its certificate (DER) and an issuer for signing.
pub struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, PartialEq)]
pub struct CertSpec {
    pub common_name: String,
    pub organization: Option<String>,
    pub sans: Vec<Host>,
    pub server_auth: bool,
    pub client_auth: bool,
}

impl Ca {
    /// Loads the cluster CA that must be there already (join, renewal, bootstrap); when
    /// neither file exists the error says which files to copy from a member.
    pub fn load_existing(cert: &Path, key: &Path) -> Result<Ca, PkiError> {
        Self::load(cert, key)?.ok_or_else(|| PkiError::MissingCa {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
        })
    }

    /// Loads the CA from `cert` and `key`. Returns `Ok(None)` when neither exists.
    pub fn load(cert: &Path, key: &Path) -> Result<Option<Ca>, PkiError> {
        match (cert.exists(), key.exists()) {
            (false, false) => return Ok(None),
            (true, false) => {
                return Err(invalid(
                    key,
                    format!("missing, but {} exists; copy the CA key beside it", cert.display()),
                ))
            }
            (false, true) => {
                return Err(invalid(
                    cert,
                    format!(
                        "missing, but {} exists; copy the CA certificate beside it",
                        key.display()
                    ),
                ))
            }
            (true, true) => {}
        }
        let cert_pem = std::fs::read_to_string(cert).map_err(io_err(cert))?;
        let key_pem = std::fs::read_to_string(key).map_err(io_err(key))?;
        let key_pair = KeyPair::from_pem(&key_pem)
            .map_err(|e| invalid(key, format!("not a usable private key: {e}")))?;
        let der = pem_to_der(&cert_pem).ok_or_else(|| invalid(cert, "not a PEM certificate"))?;
        let (_, x509) = X509Certificate::from_der(&der)
            .map_err(|e| invalid(cert, format!("cannot parse: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(cert, "is not a CA certificate (basicConstraints CA:FALSE)"));
        }
        if x509.public_key().raw != key_pair.subject_public_key_info().as_slice() {
            return Err(invalid(
                key,
                format!("does not belong to the CA certificate {}", cert.display()),
            ));
        }
        if !x509.validity().is_valid() {
            return Err(invalid(
                cert,
                "the CA certificate is expired or not yet valid; a new CA means a new cluster",
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key_pair)
            .map_err(|e| invalid(cert, format!("cannot use as issuer: {e}")))?;
        Ok(Some(Ca { der, issuer }))
    }

    /// Loads the CA, or creates one when neither file exists (only `init` may do this).
    pub fn load_or_create(cert: &Path, key: &Path, validity_days: u32) -> Result<Ca, PkiError> {
        if let Some(ca) = Ca::load(cert, key)? {
            info!(cert = %cert.display(), "using existing CA");
            return Ok(ca);
        }
        let key_pair = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("etcd-ca", None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, validity_days);
        let cert_der = params.self_signed(&key_pair)?;
        write_atomic(key, key_pair.serialize_pem().as_bytes(), MODE_PRIVATE)
            .map_err(io_err(key))?;
        write_atomic(cert, cert_der.pem().as_bytes(), MODE_PUBLIC).map_err(io_err(cert))?;
        info!(cert = %cert.display(), "created a new cluster CA");
        Ca::load(cert, key)?.ok_or_else(|| invalid(cert, "vanished right after it was written"))
    }

    /// Makes sure `cert`/`key` hold a certificate for `spec` from this CA, valid beyond the
    /// renewal window; returns whether a new one was issued.
    pub fn ensure_cert(
        &self,
        spec: &CertSpec,
        cert: &Path,
        key: &Path,
        life: Lifetime,
    ) -> Result<bool, PkiError> {
        match self.check(spec, cert, key, Duration::days(i64::from(life.renew_within_days))) {
            Ok(()) => return Ok(false),
            Err(reason) if cert.exists() => {
                info!(cert = %cert.display(), %reason, "re-issuing certificate")
            }
            Err(_) => {}
        }
        self.issue(spec, cert, key, life.days)?;
        Ok(true)
    }

    /// Whether `cert`/`key` would be issued again by `ensure_cert` (nothing is written).
    pub fn is_due(&self, spec: &CertSpec, cert: &Path, key: &Path, life: Lifetime) -> bool {
        self.check(spec, cert, key, Duration::days(i64::from(life.renew_within_days))).is_err()
    }

    /// Issues a new key and certificate for `spec`; both replace the old ones together
    /// (`pair_files`).
    pub fn issue(
        &self,
        spec: &CertSpec,
        cert: &Path,
        key: &Path,
        validity_days: u32,
    ) -> Result<(), PkiError> {
        let key_pair = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&spec.common_name, spec.organization.as_deref());
        params.subject_alt_names = spec.sans.iter().map(san).collect::<Result<_, _>>()?;
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if spec.server_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity_days);
        let issued = params.signed_by(&key_pair, &self.issuer)?;
        let (key_pem, cert_pem) = (key_pair.serialize_pem(), issued.pem());
        let files = [
            PairFile { path: cert, contents: cert_pem.as_bytes(), mode: MODE_PUBLIC },
            PairFile { path: key, contents: key_pem.as_bytes(), mode: MODE_PRIVATE },
        ];
        write_pair(&files, &mut |_| {}).map_err(io_err(cert))?;
        info!(cert = %cert.display(), cn = %spec.common_name, days = validity_days, "issued certificate");
        Ok(())
    }

    /// Why the existing certificate cannot be kept, if it cannot.
    fn check(
        &self,
        spec: &CertSpec,
        cert: &Path,
        key: &Path,
        renew_within: Duration,
    ) -> Result<(), Reissue> {
        let pem = std::fs::read_to_string(cert)?;
        let key_pem = std::fs::read_to_string(key)?;
        let der = pem_to_der(&pem).ok_or(Reissue::NotPem)?;
        let (_, x) = X509Certificate::from_der(&der)?;
        let (_, ca) = X509Certificate::from_der(&self.der)?;
        x.verify_signature(Some(ca.public_key())).map_err(|_| Reissue::OtherCa)?;
        let key_pair = KeyPair::from_pem(&key_pem).map_err(Reissue::Key)?;
        if x.public_key().raw != key_pair.subject_public_key_info().as_slice() {
            return Err(Reissue::KeyMismatch);
        }
        let not_after = x.validity().not_after.to_datetime();
        if !x.validity().is_valid() || not_after - OffsetDateTime::now_utc() < renew_within {
            return Err(Reissue::Expires(not_after));
        }
        let present = cert_sans(&x);
        if let Some(missing) = spec.sans.iter().find(|h| !present.contains(h)) {
            return Err(Reissue::MissingSan(missing.clone()));
        }
        let cn = x.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
        if cn != Some(spec.common_name.as_str()) {
            return Err(Reissue::CommonName);
        }
        let eku = x
            .extended_key_usage()
            .ok()
            .flatten()
            .map(|e| (e.value.server_auth, e.value.client_auth));
        if eku != Some((spec.server_auth, spec.client_auth)) {
            return Err(Reissue::KeyUsage);
        }
        Ok(())
    }
}

/// A certificate's common name and expiry, for `certs check`.
pub fn describe(cert: &Path) -> Result<(String, OffsetDateTime), PkiError> {
    let pem = std::fs::read_to_string(cert).map_err(io_err(cert))?;
    let der = pem_to_der(&pem).ok_or_else(|| invalid(cert, "not a PEM certificate"))?;
    let (_, x) = X509Certificate::from_der(&der).map_err(|e| invalid(cert, e.to_string()))?;
    let cn = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((cn, x.validity().not_after.to_datetime()))
}

fn cert_sans(x: &X509Certificate<'_>) -> Vec<Host> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = x.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.extend(Host::parse(d).ok()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => out
                        .push(Host::Ip(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()))),
                    16 => out
                        .push(Host::Ip(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()))),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

fn san(h: &Host) -> Result<SanType, rcgen::Error> {
    Ok(match h {
        Host::Ip(ip) => SanType::IpAddress(*ip),
        Host::Name(n) => SanType::DnsName(n.clone().try_into()?),
    })
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    // Tolerate small clock skew between members.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (p.label == "CERTIFICATE").then_some(p.contents)
}

/// The client certificate etcdctl and etcdadm use. Named after the machine's address, not the
/// member name, so it stays valid while bootstrap is still learning the name.
pub fn client_cert(m: &crate::member::LocalMember) -> (CertSpec, PathBuf, PathBuf) {
    (
        CertSpec {
            common_name: format!("etcdctl@{}", m.advertise),
            organization: None,
            sans: vec![],
            server_auth: false,
            client_auth: true,
        },
        m.pki.client_cert.clone(),
        m.pki.client_key.clone(),
    )
}

/// The certificates one member needs, with their files.
pub fn member_certs(
    m: &crate::member::LocalMember,
    c: &crate::config::Config,
) -> Vec<(CertSpec, PathBuf, PathBuf)> {
    let p = &m.pki;
    let mut certs = vec![
        (
            CertSpec {
                common_name: m.name.clone(),
                organization: None,
                sans: m.server_sans(c),
                server_auth: true,
                client_auth: true,
            },
            p.server_cert.clone(),
            p.server_key.clone(),
        ),
        (
            CertSpec {
                common_name: m.name.clone(),
                organization: None,
                sans: m.peer_sans(),
                server_auth: true,
                client_auth: true,
            },
            p.peer_cert.clone(),
            p.peer_key.clone(),
        ),
        client_cert(m),
    ];
    if c.apiserver_client_cert {
        certs.push((
            CertSpec {
                common_name: "kube-apiserver-etcd-client".into(),
                organization: Some("system:masters".into()),
                sans: vec![],
                server_auth: false,
                client_auth: true,
            },
            p.apiserver_cert.clone(),
            p.apiserver_key.clone(),
        ));
    }
    certs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn life(days: u32) -> Lifetime {
        Lifetime { days, renew_within_days: 30 }
    }

    fn spec(sans: &[&str]) -> CertSpec {
        CertSpec {
            common_name: "m1".into(),
            organization: None,
            sans: sans.iter().map(|s| Host::parse(s).unwrap()).collect(),
            server_auth: true,
            client_auth: true,
        }
    }

    #[test]
    fn ca_created_once_and_certs_reused_while_they_fit() {
        let d = tempfile::tempdir().unwrap();
        let (cc, ck) = (d.path().join("ca.crt"), d.path().join("ca.key"));
        let ca = Ca::load_or_create(&cc, &ck, 3650).unwrap();
        assert_eq!(std::fs::metadata(&ck).unwrap().permissions().mode() & 0o777, 0o600);
        let ca_pem = std::fs::read(&cc).unwrap();
        let again = Ca::load_or_create(&cc, &ck, 3650).unwrap();
        assert_eq!(std::fs::read(&cc).unwrap(), ca_pem, "existing CA must be kept");

        let (sc, sk) = (d.path().join("server.crt"), d.path().join("server.key"));
        let s = spec(&["10.0.0.1", "fd00::1", "etcd-1.example.com", "localhost"]);
        assert!(ca.ensure_cert(&s, &sc, &sk, life(365)).unwrap());
        assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&sc).unwrap().permissions().mode() & 0o777, 0o644);
        assert!(!again.ensure_cert(&s, &sc, &sk, life(365)).unwrap(), "a fitting cert is reused");
        // A subset of names still fits; a new name forces re-issue.
        assert!(!ca.ensure_cert(&spec(&["10.0.0.1"]), &sc, &sk, life(365)).unwrap());
        assert!(ca.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());
        // Expiring within the renewal window forces re-issue.
        std::fs::remove_file(&sc).unwrap();
        assert!(ca.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(10)).unwrap());
        assert!(ca.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());
        assert!(!ca.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());

        // A cert from another CA is replaced.
        let other = tempfile::tempdir().unwrap();
        let ca2 =
            Ca::load_or_create(&other.path().join("ca.crt"), &other.path().join("ca.key"), 3650)
                .unwrap();
        assert!(ca2.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());
        assert!(!ca2.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());
        assert!(ca.ensure_cert(&spec(&["10.0.0.2"]), &sc, &sk, life(365)).unwrap());
    }

    #[test]
    fn sans_are_written_as_ip_and_dns() {
        let d = tempfile::tempdir().unwrap();
        let ca =
            Ca::load_or_create(&d.path().join("ca.crt"), &d.path().join("ca.key"), 3650).unwrap();
        let (c, k) = (d.path().join("s.crt"), d.path().join("s.key"));
        ca.ensure_cert(&spec(&["fd00::1", "10.1.1.1", "node.example"]), &c, &k, life(365)).unwrap();
        let der = pem_to_der(&std::fs::read_to_string(&c).unwrap()).unwrap();
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let sans = cert_sans(&x);
        assert!(sans.contains(&Host::Ip("fd00::1".parse().unwrap())));
        assert!(sans.contains(&Host::Ip("10.1.1.1".parse().unwrap())));
        assert!(sans.contains(&Host::Name("node.example".into())));
        let (cn, not_after) = describe(&c).unwrap();
        assert_eq!(cn, "m1");
        assert!(not_after > OffsetDateTime::now_utc() + Duration::days(364));
    }

    #[test]
    fn mismatched_or_partial_ca_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (cc, ck) = (d.path().join("ca.crt"), d.path().join("ca.key"));
        assert!(Ca::load(&cc, &ck).unwrap().is_none());
        Ca::load_or_create(&cc, &ck, 3650).unwrap();
        std::fs::remove_file(&ck).unwrap();
        assert!(Ca::load(&cc, &ck).err().unwrap().to_string().contains("ca.key"));
        std::fs::write(&ck, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        assert!(Ca::load(&cc, &ck).err().unwrap().to_string().contains("does not belong"));
    }
}
