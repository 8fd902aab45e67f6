//! No global mutable state in the crate (issue 12, point 4): rate limiters, caches, retry
//! observers and metrics are values their owner passes in. This reads every source file
//! under src/ and fails on a `static` whose type can change at run time.

use std::path::Path;

/// Types that make a `static` mutable state.
const MUTABLE: &[&str] =
    &["Mutex", "RwLock", "OnceLock", "OnceCell", "LazyLock", "Lazy<", "Cell<", "RefCell", "Atomic"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The offending lines of `text`: `static mut`, or a `static NAME: T` with a mutable `T`.
fn mutable_statics(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let code = l.split("//").next().unwrap_or("").trim_start();
            let code =
                code.strip_prefix("pub(crate) ").or(code.strip_prefix("pub ")).unwrap_or(code);
            code.starts_with("static mut ")
                || (code.starts_with("static ")
                    && code
                        .split_once(':')
                        .is_some_and(|(_, ty)| MUTABLE.iter().any(|m| ty.contains(m))))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn the_detector_finds_mutable_statics_and_passes_constants() {
    let found = mutable_statics(
        "static A: Mutex<Option<String>> = Mutex::new(None);\n\
         pub(crate) static B: std::sync::atomic::AtomicU64 = AtomicU64::new(0);\n\
         static mut C: u32 = 0;\n\
         static NAMES: &[&str] = &[\"a\"];\n\
         // static D: Mutex<u8> in a comment\n\
         const E: u32 = 1;\n",
    );
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn no_source_file_declares_a_global_mutable_static() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            mutable_statics(&text).into_iter().map(move |l| format!("{}: {l}", f.display()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "global mutable state; pass it in instead:\n{}",
        offenders.join("\n")
    );
}
