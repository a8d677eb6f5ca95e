//! What the integration tests share: deadlines, libzmq sockets (the `zmq` crate) that give
//! up instead of hanging, polling a condition with a deadline (never a sleep standing in
//! for one), and raw TCP peers.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::SocketType;

pub mod pyzmq;

/// Deadline for any single expected step.
pub const STEP: Duration = Duration::from_secs(5);

/// Polls `f` until it returns true; fails the test after [`STEP`].
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    wait_for_within(what, STEP, || f().then_some(()));
}

/// Polls `f` until it returns a value; fails the test after `limit`.
pub fn wait_for_within<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A libzmq socket that gives up after [`STEP`] and drops everything on close.
pub fn zsocket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s
}

/// Binds a libzmq socket to a free port on 127.0.0.1; returns its endpoint.
pub fn zbind(s: &zmq::Socket) -> String {
    s.bind("tcp://127.0.0.1:*").unwrap();
    s.get_last_endpoint().unwrap().unwrap()
}

/// libzmq's name for one of our socket types.
pub fn zmq_type(t: SocketType) -> zmq::SocketType {
    match t {
        SocketType::Pair => zmq::PAIR,
        SocketType::Req => zmq::REQ,
        SocketType::Rep => zmq::REP,
        SocketType::Dealer => zmq::DEALER,
        SocketType::Router => zmq::ROUTER,
        SocketType::Push => zmq::PUSH,
        SocketType::Pull => zmq::PULL,
        SocketType::Pub => zmq::PUB,
        SocketType::Sub => zmq::SUB,
        SocketType::XPub => zmq::XPUB,
        SocketType::XSub => zmq::XSUB,
    }
}

/// Whether the peer closes `s` within [`STEP`] (whatever it sends first is read and
/// dropped); `false` if it is still open then.
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A path in the temporary directory, unique to this process and `name`, not there yet.
pub fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("zmtp-std-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A ZMTP 3.1 NULL greeting (RFC 37 §"The Greeting"), as a client.
pub fn greeting() -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 1];
    g.extend_from_slice(b"NULL");
    g.resize(12 + 20, 0);
    g.push(0); // as-server
    g.resize(64, 0);
    g
}

/// READY with `Socket-Type` (RFC 37 §"The NULL Security Mechanism"), as a short command.
pub fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// A raw TCP peer that has done the NULL handshake as `socket_type` (our side's greeting
/// and READY are left unread in its receive buffer).
pub fn raw_peer(endpoint: &str, socket_type: &str) -> TcpStream {
    let mut s = TcpStream::connect(endpoint.trim_start_matches("tcp://")).unwrap();
    s.write_all(&greeting()).unwrap();
    s.write_all(&ready(socket_type)).unwrap();
    s
}
