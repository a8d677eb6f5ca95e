//! Fuzz findings as regression tests: every input the fuzzers made fail is replayed through
//! the same entry point (`zmtp_core::fuzzing`, feature `_fuzz`, which the dev-dependency on
//! ourselves turns on).
//!
//! - `tests/fuzz_regressions/<target>-<what>.bin`: fixed findings; each must pass.
//! - `tests/fuzz_regressions/open/<target>-<what>.bin`: findings whose fix has not landed;
//!   each must still fail. When a fix makes one pass, `open_findings_still_fail` says so:
//!   move the file up one folder, where it guards the fix from then on.
//! - `../fuzz/seeds/<target>/*`: the fuzzers' seed corpora; each must pass.
//!
//! `<target>` is the entry point's name: `greeting`, `frame_header`, `command`, `metadata`,
//! `session`, `session_pair`, `session_security` or `socket`. See FUZZING.md at the repository root.

use std::cell::{Cell, RefCell};
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::Once;

use zmtp_core::fuzzing;

const TARGETS: [(&str, EntryPoint); 8] = [
    ("session_pair", fuzzing::session_pair),
    ("session_security", fuzzing::session_security),
    ("session", fuzzing::session),
    ("greeting", fuzzing::greeting),
    ("frame_header", fuzzing::frame_header),
    ("command", fuzzing::command),
    ("metadata", fuzzing::metadata),
    ("socket", fuzzing::socket),
];

fn entry_point(file_name: &str) -> Option<EntryPoint> {
    // `session_pair` and `session_security` are listed before `session`, so the longer
    // prefix wins.
    TARGETS
        .iter()
        .find(|(name, _)| file_name.starts_with(&format!("{name}-")))
        .map(|(_, f)| *f)
}

type EntryPoint = fn(&[u8]);

thread_local! {
    static IN_REPLAY: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replays one input; `Err` carries the panic message and location.
fn replay(f: EntryPoint, data: &[u8]) -> Result<(), String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // Expected panics (open findings) would flood the output: keep their message for the
        // report instead; any other panic (a failing test) is printed as usual.
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_REPLAY.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
    IN_REPLAY.with(|r| r.set(true));
    let result = panic::catch_unwind(|| f(data));
    IN_REPLAY.with(|r| r.set(false));
    result.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_default()
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

#[test]
fn fixed_findings_pass() {
    let mut failures = Vec::new();
    for path in files(&regressions_dir()) {
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let f = entry_point(&name).unwrap_or_else(|| panic!("{name}: no entry point"));
        if let Err(msg) = replay(f, &std::fs::read(&path).unwrap()) {
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn open_findings_still_fail() {
    let mut fixed = Vec::new();
    for path in files(&regressions_dir().join("open")) {
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let f = entry_point(&name).unwrap_or_else(|| panic!("{name}: no entry point"));
        if replay(f, &std::fs::read(&path).unwrap()).is_ok() {
            fixed.push(name);
        }
    }
    assert!(
        fixed.is_empty(),
        "these open findings pass now: move them from tests/fuzz_regressions/open/ to \
         tests/fuzz_regressions/ so they guard the fix, and update FUZZING.md: {fixed:?}"
    );
}

#[test]
fn fuzz_seeds_pass() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let mut failures = Vec::new();
    let mut count = 0;
    for (target, f) in TARGETS {
        for path in files(&seeds.join(target)) {
            count += 1;
            if let Err(msg) = replay(f, &std::fs::read(&path).unwrap()) {
                failures.push(format!("{target}/{}: {msg}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The seeds live in the repository beside this crate; a checkout without them is wrong.
    assert!(count > 0, "no seeds found under {}", seeds.display());
}
