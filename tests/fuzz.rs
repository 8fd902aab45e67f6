//! Fuzzing the parsers through the public API with proptest: configuration loading (main
//! file, drop-ins, flag and metadata layers), SHA256SUMS, discovery settings (static
//! discovery run for real; dns, aws-asg, aws-tags, gce-mig and gce-labels only validated, no network), and the
//! bootstrap metadata layer. Garbage in, an `Err` (or a value) out, never a panic; and what is
//! accepted or refused keeps a few properties (below, per test).
//!
//! The committed corpus in `tests/fuzz-corpus/` (see its README) is replayed first, with its
//! `ok-`/`err-` expectations; the fuzzers then mutate it and generate inputs of their own.
//! `ETCDADM_FUZZ_SCALE=N` runs N times as many cases (default 1: the whole file in well
//! under 20 s). A failure prints the minimal input; add it to the corpus once understood.

use etcdadm::config::{self, Config, ConfigSources};
use etcdadm::discovery::{self, DiscoveryConfig, DiscoveryContext};
use etcdadm::metadata::InstanceMetadata;
use etcdadm::release::sums::{Sums, SumsError};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

// --- corpus ---------------------------------------------------------------------------------

/// The inputs of one corpus folder, by file name, in name order.
fn corpus(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(folder);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus folder {}", dir.display());
    out
}

fn seeds(folder: &str) -> Arc<Vec<Vec<u8>>> {
    Arc::new(corpus(folder).into_iter().map(|(_, b)| b).collect())
}

/// What a corpus file's name says about its input: `ok-*` is accepted, `err-*` refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Err,
}

fn expectation(name: &str) -> Option<Expect> {
    if name.starts_with("ok-") {
        Some(Expect::Ok)
    } else if name.starts_with("err-") {
        Some(Expect::Err)
    } else {
        None
    }
}

/// Replays every input of `folder` through `run`, checking the expectations; reports every
/// input that does not meet its expectation (a panic counts as a failure, and so does a file
/// whose name states no expected outcome) at once.
fn replay(folder: &str, run: impl Fn(&[u8]) -> Result<(), String>) {
    let mut failures = Vec::new();
    for (name, input) in corpus(folder) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&input)));
        match (outcome, expectation(&name)) {
            (Err(_), _) => failures.push(format!("{folder}/{name}: panicked")),
            (Ok(r), None) => failures.push(format!(
                "{folder}/{name}: no expected outcome in its name (ok-* or err-*); it was {}",
                match r {
                    Ok(()) => "accepted".to_string(),
                    Err(e) => format!("refused: {e}"),
                }
            )),
            (Ok(Err(e)), Some(Expect::Ok)) => {
                failures.push(format!("{folder}/{name}: refused: {e}"))
            }
            (Ok(Ok(())), Some(Expect::Err)) => failures.push(format!("{folder}/{name}: accepted")),
            (Ok(_), Some(_)) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "corpus inputs that fail their expectation:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn corpus_file_names_state_the_expected_outcome() {
    assert_eq!(expectation("ok-empty.yaml"), Some(Expect::Ok));
    assert_eq!(expectation("err-bom.txt"), Some(Expect::Err));
    assert_eq!(expectation("bom.yaml"), None);
    for folder in ["config", "sums", "discovery", "metadata"] {
        let unnamed: Vec<String> = corpus(folder)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| expectation(n).is_none())
            .collect();
        assert!(unnamed.is_empty(), "{folder}: files without ok-/err- prefix: {unnamed:?}");
    }
}

// --- mutation -------------------------------------------------------------------------------

/// One edit of a seed input; positions are taken modulo the input's length.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Replace(usize, u8),
    Splice(usize, usize, usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        1 => (at, vec(any::<u8>(), 1..8)).prop_map(|(a, b)| Edit::Insert(a, b)),
        3 => (at, any::<usize>()).prop_map(|(a, t)| Edit::Token(a, t)),
        1 => (at, 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        1 => (at, 1usize..40).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        1 => (at, any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        1 => (at, any::<usize>(), any::<usize>(), 1usize..80).prop_map(|(a, f, s, n)| Edit::Splice(a, f, s, n)),
        1 => at.prop_map(Edit::Truncate),
    ]
}

fn apply(seeds: &[Vec<u8>], seed: usize, edits: &[Edit], tokens: &[&str]) -> Vec<u8> {
    let mut d = seeds[seed % seeds.len()].clone();
    for e in edits {
        let pos = |a: usize, d: &Vec<u8>| a % (d.len() + 1);
        match e {
            Edit::Insert(a, b) => {
                let p = pos(*a, &d);
                d.splice(p..p, b.iter().copied());
            }
            Edit::Token(a, t) => {
                let p = pos(*a, &d);
                d.splice(p..p, tokens[t % tokens.len()].bytes());
            }
            Edit::Delete(a, n) => {
                let p = pos(*a, &d);
                let end = (p + n).min(d.len());
                d.drain(p..end);
            }
            Edit::Duplicate(a, n) => {
                let p = pos(*a, &d);
                let end = (p + n).min(d.len());
                let copy: Vec<u8> = d[p..end].to_vec();
                d.splice(p..p, copy);
            }
            Edit::Replace(a, b) => {
                if !d.is_empty() {
                    let p = a % d.len();
                    d[p] = *b;
                }
            }
            Edit::Splice(a, from, start, n) => {
                let other = &seeds[from % seeds.len()];
                let s = start % (other.len() + 1);
                let piece = &other[s..(s + n).min(other.len())];
                let p = pos(*a, &d);
                d.splice(p..p, piece.iter().copied());
            }
            Edit::Truncate(a) => {
                let p = pos(*a, &d);
                d.truncate(p);
            }
        }
    }
    d
}

/// A seed of `seeds`, edited 0 to 6 times.
fn mutated(
    seeds: Arc<Vec<Vec<u8>>>,
    tokens: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    (any::<usize>(), vec(edit(), 0..6))
        .prop_map(move |(seed, edits)| apply(&seeds, seed, &edits, tokens))
}

const YAML_TOKENS: &[&str] = &[
    ": ",
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!custom ",
    "'",
    "\"",
    "# ",
    "---\n",
    "...\n",
    "\t",
    "~",
    "null",
    "true",
    "-1",
    "0x10",
    "0o17",
    "1e400",
    ".nan",
    "-.inf",
    "18446744073709551616",
    "3.5",
    "::",
    "[fd00::1]",
    "10.0.0.300",
    "=",
    "\\u0000",
    "\u{feff}",
    "é",
    "\u{2028}",
    "\u{85}",
    "? ",
    "|\n  ",
    ">-\n  ",
    "%YAML 1.2\n---\n",
    "bootstrap:\n  ",
    "discovery:\n    ",
    "metadata: {provider: ec2}\n",
    "provider: static\n",
    "provider: dns\n",
    "peers: [",
    "name: ",
    "client-port: ",
    "data-dir: /",
    "release-url: file:///",
    "advertise-address: ",
    "cluster-size: ",
];

const SUMS_TOKENS: &[&str] = &[
    "  ",
    " *",
    " ./",
    "\t",
    "\r\n",
    "\n",
    "# ",
    "a",
    "F",
    "0",
    "g",
    "é",
    "\u{2003}",
    "\0",
    "a4d9f87c021e29289f8b6b05202128dff17a756aaab31a263b9c13f8bd45002a",
    "etcd-v3.5.30-linux-amd64.tar.gz",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn config(cases: u32) -> ProptestConfig {
    let scale = std::env::var("ETCDADM_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    ProptestConfig { cases: cases * scale, failure_persistence: None, ..ProptestConfig::default() }
}

// --- configuration --------------------------------------------------------------------------

/// Writes `main` as config.yaml (with its `#### dropin NAME` sections as drop-ins) and loads it.
fn load_files(main: &[u8]) -> Result<Config, config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut name = PathBuf::from("config.yaml");
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![(name.clone(), Vec::new())];
    for line in main.split_inclusive(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"#### dropin ") {
            let file = String::from_utf8_lossy(rest).trim().replace(['/', '\0'], "_");
            name = Path::new("config.d").join(if file.is_empty() {
                "_.yaml".to_string()
            } else {
                file
            });
            files.push((name.clone(), Vec::new()));
        } else {
            files.last_mut().unwrap().1.extend_from_slice(line);
        }
    }
    std::fs::create_dir(d.join("config.d")).unwrap();
    for (rel, bytes) in &files {
        std::fs::write(d.join(rel), bytes).unwrap();
    }
    config::load(&ConfigSources {
        file: d.join("config.yaml"),
        file_explicit: true,
        ..Default::default()
    })
}

/// The configuration's keys, as `config view` would show them.
fn config_keys() -> (Vec<String>, Vec<String>) {
    let v = serde_yaml_ng::to_value(Config::default()).unwrap();
    let keys = |m: &Value| {
        m.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    (keys(&v), keys(&v["bootstrap"]))
}

/// Leaves that look like configuration values, and some that do not.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        (0u64..70000).prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Value::Number(f.into())),
        prop_oneof![
            Just("3.5.30".to_string()),
            Just("/srv/etcd".to_string()),
            Just("relative".to_string()),
            Just("file:///srv/mirror".to_string()),
            Just("https://mirror.example/etcd".to_string()),
            Just("10.0.0.1".to_string()),
            Just("fd00::1".to_string()),
            Just("::".to_string()),
            Just("static".to_string()),
            Just("dns".to_string()),
            Just("aws-asg".to_string()),
            Just("aws-tags".to_string()),
            Just("gce-mig".to_string()),
            Just("gce-labels".to_string()),
            Just("ec2".to_string()),
            Just("amd64".to_string()),
            "[a-z0-9.:=/_-]{0,24}",
            any::<String>(),
        ]
        .prop_map(Value::String),
    ]
}

fn yaml_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Sequence),
            vec((key_value(), inner.clone()), 0..6)
                .prop_map(|kv| Value::Mapping(kv.into_iter().collect())),
            // the YAML writer cannot write a tag on a tagged value: tags on leaves only
            ("[a-z!]{1,8}", leaf()).prop_map(|(t, v)| Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(t),
                value: v
            }))),
        ]
    })
}

fn key_value() -> impl Strategy<Value = Value> {
    let (top, boot) = config_keys();
    let known: Vec<String> = top
        .into_iter()
        .chain(boot)
        .chain(["provider", "peers", "domain", "name", "nameserver", "base-url"].map(String::from))
        .collect();
    prop_oneof![
        4 => proptest::sample::select(known).prop_map(Value::String),
        1 => "[a-z-]{1,12}".prop_map(Value::String),
        1 => leaf(),
    ]
}

/// A configuration layer: known keys (and some others) with arbitrary values, and a
/// `bootstrap` mapping of the same kind.
fn layer() -> impl Strategy<Value = Mapping> {
    let (top, boot) = config_keys();
    let top_entry =
        (prop_oneof![4 => proptest::sample::select(top), 1 => "[a-z-]{1,12}"], yaml_value());
    let boot_entry =
        (prop_oneof![4 => proptest::sample::select(boot), 1 => "[a-z-]{1,12}"], yaml_value());
    (vec(top_entry, 0..8), proptest::option::of(vec(boot_entry, 0..5))).prop_map(|(top, boot)| {
        let mut m: Mapping = top.into_iter().map(|(k, v)| (Value::String(k), v)).collect();
        if let Some(boot) = boot {
            m.insert(
                "bootstrap".into(),
                Value::Mapping(boot.into_iter().map(|(k, v)| (Value::String(k), v)).collect()),
            );
        }
        m
    })
}

/// What an accepted configuration must satisfy: it survives `config view` and loading again.
fn check_accepted(c: &Config) -> Result<(), TestCaseError> {
    let shown = serde_yaml_ng::to_string(c)
        .map_err(|e| TestCaseError::fail(format!("cannot show {c:?}: {e}")))?;
    let again = load_files(shown.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("shown config refused: {e}\n{shown}")))?;
    prop_assert_eq!(shown, serde_yaml_ng::to_string(&again).unwrap());
    Ok(())
}

#[test]
fn corpus_config() {
    replay("config", |input| load_files(input).map(|_| ()).map_err(|e| e.to_string()));
}

#[test]
fn fuzz_config_files() {
    let seeds = seeds("config");
    let inputs = prop_oneof![
        3 => mutated(seeds, YAML_TOKENS),
        1 => layer().prop_filter_map("writable as YAML", |m| serde_yaml_ng::to_string(&m).ok().map(String::into_bytes)),
    ];
    proptest!(config(384), |(input in inputs)| {
        if let Ok(c) = load_files(&input) {
            check_accepted(&c)?;
        }
    });
}

#[test]
fn fuzz_config_layers_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absent.yaml");
    proptest!(config(384), |(flags in layer(), metadata in layer())| {
        let sources = ConfigSources { file: file.clone(), file_explicit: false, flags, metadata };
        match config::load(&sources) {
            Ok(c) => check_accepted(&c)?,
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(!shown.is_empty());
            }
        }
    });
}

/// A clause said twice in a row (`...: S: S`), as when an error's message already
/// includes its source and the chain (`{e:#}`, as `main` prints it) adds the source again.
fn repeated_clause(shown: &str) -> Option<&str> {
    let bounds: Vec<usize> =
        shown.match_indices(": ").map(|(i, _)| i).chain([shown.len()]).collect();
    for (n, &i) in bounds.iter().enumerate() {
        for &j in &bounds[n + 1..] {
            let seg = &shown[i + 2..j];
            if seg.len() >= 12 && shown[..i].ends_with(seg) {
                return Some(seg);
            }
        }
    }
    None
}

/// README: a failure is one line, `error: what failed: where: what to do`.
fn check_one_clear_line(shown: &str) -> Result<(), TestCaseError> {
    prop_assert!(!shown.trim().is_empty(), "empty error");
    prop_assert!(!shown.contains('\n'), "error on several lines: {}", shown);
    if let Some(seg) = repeated_clause(shown) {
        prop_assert!(false, "error says {:?} twice: {}", seg, shown);
    }
    Ok(())
}

#[test]
fn config_errors_are_one_clear_line() {
    let seeds = seeds("config");
    let inputs = prop_oneof![
        mutated(seeds, YAML_TOKENS),
        layer().prop_filter_map("writable as YAML", |m| serde_yaml_ng::to_string(&m)
            .ok()
            .map(String::into_bytes)),
    ];
    proptest!(config(192), |(input in inputs)| {
        if let Err(e) = load_files(&input) {
            check_one_clear_line(&format!("{:#}", anyhow::Error::from(e)))?;
        }
    });
}

#[test]
fn unknown_keys_are_named_exactly() {
    let (top, boot) = config_keys();
    proptest!(config(64), |(key in "[a-z][a-z0-9-]{0,20}", nested in any::<bool>())| {
        let known = if nested { &boot } else { &top };
        prop_assume!(!known.contains(&key));
        let (yaml, path) = if nested {
            (format!("bootstrap:\n  {key}: 1\n"), format!("bootstrap.{key}"))
        } else {
            (format!("{key}: 1\n"), key.clone())
        };
        let err = load_files(yaml.as_bytes()).expect_err("unknown key accepted").to_string();
        prop_assert!(err.contains(&format!("key `{path}`:")), "the error should name key `{}`: {}", path, err);
        prop_assert!(err.contains("config.yaml"), "the error should name the file: {}", err);
    });
}

// --- SHA256SUMS -----------------------------------------------------------------------------

/// The digest a strictly `sha256sum`-formatted line gives its file: `HEX  NAME`, `HEX *NAME`.
fn strict_line(line: &str) -> Option<(String, [u8; 32])> {
    let (hex, rest) = line.split_at_checked(64)?;
    let name = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"))?;
    let name = name.strip_prefix("./").unwrap_or(name);
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return None;
    }
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex, &mut d).ok()?;
    Some((name.to_string(), d))
}

fn check_sums(input: &str) -> Result<(), TestCaseError> {
    match Sums::parse(input) {
        Ok(sums) => {
            // every strictly formatted line is found under its name, with its first digest
            let mut first: BTreeMap<String, [u8; 32]> = BTreeMap::new();
            for line in input.lines() {
                if let Some((name, d)) = strict_line(line.trim_end_matches('\r')) {
                    first.entry(name).or_insert(d);
                }
            }
            for (name, d) in first {
                prop_assert_eq!(sums.get(&name), Some(&d), "{} in {:?}", name, input);
            }
        }
        Err(e @ SumsError::Malformed { line, .. }) | Err(e @ SumsError::Conflict { line, .. }) => {
            prop_assert!(
                line >= 1 && line <= input.lines().count(),
                "{} names line {} of {}",
                e,
                line,
                input.lines().count()
            );
            check_one_clear_line(&e.to_string())?;
        }
    }
    Ok(())
}

#[test]
fn corpus_sums() {
    replay("sums", |input| Sums::parse(&text(input)).map(|_| ()).map_err(|e| e.to_string()));
}

#[test]
fn fuzz_sums() {
    let seeds = seeds("sums");
    let line = (
        any::<[u8; 32]>(),
        prop_oneof![Just("  "), Just(" *"), Just("\t"), Just(" ")],
        "(\\./)?[a-z0-9._-]{1,20}",
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(d, sep, name, end)| format!("{}{sep}{name}{end}", hex::encode(d)));
    let inputs = prop_oneof![
        2 => mutated(seeds, SUMS_TOKENS).prop_map(|b| text(&b)),
        1 => vec(line, 0..8).prop_map(|l| l.concat()),
        1 => any::<String>(),
    ];
    proptest!(config(1024), |(input in inputs)| {
        check_sums(&input)?;
    });
}

// --- discovery ------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Deserialises, validates and, for the static provider only, discovers; checks that
/// validation and discovery agree, and the shape of the peer set.
fn check_discovery(
    rt: &tokio::runtime::Runtime,
    yaml: &str,
) -> Result<Result<(), String>, TestCaseError> {
    let cfg: DiscoveryConfig = match serde_yaml_ng::from_str(yaml) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let valid = cfg.validate();
    if let DiscoveryConfig::Static { peers } = &cfg {
        let found = rt.block_on(discovery::discover(&cfg, &DiscoveryContext::default()));
        prop_assert_eq!(
            valid.is_ok(),
            found.is_ok(),
            "validate and discover disagree on {:?}",
            peers
        );
        match found {
            Ok(set) => {
                prop_assert!(!set.authoritative && set.expected.is_none() && set.is_complete());
                prop_assert!(!set.peers.is_empty() && set.peers.len() <= peers.len());
                prop_assert!(
                    set.peers.windows(2).all(|w| w[0] < w[1]),
                    "not sorted and unique: {:?}",
                    set.peers
                );
            }
            Err(e) => {
                prop_assert!(!e.is_retryable(), "a static list error is retryable: {}", e);
                check_one_clear_line(&e.to_string())?;
            }
        }
    }
    Ok(valid.map_err(|e| e.to_string()))
}

#[test]
fn corpus_discovery() {
    let rt = runtime();
    replay("discovery", |input| match check_discovery(&rt, &text(input)) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    });
}

fn peer_entry() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
        "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){0,3}\\.?",
        "[0-9.:\\[\\]a-f]{0,20}",
        "\\PC{0,16}",
    ];
    let port = proptest::option::of(any::<u16>());
    let name = proptest::option::of(prop_oneof!["[a-z0-9-]{0,10}", "\\PC{0,8}"]);
    (name, host, port, prop_oneof![Just(""), Just(" "), Just("https://")]).prop_map(
        |(n, h, p, pad)| {
            let h = match p {
                Some(p) => format!("{h}:{p}"),
                None => h,
            };
            match n {
                Some(n) => format!("{n}={pad}{h}"),
                None => format!("{pad}{h}"),
            }
        },
    )
}

#[test]
fn fuzz_discovery() {
    let rt = runtime();
    let seeds = seeds("discovery");
    let generated = vec(peer_entry(), 0..8).prop_map(|peers| {
        serde_yaml_ng::to_string(&serde_yaml_ng::Mapping::from_iter([
            ("provider".into(), "static".into()),
            ("peers".into(), Value::Sequence(peers.into_iter().map(Value::String).collect())),
        ]))
        .unwrap()
    });
    let inputs = prop_oneof![
        2 => mutated(seeds, YAML_TOKENS).prop_map(|b| text(&b)),
        2 => generated,
    ];
    proptest!(config(512), |(yaml in inputs)| {
        check_discovery(&rt, &yaml)?.ok();
    });
}

// --- bootstrap metadata layer ---------------------------------------------------------------

fn instance(
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    attributes: BTreeMap<String, String>,
) -> InstanceMetadata {
    InstanceMetadata {
        provider: "ec2",
        instance_id: "i-0123456789abcdef0".into(),
        hostname: Some("ip-10-0-0-11".into()),
        private_ipv4: v4,
        private_ipv6: v6,
        region: Some("eu-west-1".into()),
        availability_zone: Some("eu-west-1a".into()),
        attributes,
    }
}

/// Loads the configuration with `md` as its metadata layer (no file).
fn load_with_metadata(md: &InstanceMetadata) -> Result<Config, config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    // Every key a tag could set allowed, so that every setting's parser is fuzzed through
    // metadata (the allow-list itself is tested in src/bootstrap).
    let all: Vec<String> = config::FLAG_KEYS
        .iter()
        .chain(config::FILE_KEYS)
        .map(|k| k.replace('_', "-"))
        .filter(|k| k != "bootstrap")
        .chain(["cluster-size".to_string()])
        .collect();
    let layer = etcdadm::bootstrap::metadata_layer(md, &all)?;
    config::load(&ConfigSources {
        file: dir.path().join("absent.yaml"),
        metadata: layer.settings,
        ..Default::default()
    })
}

#[test]
fn corpus_metadata() {
    replay("metadata", |input| {
        let doc: serde_json::Value =
            serde_json::from_slice(input).map_err(|e| format!("corpus file is not JSON: {e}"))?;
        let ip = |k: &str| doc[k].as_str().map(|s| s.parse::<IpAddr>().expect("corpus IP"));
        let v4 = ip("private_ipv4").map(|a| match a {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => panic!("private_ipv4 holds an IPv6 address"),
        });
        let v6 = ip("private_ipv6").map(|a| match a {
            IpAddr::V6(a) => a,
            IpAddr::V4(_) => panic!("private_ipv6 holds an IPv4 address"),
        });
        let attributes = doc["attributes"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        load_with_metadata(&instance(v4, v6, attributes)).map(|_| ()).map_err(|e| e.to_string())
    });
}

fn attribute_key() -> impl Strategy<Value = String> {
    let (top, _) = config_keys();
    prop_oneof![
        3 => proptest::sample::select(top).prop_map(|k| format!("etcdadm-{k}")).boxed(),
        1 => "etcdadm-[a-z-]{0,12}".boxed(),
        1 => "[A-Za-z:-]{1,12}".boxed(),
        1 => "\\PC{0,12}".boxed(),
    ]
}

fn attribute_value() -> impl Strategy<Value = String> {
    prop_oneof![
        leaf().prop_filter_map("writable as YAML", |v| serde_yaml_ng::to_string(&v)
            .ok()
            .map(|t| t.trim_end().to_string())),
        yaml_value().prop_filter_map("writable as YAML", |v| serde_yaml_ng::to_string(&v).ok()),
        vec(proptest::sample::select(YAML_TOKENS), 0..6).prop_map(|t| t.concat()),
        any::<String>(),
    ]
}

#[test]
fn fuzz_metadata_layer() {
    proptest!(config(384), |(
        v4 in proptest::option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
        v6 in proptest::option::of(any::<[u16; 8]>().prop_map(Ipv6Addr::from)),
        attributes in btree_map(attribute_key(), attribute_value(), 0..6),
    )| {
        let settings = attributes.keys().any(|k| k.starts_with("etcdadm-"));
        let md = instance(v4, v6, attributes);
        match load_with_metadata(&md) {
            Ok(c) => {
                if !settings {
                    let expected = v4.map(|a| a.to_string()).or(v6.map(|a| a.to_string()));
                    prop_assert_eq!(c.advertise_address.map(|a| a.to_string()), expected);
                }
            }
            Err(e) => {
                prop_assert!(settings, "metadata without settings refused: {}", e);
                let shown = e.to_string();
                prop_assert!(shown.contains("instance metadata") || shown.starts_with("configuration: "), "{}", shown);
            }
        }
    });
}

/// A tag or attribute value is text: what a file accepts for a text setting written as a
/// quoted string, metadata accepts too, with the same value (`etcdadm-name=1234`).
#[test]
fn metadata_text_settings_keep_their_text() {
    proptest!(config(128), |(
        key in prop_oneof![Just("name"), Just("initial-cluster-token"), Just("advertise-address")],
        value in prop_oneof!["[0-9]{1,8}", "[a-z][a-z0-9-]{0,8}", "0x[0-9a-f]{1,4}", "[0-9]{1,3}\\.[0-9]{1,3}", Just("true".to_string()), Just("1e3".to_string())],
    )| {
        let quoted = format!("{key}: '{value}'\n");
        let from_file = load_files(quoted.as_bytes());
        prop_assume!(from_file.is_ok());
        let from_file = from_file.unwrap();
        let md = instance(Some(Ipv4Addr::new(10, 0, 0, 11)), None, BTreeMap::from([(format!("etcdadm-{key}"), value.clone())]));
        let from_md = load_with_metadata(&md).map_err(|e| TestCaseError::fail(format!("etcdadm-{key}={value} refused from metadata, accepted from a file: {e}")))?;
        let get = |c: &Config| match key {
            "name" => c.name.as_ref().map(|n| n.to_string()),
            "initial-cluster-token" => c.initial_cluster_token.as_ref().map(|t| t.to_string()),
            _ => c.advertise_address.as_ref().map(|a| a.to_string()),
        };
        prop_assert_eq!(get(&from_md), get(&from_file));
    });
}
