//! Whether the pyzmq peers can run; shared with zmtp-cli's tests (included there by path).

use std::process::{Command, Stdio};

/// Whether python3 with a CURVE-capable pyzmq is here. Missing: skip (false), or fail the
/// test under CI (`CI=true`), where a missing tool must not pass for a test that passed.
pub fn have_pyzmq() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import zmq, zmq.auth.thread, sys; sys.exit(0 if zmq.has('curve') else 3)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with pyzmq (built with CURVE) is required under CI: pip install pyzmq"
        );
        eprintln!("skipped: python3 with pyzmq (CURVE) not found; pip install pyzmq");
    }
    ok
}
