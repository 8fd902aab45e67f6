//! What the packages carry besides the binary: man pages and shell completions generated
//! by the binary itself (`etcdadm generate`), and the static systemd files under
//! `packaging/`. The tools these tests run (groff, bash, zsh, fish) come from
//! scripts/install-deps.sh; a missing one fails the test.

use clap::CommandFactory;
use etcdadm::cli::Cli;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn etcdadm(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_etcdadm")).args(args).output().expect("run etcdadm");
    assert!(out.status.success(), "etcdadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a host tool; a missing tool is a failure that says how to get it.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install it with scripts/install-deps.sh")
    })
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = tool(program, args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{program} {args:?}: status {}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every command a user can type, with its page name and its long flags:
/// (`etcdadm-certs-renew`, ["force", "cert-validity-days", "state-file", ...]).
fn visible_commands() -> Vec<(String, Vec<String>)> {
    fn walk(cmd: &clap::Command, name: String, out: &mut Vec<(String, Vec<String>)>) {
        let flags = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(String::from))
            .collect();
        out.push((name.clone(), flags));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            walk(sub, format!("{name}-{}", sub.get_name()), out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, "etcdadm".into(), &mut out);
    out
}

#[test]
fn a_man_page_per_command_that_documents_each_of_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let listed =
        String::from_utf8(etcdadm(&["generate", "man", dir.path().to_str().unwrap()]).stdout)
            .unwrap();
    let commands = visible_commands();
    assert!(commands.len() >= 18, "{commands:?}");
    let mut expected: Vec<PathBuf> =
        commands.iter().map(|(name, _)| dir.path().join(format!("{name}.8"))).collect();
    let mut printed: Vec<PathBuf> = listed.lines().map(PathBuf::from).collect();
    expected.sort();
    printed.sort();
    assert_eq!(printed, expected, "one page per visible command, each printed");
    let mut on_disk: Vec<PathBuf> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    on_disk.sort();
    assert_eq!(on_disk, expected, "nothing else written");
    assert!(expected.contains(&dir.path().join("etcdadm-generate-completions.8")), "{expected:?}");

    for (name, flags) in &commands {
        let path = dir.path().join(format!("{name}.8"));
        let roff = std::fs::read_to_string(&path).unwrap();
        assert!(roff.contains(&format!(".TH {name} 8 ")), "{name}: section 8 title");
        // what a reader sees, as man renders it; groff reports any roff mistake on stderr
        let shown = ok("groff", &["-man", "-Tascii", "-P-cbou", "-ww", path.to_str().unwrap()]);
        for flag in flags {
            assert!(
                shown.contains(&format!("--{flag}")),
                "{name}.8 does not document --{flag}:\n{shown}"
            );
        }
    }
    let top = std::fs::read_to_string(dir.path().join("etcdadm.8")).unwrap();
    for sub in ["init", "join", "reset", "bootstrap", "backup", "certs"] {
        assert!(
            top.contains(&format!("etcdadm\\-{sub}(8)")),
            "etcdadm.8 refers to etcdadm-{sub}(8)"
        );
    }
}

fn completions(shell: &str, dir: &Path) -> PathBuf {
    let path = dir.join(format!("etcdadm.{shell}"));
    std::fs::write(&path, etcdadm(&["generate", "completions", shell]).stdout).unwrap();
    path
}

#[test]
fn bash_completions_parse_and_complete_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let f = completions("bash", dir.path());
    ok("bash", &["-n", f.to_str().unwrap()]);
    // what bash-completion does on TAB: call the function with the words typed so far
    let script = r#"source "$1"
        complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=();
          _etcdadm etcdadm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; echo "${COMPREPLY[*]}"; }
        complete_words etcdadm boot
        complete_words etcdadm join --ret
        complete_words etcdadm certs re
        complete -p etcdadm"#;
    let out = ok("bash", &["-c", script, "bash", f.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bootstrap", "{out}");
    assert_eq!(lines[1], "--retry", "{out}");
    assert_eq!(lines[2], "renew", "{out}");
    assert!(lines[3].ends_with(" etcdadm"), "{out}");
}

#[test]
fn zsh_completions_parse() {
    let dir = tempfile::tempdir().unwrap();
    let f = completions("zsh", dir.path());
    ok("zsh", &["-n", f.to_str().unwrap()]);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("#compdef etcdadm"), "zsh autoloads it by its #compdef line");
    assert!(text.contains("--skip-remove-member") && text.contains("bootstrap"), "{text}");
}

#[test]
fn fish_completions_parse_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let f = completions("fish", dir.path());
    ok("fish", &["--no-execute", f.to_str().unwrap()]);
    let out = ok(
        "fish",
        &[
            "--no-config",
            "-c",
            &format!(
                "source {}; complete -C 'etcdadm boot'; complete -C 'etcdadm reset --skip-r'",
                f.display()
            ),
        ],
    );
    assert!(out.lines().any(|l| l.starts_with("bootstrap\t")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("--skip-remove-member\t")), "{out}");
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The packaged unit stays byte-identical to the one the cloud-init and Ignition examples
/// embed (binary in /opt/bin); the package's drop-in points it at /usr/bin/etcdadm.
#[test]
fn the_package_drop_in_runs_the_packaged_binary() {
    let unit = read("packaging/etcdadm-bootstrap.service");
    assert!(unit.contains("\nExecStart=/opt/bin/etcdadm bootstrap\n"));
    let dropin = read("packaging/etcdadm-bootstrap.service.d/10-package.conf");
    let exec: Vec<&str> = dropin.lines().filter(|l| l.starts_with("ExecStart=")).collect();
    assert_eq!(
        exec,
        ["ExecStart=", "ExecStart=/usr/bin/etcdadm bootstrap"],
        "reset, then the packaged path"
    );
    assert!(dropin.contains("[Service]\n"));
}

/// Every static file under packaging/ is an asset of both packages.
#[test]
fn both_packages_carry_every_packaging_file() {
    let manifest = read("Cargo.toml");
    let section = |name: &str| {
        let start = manifest
            .find(&format!("[package.metadata.{name}]"))
            .unwrap_or_else(|| panic!("no [package.metadata.{name}]"));
        let rest = &manifest[start + 1..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    };
    let (deb, rpm) = (section("deb"), section("generate-rpm"));
    let mut files = Vec::new();
    for entry in walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging")) {
        files.push(
            entry
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap()
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string(),
        );
    }
    assert!(files.len() >= 2, "{files:?}");
    // cargo-deb installs the unit itself (with dh_installsystemd's maintainer scripts)
    assert!(
        deb.contains(r#"unit-scripts = "packaging", unit-name = "etcdadm-bootstrap""#),
        "{deb}"
    );
    for f in &files {
        let deb_unit = f == "packaging/etcdadm-bootstrap.service";
        assert!(deb_unit || deb.contains(&format!("\"{f}\"")), "{f} is not an asset of the .deb");
        assert!(rpm.contains(&format!("\"{f}\"")), "{f} is not an asset of the .rpm");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
