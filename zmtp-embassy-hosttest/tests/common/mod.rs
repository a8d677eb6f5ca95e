//! What the TAP tests share on the libzmq side: sockets with heartbeats on, monitor counts,
//! and the checks that report a failure as a `String`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one scenario may take, each side.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A libzmq socket with linger 0, a receive timeout of [`DEADLINE`], and heartbeats on.
pub fn zsock(ctx: &zmq::Context, ty: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(ty).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(DEADLINE.as_millis() as i32).unwrap();
    // libzmq heartbeats on: a silent device would be dropped after 300 ms.
    s.set_heartbeat_ivl(100).unwrap();
    s.set_heartbeat_timeout(300).unwrap();
    s.set_heartbeat_ttl(1000).unwrap();
    s
}

/// A libzmq monitor message's event and value (its first frame: 16-bit event number,
/// 32-bit value, both little-endian).
pub fn monitor_event(frames: &[Vec<u8>]) -> Option<(u16, u32)> {
    let &[e0, e1, v0, v1, v2, v3] = frames.first()?.as_slice() else {
        return None;
    };
    Some((
        u16::from_le_bytes([e0, e1]),
        u32::from_le_bytes([v0, v1, v2, v3]),
    ))
}

/// Counts (ACCEPTED, DISCONNECTED) events on a monitored socket so far.
pub fn monitor_counts(mon: &zmq::Socket) -> (usize, usize) {
    let (mut accepted, mut disconnected) = (0, 0);
    while let Ok(frames) = mon.recv_multipart(zmq::DONTWAIT) {
        if let Some((ev, _)) = monitor_event(&frames) {
            if ev == zmq::SocketEvent::ACCEPTED as u16 {
                accepted += 1;
            } else if ev == zmq::SocketEvent::DISCONNECTED as u16 {
                disconnected += 1;
            }
        }
    }
    (accepted, disconnected)
}

/// `Ok` if `cond` holds, else `what` as the error.
pub fn check(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// Runs each named scenario with `run`, printing one line per test in libtest's form and a
/// summary; success only if every scenario passed.
pub fn run_all<S>(
    tests: impl IntoIterator<Item = (&'static str, S)>,
    mut run: impl FnMut(S) -> Result<(), String>,
) -> ExitCode {
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in tests {
        let start = Instant::now();
        match run(scenario) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:?})", start.elapsed());
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
