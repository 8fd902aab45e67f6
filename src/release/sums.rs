//! Parser for SHA256SUMS files as `sha256sum` writes them: `HEX  NAME` or `HEX *NAME`.

use crate::digest::{parse_hex, Sha256Digest};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SumsError {
    #[error("line {line}: expected `<64 hex digits>  <file name>`, found {text:?}")]
    Malformed { line: usize, text: String },
    #[error("line {line}: {name} is listed twice with different digests")]
    Conflict { line: usize, name: String },
}

/// The digests of a SHA256SUMS file, in file order.
#[derive(Debug, Default)]
pub struct Sums(Vec<(String, Sha256Digest)>);

impl Sums {
    pub fn parse(text: &str) -> Result<Sums, SumsError> {
        let mut entries: Vec<(String, Sha256Digest)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || SumsError::Malformed { line: i + 1, text: truncate(line) };
            let (hex, rest) = line.split_once(char::is_whitespace).ok_or_else(malformed)?;
            let digest = parse_hex(hex).filter(|_| hex.len() == 64).ok_or_else(malformed)?;
            // "HEX *NAME" marks binary mode; in "HEX  *NAME" the name would start with '*',
            // which no release file does: refused rather than guessed
            let name =
                rest.strip_prefix('*').unwrap_or_else(|| rest.trim_start_matches([' ', '\t']));
            if name.starts_with('*') {
                return Err(malformed());
            }
            let name = name.strip_prefix("./").unwrap_or(name);
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(malformed());
            }
            match entries.iter().find(|(n, _)| n == name) {
                Some((_, d)) if *d != digest => {
                    return Err(SumsError::Conflict { line: i + 1, name: name.into() })
                }
                Some(_) => {}
                None => entries.push((name.to_string(), digest)),
            }
        }
        Ok(Sums(entries))
    }

    pub fn get(&self, file_name: &str) -> Option<&Sha256Digest> {
        self.0.iter().find(|(n, _)| n == file_name).map(|(_, d)| d)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "2a4b4ba4a1d5d3d8e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8";

    #[test]
    fn parses_text_and_binary_modes() {
        let text = format!("{A}  etcd-v3.5.30-linux-amd64.tar.gz\n\n{} *etcd-v3.5.30-linux-arm64.tar.gz\r\n{}  ./x.zip\n",
            "b".repeat(64), "C".repeat(64));
        let s = Sums::parse(&text).unwrap();
        assert_eq!(hex::encode(s.get("etcd-v3.5.30-linux-amd64.tar.gz").unwrap()), A);
        assert_eq!(s.get("etcd-v3.5.30-linux-arm64.tar.gz").unwrap(), &[0xbb; 32]);
        assert_eq!(s.get("x.zip").unwrap(), &[0xcc; 32]);
        // two spaces then '*': a name starting with '*', refused
        let star = format!("{A}  *etcd.tar.gz\n");
        assert!(matches!(Sums::parse(&star), Err(SumsError::Malformed { line: 1, .. })));
        assert!(s.get("missing").is_none());
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "abc  file",
            A,
            &format!("{A}x  file"),
            &format!("{}  file", "g".repeat(64)),
            &format!("{A}  two words"),
        ] {
            assert!(matches!(Sums::parse(bad), Err(SumsError::Malformed { line: 1, .. })), "{bad}");
        }
    }

    #[test]
    fn rejects_conflicting_duplicates() {
        let text = format!("{A}  f\n{}  f\n", "b".repeat(64));
        assert_eq!(
            Sums::parse(&text).unwrap_err(),
            SumsError::Conflict { line: 2, name: "f".into() }
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,400}") {
            let _ = Sums::parse(&s);
        }

        #[test]
        fn roundtrips_sha256sum_output(names in proptest::collection::vec("[a-z0-9._-]{1,30}", 1..5), d in any::<[u8; 32]>()) {
            let text: String = names.iter().map(|n| format!("{}  {n}\n", hex::encode(d))).collect();
            let s = Sums::parse(&text).unwrap();
            for n in &names {
                let lookup = n.strip_prefix("./").unwrap_or(n);
                prop_assert_eq!(s.get(lookup), Some(&d));
            }
        }
    }
}
