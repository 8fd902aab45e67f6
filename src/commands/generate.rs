//! `etcdadm generate man DIR` and `etcdadm generate completions SHELL`: the man pages (one
//! per command and subcommand, section 8) and shell completions the packages carry,
//! generated from the very clap definition the binary parses (`cli::Cli`), so they cannot
//! drift from the flags. A subcommand rather than a build script: packaging uses the binary it
//! ships anyway.

use crate::cli::{Cli, GenerateCommand};
use crate::fsutil::{write_atomic, MODE_PUBLIC};
use crate::outln;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Section of the manual: system administration commands (the unit says `man:etcdadm(8)`).
pub const MAN_SECTION: &str = "8";

pub fn run(cmd: GenerateCommand) -> Result<()> {
    match cmd {
        GenerateCommand::Man { dir } => {
            for path in man_pages(&dir)? {
                outln!("{}", path.display())?;
            }
            Ok(())
        }
        GenerateCommand::Completions { shell } => {
            // Rendered first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "etcdadm", &mut script);
            Ok(crate::stdout::write_bytes(&script)?)
        }
    }
}

/// Writes one page per visible command into `dir` (created if needed); returns their paths.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    page(cmd, dir, &mut written)?;
    Ok(written)
}

fn page(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(MAN_SECTION)
        .source(format!("etcdadm {}", env!("CARGO_PKG_VERSION")))
        .manual("etcdadm");
    let path = dir.join(man.get_filename());
    let mut text = Vec::new();
    man.render(&mut text)
        .with_context(|| format!("cannot render the man page of {}", cmd.get_name()))?;
    write_atomic(&path, &text, MODE_PUBLIC).with_context(|| {
        format!("cannot write {}: check that the directory is writable", path.display())
    })?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone(), dir, written)?;
    }
    Ok(())
}
