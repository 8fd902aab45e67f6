//! The crate's layering, read from its source: every `crate::` path in `src/` (a `use
//! crate::...` line, a `crate::{a, b}` group, an inline `crate::x::y` path) is an edge from
//! the top-level module of the file it is written in to the top-level module it names.
//! These tests fail when the top-level modules form a cycle, when `cli` uses any other
//! module of the crate, or when anything but the binary reaches into `commands`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> top-level modules it references (itself excluded).
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to: `src/a.rs` and `src/a/**` are `a`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src/");
    let first = rel.components().next().expect("non-empty path");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// Source text without line comments (doc comments may name paths they do not use).
fn code_only(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first path segment of every item in a `{...}` group starting at `s[0] == '{'`
/// (nested groups belong to the item before them and are skipped).
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting_head = true;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    expecting_head = true;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expecting_head = true,
            c if depth == 1 && expecting_head && is_ident(c) => {
                let rest = &s[i..];
                let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
                heads.push(rest[..end].to_string());
                expecting_head = false;
                for _ in 1..rest[..end].chars().count() {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    heads
}

/// Every top-level module named after a `crate::` in `code`.
fn referenced_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before_ok = at == 0 || !rest[..at].ends_with(|c: char| is_ident(c) || c == ':');
        let after = rest[at + "crate::".len()..].trim_start();
        if before_ok {
            if after.starts_with('{') {
                found.extend(group_heads(after).into_iter().filter(|h| h != "self"));
            } else {
                let end = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
                if end > 0 {
                    found.insert(after[..end].to_string());
                }
            }
        }
        rest = &rest[at + "crate::".len()..];
    }
    found
}

fn module_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let from = top_module(src, &file);
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let deps = graph.entry(from.clone()).or_default();
        deps.extend(referenced_modules(&code_only(&text)).into_iter().filter(|m| *m != from));
    }
    graph
}

fn src_graph() -> Graph {
    module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// A cycle of the graph (first module repeated at the end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).expect("open node on stack");
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, deps)| format!("{m} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn parser_finds_use_lines_groups_and_inline_paths() {
    let code = "use crate::alpha::X;\nuse crate::{beta::{self, Y}, gamma, self};\n\
                fn f() { crate::delta::g(); let _ = crate::epsilon::Z; }\n\
                use crate::{\n    zeta::W,\n    eta,\n};\nfn h() -> notcrate::theta {}";
    let found: Vec<String> = referenced_modules(code).into_iter().collect();
    assert_eq!(found, ["alpha", "beta", "delta", "epsilon", "eta", "gamma", "zeta"]);
}

#[test]
fn cycle_finder_reports_a_cycle_and_accepts_a_dag() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let cyclic = edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
    assert_eq!(find_cycle(&cyclic), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    assert_eq!(find_cycle(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let graph = src_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between top-level modules: {}\nmodule graph:\n{}",
            cycle.join(" -> "),
            render(&graph)
        );
    }
}

#[test]
fn cli_references_nothing_else_in_the_crate() {
    // The command line, the one table of settings and their value types are the bottom of
    // the crate: config makes `Config` from that table, and everything else builds on both.
    let graph = src_graph();
    let deps = graph.get("cli").expect("src/cli.rs or src/cli/ exists");
    assert!(deps.is_empty(), "cli may reference nothing else in the crate, but: {deps:?}");
}

#[test]
fn commands_is_referenced_only_by_the_binary() {
    let graph = src_graph();
    let users: Vec<&String> = graph
        .iter()
        .filter(|(m, deps)| !matches!(m.as_str(), "main" | "lib") && deps.contains("commands"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "only main.rs/lib.rs may reference commands, but: {users:?}");
}

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn lib_module_map_names_every_module() {
    let lib = read("src/lib.rs");
    let map: String = lib.lines().filter(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
    let missing: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .filter(|m| !map.contains(&format!("`{m}`")))
        .collect();
    assert!(missing.is_empty(), "src/lib.rs's module map does not name: {missing:?}");
}

#[test]
fn readme_source_layout_names_every_entry_of_src_and_nothing_else() {
    let readme = read("README.md");
    let start =
        readme.find("## Source layout").expect("README.md has a '## Source layout' section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().to_string();
        let shown =
            if entry.path().is_dir() { format!("`src/{name}/`") } else { format!("`src/{name}`") };
        if !section.contains(&shown) {
            missing.push(shown);
        }
    }
    assert!(missing.is_empty(), "README's source layout does not name: {missing:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stale: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| p.starts_with("src/") && !root.join(p).exists())
        .collect();
    assert!(stale.is_empty(), "README's source layout names paths that do not exist: {stale:?}");
}

#[test]
fn commands_reach_etcd_machinery_only_through_an_operation() {
    // The verbs are thin: they parse, call one operation and print. The machinery below the
    // operations (etcd's API connections, units and systemctl, certificates, downloads'
    // internals, object stores, discovery, metadata, metrics files) is theirs to use.
    const BELOW_OPERATIONS: &[&str] = &[
        "service",
        "s3",
        "snapshot",
        "phases",
        "metrics",
        "leadership",
        "discovery",
        "metadata",
        "resolver",
        "aws_api",
        "aws_credentials",
        "bounded",
        "pair_files",
        "retry",
        "notify",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("commands"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let code = code_only(&std::fs::read_to_string(&file).expect("read a command module"));
        for m in referenced_modules(&code) {
            if BELOW_OPERATIONS.contains(&m.as_str()) {
                found.push(format!("{} uses {m}", file.display()));
            }
        }
        // Of the etcd API only the id format is the edges' (for printing).
        for handle in ["Cluster::", "TlsFiles", "Systemctl", "Ca::"] {
            if code.contains(handle) {
                found.push(format!("{} uses {handle}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "commands/ must call an operation instead: {found:#?}");
}

#[test]
fn only_the_edges_use_anyhow_and_library_code_returns_typed_errors() {
    // Library code returns its own error types (thiserror), whose causes stay reachable
    // through `source()`; `anyhow` with context is for the edges only: the binary, the verbs
    // and the first-boot agent, which turn errors into messages and exit codes.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let edges = [src.join("main.rs"), src.join("commands"), src.join("bootstrap")];
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !edges.iter().any(|e| f.starts_with(e)))
        .filter(|f| {
            code_only(&std::fs::read_to_string(f).expect("read a source file")).contains("anyhow")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "library code uses anyhow: {offenders:#?}");
}

#[test]
fn child_processes_are_waited_for_off_the_async_workers() {
    // A child process etcdadm waits for (systemctl, systemd-sysusers, etcd --version,
    // etcdutl) blocks its thread for up to seconds; only src/blocking.rs waits for one, off
    // the runtime's async workers (or bounded in time). A module that builds a Command hands
    // it to `blocking::output` / `output_within` instead of calling `.output()`, `.status()`
    // or `.spawn()` itself.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("blocking.rs")) {
        let code = code_only(&std::fs::read_to_string(f).expect("read a source file"));
        if !code.contains("process::Command") {
            continue;
        }
        for call in [".output()", ".status()", ".spawn()"] {
            if code.contains(call) {
                found.push(format!("{} calls {call}", f.display()));
            }
        }
    }
    assert!(found.is_empty(), "wait for child processes through crate::blocking: {found:#?}");
}
