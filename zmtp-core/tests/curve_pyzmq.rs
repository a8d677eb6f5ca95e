//! CURVE against real libzmq 4.3 (through pyzmq, whose wheels are built with CURVE; the `zmq`
//! crate's bundled libzmq has none), both roles, over TCP on 127.0.0.1: libzmq's ROUTER and
//! REP serving our DEALER and REQ, our ROUTER and REP serving libzmq's DEALER and REQ,
//! heartbeats and subscriptions inside MESSAGEs, and a libzmq ZAP handler accepting and
//! rejecting our client.
//!
//! The peer is `tests/pyzmq/curve_peer.py`, started as a subprocess. Without python3 and
//! pyzmq the tests are skipped locally, and **fail** when `CI=true`.
#![cfg(feature = "curve")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use common::driver::*;
use common::{leak, Ev};
use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom};
use zmtp_core::{Buffers, CloseReason, Config, Instant, Role, Security, Session, SocketType};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyzmq/curve_peer.py");

/// Whether python3 with a CURVE-capable pyzmq is here. Missing: skip, or fail under CI.
fn have_pyzmq() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import zmq, sys; sys.exit(0 if zmq.has('curve') else 3)",
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

fn random() -> CurveRandom {
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    CurveRandom::from_fn(|b| urandom.read_exact(b).unwrap())
}

fn keys() -> &'static CurveKeyPair {
    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut secret)
        .unwrap();
    Box::leak(Box::new(CurveKeyPair::from_secret(secret)))
}

fn z85(k: &[u8; 40]) -> String {
    String::from_utf8(k.to_vec()).unwrap()
}

/// The python peer: its output lines arrive on a channel; killed when dropped.
struct Peer {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn start(cfg: serde_json::Value) -> Peer {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg(cfg.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line starting with `prefix` (earlier lines are kept in `seen`); pumps `d`
    /// meanwhile so our side keeps talking.
    fn expect(&mut self, prefix: &str, mut d: Option<&mut Driver>) -> String {
        let deadline = StdInstant::now() + Duration::from_secs(10);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.seen.push(line.clone());
                    assert!(
                        !line.starts_with("FAIL"),
                        "peer: {line}; seen {:?}",
                        self.seen
                    );
                    if hit {
                        return line;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => panic!("peer gone ({e}) before {prefix:?}; seen {:?}", self.seen),
            }
            if let Some(d) = d.as_deref_mut() {
                d.pump();
            }
            assert!(
                StdInstant::now() < deadline,
                "no {prefix:?} from the peer; seen {:?}",
                self.seen
            );
        }
    }

    fn port(&mut self) -> SocketAddr {
        let line = self.expect("PORT", None);
        let port: u16 = line[5..].trim().parse().unwrap();
        SocketAddr::from(([127, 0, 0, 1], port))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A driver whose session is a CURVE session (`Driver::new` starts NULL/PLAIN ones).
fn curve_driver(stream: TcpStream, cfg: &Config<'static>, role: Role) -> Driver {
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let buffers = Buffers {
        rx: leak(8192),
        tx: leak(8192),
    };
    let epoch = StdInstant::now();
    let session = Session::new_curve(cfg, role, buffers, Instant::ZERO, random()).unwrap();
    let mut d = Driver {
        stream,
        session,
        epoch,
        events: Default::default(),
        partial: Vec::new(),
        chunked: Vec::new(),
        chunks_taken: 0,
        closed: None,
        rx_log: Vec::new(),
        tx_log: Vec::new(),
        write_failed: false,
    };
    d.flush();
    d
}

fn frames_of(line: &str) -> Vec<Vec<u8>> {
    line[4..].trim().split('|').map(common::hex).collect()
}

struct Keys {
    server: &'static CurveKeyPair,
    client: &'static CurveKeyPair,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            server: keys(),
            client: keys(),
        }
    }

    fn json(&self, role: &str, kind: &str) -> serde_json::Value {
        serde_json::json!({
            "role": role,
            "type": kind,
            "server_public": z85(&self.server.public_key_z85()),
            "server_secret": z85(&self.server.secret_key_z85()),
            "client_public": z85(&self.client.public_key_z85()),
            "client_secret": z85(&self.client.secret_key_z85()),
            "zap": "none",
            "count": 3,
            "heartbeat_ms": 0,
        })
    }

    fn client_cfg(&self, kind: SocketType) -> Config<'static> {
        Config::new(kind).with_security(Security::CurveClient {
            server_key: *self.server.public_key(),
            keys: self.client,
        })
    }

    fn server_cfg(&self, kind: SocketType) -> Config<'static> {
        Config::new(kind).with_security(Security::CurveServer { keys: self.server })
    }
}

/// No plaintext command frames after the handshake: everything is a data frame.
fn assert_only_messages_after(log: &[u8], handshake_commands: usize) {
    let frames = scan(log);
    for (i, w) in frames.iter().enumerate().skip(handshake_commands) {
        assert!(
            matches!(w, Wire::Data { more: false, .. }),
            "frame {i} after the handshake: {w:?}"
        );
    }
}

// ================================================================================ libzmq serves

#[test]
fn our_curve_dealer_with_libzmq_router_server_and_heartbeats() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let mut j = k.json("server", "ROUTER");
    j["heartbeat_ms"] = 50.into();
    let mut peer = Peer::start(j);
    let addr = peer.port();
    let mut cfg = k.client_cfg(SocketType::Dealer);
    // PING every 50 ms, but give up only after 5 s of silence. The timeout defaults to the
    // interval (as libzmq's), and 50 ms is less than a busy machine can stall the peer (or
    // this test) for: a 200 ms SIGSTOP of the pyzmq peer closed the session with
    // HeartbeatTimeout.
    cfg.heartbeat_interval = Some(Duration::from_millis(50));
    cfg.heartbeat_timeout = Some(Duration::from_secs(5));
    cfg.heartbeat_ttl = Some(Duration::from_secs(5));
    let mut d = curve_driver(TcpStream::connect(addr).unwrap(), &cfg, Role::Connected);
    let p = d.handshake();
    assert_eq!(p.socket_type, SocketType::Router);
    // libzmq PINGs us every 50 ms inside MESSAGEs; we PING it too. Nobody times out.
    d.pump_for(Duration::from_millis(600));
    let big = pattern(300, 1);
    for i in 0..3u8 {
        d.send(&[&b"msg"[..], &[i], &big]);
        let got = peer.expect("GOT", Some(&mut d));
        assert_eq!(
            frames_of(&got)[1..],
            [b"msg".to_vec(), vec![i], big.clone()]
        );
        assert_eq!(
            d.recv_message(),
            [b"echo".to_vec(), b"msg".to_vec(), vec![i], big.clone()]
        );
    }
    peer.expect("DONE", Some(&mut d));
    assert!(d.session.is_ready(), "{}", d.summary());
    // HELLO and INITIATE, then only MESSAGEs (our PINGs and PONGs among them) both ways.
    assert_only_messages_after(&d.tx_log, 2);
    assert_only_messages_after(&d.rx_log, 2);
    let pings_out = scan(&d.tx_log).len() - 2 - 3;
    assert!(
        pings_out >= 5,
        "only {pings_out} heartbeat MESSAGEs went out"
    );
}

#[test]
fn our_curve_req_with_libzmq_rep_server() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let mut peer = Peer::start(k.json("server", "REP"));
    let addr = peer.port();
    let mut d = curve_driver(
        TcpStream::connect(addr).unwrap(),
        &k.client_cfg(SocketType::Req),
        Role::Connected,
    );
    assert_eq!(d.handshake().socket_type, SocketType::Rep);
    for i in 0..3u8 {
        d.send(&[&b""[..], b"question", &[i]]);
        assert_eq!(
            d.recv_message(),
            [vec![], b"echo".to_vec(), b"question".to_vec(), vec![i]]
        );
    }
}

#[test]
fn our_curve_sub_with_libzmq_pub_server() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let mut j = k.json("server", "PUB");
    j["count"] = 200.into();
    let mut peer = Peer::start(j);
    let addr = peer.port();
    let mut d = curve_driver(
        TcpStream::connect(addr).unwrap(),
        &k.client_cfg(SocketType::Sub),
        Role::Connected,
    );
    d.handshake();
    d.subscribe(b"news");
    // Only "news" arrives: libzmq's PUB understood our SUBSCRIBE inside a MESSAGE.
    for _ in 0..3 {
        let m = d.recv_message();
        assert_eq!(m[0], b"news", "{m:?}");
    }
    assert_only_messages_after(&d.tx_log, 2);
}

// ================================================================================ we serve

/// libzmq's client connects to our server; returns the driver once the handshake is done
/// and the client's key was reported.
fn serve(k: &Keys, ours: SocketType, theirs: &str) -> (Driver, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut j = k.json("client", theirs);
    j["endpoint"] = format!("tcp://{}", listener.local_addr().unwrap()).into();
    let peer = Peer::start(j);
    let stream = accept_one(&listener);
    let mut d = curve_driver(stream, &k.server_cfg(ours), Role::Accepted);
    d.wait_for("Authenticate", |d| {
        d.events
            .iter()
            .any(|e| matches!(e, Ev::Auth(..)))
            .then_some(())
    });
    d.events.retain(|e| !matches!(e, Ev::Auth(..)));
    assert_eq!(
        d.session.pending_auth().and_then(|a| a.public_key),
        Some(*k.client.public_key()),
        "the vouch proves libzmq's key"
    );
    (d, peer)
}

#[test]
fn libzmq_curve_dealer_with_our_router_server() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let (mut d, mut peer) = serve(&k, SocketType::Router, "DEALER");
    d.session.accept_peer();
    assert_eq!(d.handshake().socket_type, SocketType::Dealer);
    peer.expect("EVENT HANDSHAKE_SUCCEEDED", Some(&mut d));
    for i in 0..3u8 {
        let m = d.recv_message();
        assert_eq!(m, [vec![], b"msg".to_vec(), i.to_string().into_bytes()]);
        let mut reply = vec![b"echo".to_vec()];
        reply.extend(m);
        d.send(&reply);
        let got = peer.expect("GOT", Some(&mut d));
        assert_eq!(frames_of(&got), reply);
    }
    peer.expect("DONE", Some(&mut d));
    assert_only_messages_after(&d.tx_log, 2);
}

#[test]
fn libzmq_curve_req_with_our_rep_server() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let (mut d, mut peer) = serve(&k, SocketType::Rep, "REQ");
    d.session.accept_peer();
    d.handshake();
    for i in 0..3u8 {
        let m = d.recv_message();
        // REQ's empty delimiter, then the request.
        assert_eq!(m, [vec![], b"msg".to_vec(), i.to_string().into_bytes()]);
        d.send(&[&b""[..], b"echo", b"msg", i.to_string().as_bytes()]);
        let got = peer.expect("GOT", Some(&mut d));
        assert_eq!(
            frames_of(&got),
            [
                b"echo".to_vec(),
                b"msg".to_vec(),
                i.to_string().into_bytes()
            ]
        );
    }
}

#[test]
fn libzmq_curve_sub_subscribes_to_our_pub_server() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let (mut d, mut peer) = serve(&k, SocketType::Pub, "SUB");
    d.session.accept_peer();
    d.handshake();
    // libzmq's subscription comes inside a MESSAGE (as SUBSCRIBE or as `01 news`).
    let topic = d.wait_for("the subscription", |d| {
        d.events.iter().find_map(|e| match e {
            Ev::Subscribe(t) => Some(t.clone()),
            _ => None,
        })
    });
    assert_eq!(topic, b"news");
    for i in 0..3u8 {
        d.send(&[&b"news"[..], &[i]]);
    }
    for i in 0..3u8 {
        let got = peer.expect("GOT", Some(&mut d));
        assert_eq!(frames_of(&got), [b"news".to_vec(), vec![i]]);
    }
}

#[test]
fn libzmq_curve_client_rejected_by_our_server_fails_auth() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let (mut d, mut peer) = serve(&k, SocketType::Router, "DEALER");
    d.session.reject_peer(b"400");
    d.pump();
    assert_eq!(d.closed.map(|(r, _)| r), Some(CloseReason::AuthRejected));
    assert!(d.session.is_finished(), "ERROR written: {}", d.summary());
    // libzmq's CURVE client reads our ERROR 400 as an authentication failure.
    let ev = peer.expect("EVENT", None);
    assert_eq!(ev, "EVENT HANDSHAKE_FAILED_AUTH 400", "{:?}", peer.seen);
}

#[test]
fn our_server_refuses_a_libzmq_client_holding_another_server_key() {
    if !have_pyzmq() {
        return;
    }
    // libzmq's client believes in another server key: its HELLO does not open for us.
    let k = Keys::new();
    let impostor = Keys {
        server: keys(),
        client: k.client,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut j = impostor.json("client", "DEALER");
    j["endpoint"] = format!("tcp://{}", listener.local_addr().unwrap()).into();
    let _peer = Peer::start(j);
    let mut d = curve_driver(
        accept_one(&listener),
        &k.server_cfg(SocketType::Router),
        Role::Accepted,
    );
    let reason = d.wait_for("the close", |d| d.closed.map(|(r, _)| r));
    assert_eq!(
        reason,
        CloseReason::Protocol(zmtp_core::ProtocolError::Curve(
            zmtp_core::CurveError::BoxOpenFailed
        ))
    );
}

// ================================================================================ ZAP

#[test]
fn our_curve_client_accepted_by_libzmq_zap_handler() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let mut j = k.json("server", "ROUTER");
    j["zap"] = "accept".into();
    j["count"] = 1.into();
    let mut peer = Peer::start(j);
    let addr = peer.port();
    let mut d = curve_driver(
        TcpStream::connect(addr).unwrap(),
        &k.client_cfg(SocketType::Dealer),
        Role::Connected,
    );
    d.handshake();
    let zap = peer.expect("ZAP", Some(&mut d));
    assert_eq!(
        zap,
        format!("ZAP CURVE {}", z85(&k.client.public_key_z85())),
        "libzmq's ZAP handler saw our long-term key"
    );
    d.send(&[b"in"]);
    assert_eq!(d.recv_message(), [b"echo".to_vec(), b"in".to_vec()]);
}

#[test]
fn our_curve_client_rejected_by_libzmq_zap_handler_fails_auth() {
    if !have_pyzmq() {
        return;
    }
    let k = Keys::new();
    let mut j = k.json("server", "ROUTER");
    j["zap"] = "reject".into();
    let mut peer = Peer::start(j);
    let addr = peer.port();
    let mut d = curve_driver(
        TcpStream::connect(addr).unwrap(),
        &k.client_cfg(SocketType::Dealer),
        Role::Connected,
    );
    let reason = d.wait_for("the rejection", |d| d.closed.map(|(r, _)| r));
    assert_eq!(reason, CloseReason::AuthFailed, "{}", d.summary());
    assert!(
        matches!(d.events.front(), Some(Ev::PeerError(r)) if r == b"400"),
        "{:?}",
        d.events
    );
    peer.expect("ZAP CURVE", None);
}
