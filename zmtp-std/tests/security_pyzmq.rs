//! PLAIN and CURVE against real libzmq 4.3 through pyzmq (whose wheels have CURVE; the `zmq`
//! crate's bundled libzmq has none): our clients and servers against libzmq's, each side
//! binding in turn; libzmq's ZAP authenticator (`zmq.auth.thread.ThreadAuthenticator`)
//! turning us away and letting us in; our allow-lists, ZAP handler function, and ZAP
//! handler socket (a pyzmq REP on TCP) deciding on libzmq clients; and downgrades refused.
//!
//! The peer is `tests/pyzmq/security_peer.py`, run as a subprocess. Without python3 and
//! pyzmq the tests are skipped locally, and **fail** when `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use zmtp_std::zap::{Credentials, ZapReply, ZapRequest};
use zmtp_std::{AuthFailureKind, Context, Socket, SocketType};

mod common;
use common::pyzmq::have_pyzmq;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyzmq/security_peer.py");
const WAIT: Duration = Duration::from_secs(10);

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

    /// The next line starting with `prefix` (earlier lines are kept in `seen`).
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    assert!(
                        !line.starts_with("FAIL"),
                        "peer: {line}; seen {:?}",
                        self.seen
                    );
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {prefix:?} from the peer; seen {:?}", self.seen)
                }
                Err(e) => panic!("peer gone ({e}) before {prefix:?}; seen {:?}", self.seen),
            }
        }
    }

    fn endpoint(&mut self) -> String {
        let line = self.expect("PORT ");
        format!("tcp://127.0.0.1:{}", &line[5..])
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(frames: &[&[u8]]) -> String {
    frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("|")
}

/// Polls `f` until it gives `Some`, for up to 10 s.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for_within(what, WAIT, f)
}

fn keypair() -> (String, String) {
    let (p, s) = zmtp_std::curve_keypair().unwrap();
    (p, s.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mech {
    Plain,
    Curve,
}

/// Credentials for both sides of one test.
struct Creds {
    server: (String, String),
    client: (String, String),
}

impl Creds {
    fn new() -> Creds {
        Creds {
            server: keypair(),
            client: keypair(),
        }
    }

    fn json(&self, mech: Mech) -> serde_json::Value {
        json!({
            "mechanism": if mech == Mech::Curve { "curve" } else { "plain" },
            "server_public": self.server.0, "server_secret": self.server.1,
            "client_public": self.client.0, "client_secret": self.client.1,
            "username": "admin", "password": "secret",
        })
    }

    fn our_server(&self, ctx: &Context, mech: Mech) -> Socket {
        let s = ctx.socket(SocketType::Rep).unwrap();
        match mech {
            Mech::Curve => {
                s.set_curve_server(true).unwrap();
                s.set_curve_secretkey(&self.server.1).unwrap();
            }
            Mech::Plain => s.set_plain_server(true).unwrap(),
        }
        s
    }

    fn our_client(&self, ctx: &Context, mech: Mech) -> Socket {
        let c = ctx.socket(SocketType::Req).unwrap();
        match mech {
            Mech::Curve => {
                c.set_curve_serverkey(&self.server.0).unwrap();
                c.set_curve_publickey(&self.client.0).unwrap();
                c.set_curve_secretkey(&self.client.1).unwrap();
            }
            Mech::Plain => {
                c.set_plain_username("admin").unwrap();
                c.set_plain_password("secret").unwrap();
            }
        }
        c
    }
}

fn with(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// Our REQ client against libzmq's REP server; `we_bind`: the server connects to us.
fn client_against_libzmq(mech: Mech, we_bind: bool) {
    let ctx = Context::new().unwrap();
    let creds = Creds::new();
    let client = creds.our_client(&ctx, mech);
    // libzmq's PLAIN server wants a ZAP handler to let anyone in.
    let auth = (mech == Mech::Plain).then(|| json!({"plain": {"admin": "secret"}}));
    let mut peer;
    if we_bind {
        let ep = client.bind("tcp://127.0.0.1:0").unwrap();
        peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "server", "endpoint": ep, "count": 2, "auth": auth}),
        ));
    } else {
        peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "server", "bind": true, "count": 2, "auth": auth}),
        ));
        client.connect(&peer.endpoint()).unwrap();
    }
    for i in 0..2 {
        client.send_multipart(["msg", &i.to_string()]).unwrap();
        let reply = client.recv_multipart_timeout(WAIT).unwrap();
        assert_eq!(reply, [&b"echo"[..], b"msg", i.to_string().as_bytes()]);
        let i = i.to_string();
        assert_eq!(
            peer.expect("GOT "),
            format!("GOT {}", hex(&[b"msg", i.as_bytes()]))
        );
    }
    assert!(client.auth_failures().is_empty());
}

/// libzmq's REQ client against our REP server; `we_bind`: we listen.
fn server_against_libzmq(mech: Mech, we_bind: bool) {
    let ctx = Context::new().unwrap();
    let creds = Creds::new();
    let server = creds.our_server(&ctx, mech);
    let mut peer;
    if we_bind {
        let ep = server.bind("tcp://127.0.0.1:0").unwrap();
        peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "endpoint": ep, "count": 2}),
        ));
    } else {
        peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "bind": true, "count": 2}),
        ));
        server.connect(&peer.endpoint()).unwrap();
    }
    assert_eq!(peer.expect("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    for i in 0..2 {
        let i = i.to_string();
        let req = server.recv_multipart_timeout(WAIT).unwrap();
        assert_eq!(req, [&b"msg"[..], i.as_bytes()]);
        server.send_multipart(["echo", "msg", &i]).unwrap();
        assert_eq!(
            peer.expect("GOT "),
            format!("GOT {}", hex(&[b"echo", b"msg", i.as_bytes()]))
        );
    }
}

#[test]
fn curve_both_roles_both_bind_directions() {
    if !have_pyzmq() {
        return;
    }
    for we_bind in [false, true] {
        client_against_libzmq(Mech::Curve, we_bind);
        server_against_libzmq(Mech::Curve, we_bind);
    }
}

#[test]
fn plain_both_roles_both_bind_directions() {
    if !have_pyzmq() {
        return;
    }
    for we_bind in [false, true] {
        client_against_libzmq(Mech::Plain, we_bind);
        server_against_libzmq(Mech::Plain, we_bind);
    }
}

/// libzmq's ZAP authenticator turns our client away (we see the refusal and do not
/// reconnect; libzmq reports status 400), then lets it in.
#[test]
fn libzmq_zap_authenticator_rejects_and_accepts_us() {
    if !have_pyzmq() {
        return;
    }
    for mech in [Mech::Curve, Mech::Plain] {
        let ctx = Context::new().unwrap();
        let creds = Creds::new();
        for allowed in [false, true] {
            let auth = match (mech, allowed) {
                (Mech::Curve, true) => json!({"curve_keys": [creds.client.0]}),
                (Mech::Curve, false) => json!({"curve_keys": [keypair().0]}),
                (Mech::Plain, true) => json!({"plain": {"admin": "secret"}}),
                (Mech::Plain, false) => json!({"plain": {"admin": "other"}}),
            };
            let count = if allowed { 1 } else { 0 };
            let mut peer = Peer::start(with(
                creds.json(mech),
                json!({"role": "server", "bind": true, "count": count, "auth": auth}),
            ));
            let client = creds.our_client(&ctx, mech);
            client.connect(&peer.endpoint()).unwrap();
            if allowed {
                client.send("hi").unwrap();
                assert_eq!(
                    client.recv_multipart_timeout(WAIT).unwrap(),
                    [&b"echo"[..], b"hi"]
                );
                assert_eq!(peer.expect("SEVENT"), "SEVENT HANDSHAKE_SUCCEEDED 0");
            } else {
                assert_eq!(peer.expect("SEVENT"), "SEVENT HANDSHAKE_FAILED_AUTH 400");
                let f = wait_for("our client's report", || client.auth_failures().pop());
                // libzmq's ERROR carries the ZAP status code.
                assert_eq!(
                    f.kind,
                    AuthFailureKind::RefusedByServer {
                        reason: "400".into()
                    },
                    "{mech:?}: {f}"
                );
                assert_eq!(client.connected_peers(), 0);
            }
        }
    }
}

/// A libzmq client turned away by us: its monitor says HANDSHAKE_FAILED_AUTH with our
/// status code; ours records it.
fn expect_libzmq_refused(peer: &mut Peer, server: &Socket, code: u16, mech: Mech) {
    let event = peer.expect("EVENT");
    // libzmq's PLAIN client compares commands with "\x05ERROR", which C reads as
    // `5E 'RROR'`: it cannot parse a conforming ERROR and fails the handshake as an
    // unexpected command (0x10000001) instead (see zmtp-core's plain_libzmq.rs).
    if !(mech == Mech::Plain && event == "EVENT HANDSHAKE_FAILED_PROTOCOL 268435457") {
        assert_eq!(
            event,
            format!("EVENT HANDSHAKE_FAILED_AUTH {code}"),
            "{mech:?}"
        );
    }
    let f = wait_for("our server's report", || server.auth_failures().pop());
    assert!(
        matches!(f.kind, AuthFailureKind::Rejected { status_code, .. } if status_code == code),
        "{f}"
    );
}

/// A libzmq client let in by us: one request and reply.
fn expect_libzmq_served(peer: &mut Peer, server: &Socket) {
    assert_eq!(peer.expect("EVENT"), "EVENT HANDSHAKE_SUCCEEDED 0");
    let req = server.recv_multipart_timeout(WAIT).unwrap();
    assert_eq!(req, [&b"msg"[..], b"0"]);
    server.send_multipart(["echo", "msg", "0"]).unwrap();
    peer.expect("GOT ");
}

#[test]
fn our_allow_lists_reject_and_accept_libzmq_clients() {
    if !have_pyzmq() {
        return;
    }
    for mech in [Mech::Curve, Mech::Plain] {
        let ctx = Context::new().unwrap();
        let creds = Creds::new();
        let server = creds.our_server(&ctx, mech);
        let ep = server.bind("tcp://127.0.0.1:0").unwrap();
        // Only someone else is listed.
        match mech {
            Mech::Curve => server.allow_curve_key(keypair().0).unwrap(),
            Mech::Plain => server.allow_plain("admin", "not-secret"),
        }
        let mut peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "endpoint": ep}),
        ));
        expect_libzmq_refused(&mut peer, &server, 400, mech);
        // Now the client is listed (binary key this time).
        match mech {
            Mech::Curve => {
                let key = zmtp_std::curve_public(&creds.client.1).unwrap();
                server.allow_curve_key(&key).unwrap();
            }
            Mech::Plain => server.allow_plain("admin", "secret"),
        }
        let mut peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "endpoint": ep}),
        ));
        expect_libzmq_served(&mut peer, &server);
    }
}

#[test]
fn our_zap_handler_function_rejects_and_accepts_libzmq_clients() {
    if !have_pyzmq() {
        return;
    }
    let ctx = Context::new().unwrap();
    let creds = Creds::new();
    let (tx, asked) = channel();
    let allowed_key = creds.client.0.clone();
    let allow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let allow_in_handler = std::sync::Arc::clone(&allow);
    ctx.set_zap_handler(move |req: &ZapRequest| {
        let _ = tx.send(req.clone());
        let ok = allow_in_handler.load(std::sync::atomic::Ordering::SeqCst)
            && match &req.credentials {
                Credentials::Curve { .. } => req.curve_key_z85().as_deref() == Some(&allowed_key),
                Credentials::Plain { username, password } => {
                    username == b"admin" && password.expose() == b"secret"
                }
                _ => false,
            };
        if ok {
            ZapReply::accept("admin")
        } else {
            ZapReply::deny("not today")
        }
    })
    .unwrap();
    for mech in [Mech::Curve, Mech::Plain] {
        allow.store(false, std::sync::atomic::Ordering::SeqCst);
        let server = creds.our_server(&ctx, mech);
        server.set_zap_domain("test").unwrap();
        let ep = server.bind("tcp://127.0.0.1:0").unwrap();
        let mut peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "endpoint": ep}),
        ));
        expect_libzmq_refused(&mut peer, &server, 400, mech);
        let req = asked.recv_timeout(WAIT).unwrap();
        assert_eq!(
            (req.domain.as_slice(), req.address.as_str()),
            (&b"test"[..], "127.0.0.1")
        );
        allow.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut peer = Peer::start(with(
            creds.json(mech),
            json!({"role": "client", "endpoint": ep}),
        ));
        expect_libzmq_served(&mut peer, &server);
    }
}

/// Our server asks a ZAP handler socket written with libzmq (a REP on TCP) about libzmq
/// clients and about ours.
#[test]
fn our_zap_handler_socket_asks_a_libzmq_zap_server() {
    if !have_pyzmq() {
        return;
    }
    let ctx = Context::new().unwrap();
    let creds = Creds::new();
    let mut zap = Peer::start(json!({
        "role": "zap", "count": 4,
        "allow_keys": [creds.client.0], "allow_users": {"admin": "secret"},
    }));
    ctx.set_zap_endpoint(&zap.endpoint()).unwrap();
    for mech in [Mech::Curve, Mech::Plain] {
        let server = creds.our_server(&ctx, mech);
        server.set_zap_domain("dom").unwrap();
        let ep = server.bind("tcp://127.0.0.1:0").unwrap();
        // A libzmq client with the wrong credentials.
        let mut wrong = with(creds.json(mech), json!({"role": "client", "endpoint": ep}));
        wrong["password"] = json!("wrong");
        let (other_public, other_secret) = keypair();
        wrong["client_public"] = json!(other_public);
        wrong["client_secret"] = json!(other_secret);
        let mut peer = Peer::start(wrong);
        expect_libzmq_refused(&mut peer, &server, 400, mech);
        let line = zap.expect("ZAP ");
        let expected = match mech {
            Mech::Curve => format!("ZAP CURVE {other_public} 127.0.0.1 dom"),
            Mech::Plain => "ZAP PLAIN admin 127.0.0.1 dom".to_string(),
        };
        assert_eq!(line, expected);
        // Our own client with the right ones.
        let client = creds.our_client(&ctx, mech);
        client.connect(&ep).unwrap();
        client.send("hi").unwrap();
        assert_eq!(server.recv_timeout(WAIT).unwrap(), b"hi");
        server.send("ok").unwrap();
        assert_eq!(client.recv_timeout(WAIT).unwrap(), b"ok");
        zap.expect("ZAP ");
    }
}

/// A CURVE server refuses NULL and PLAIN libzmq clients (no downgrade), and our CURVE
/// client refuses a NULL libzmq server.
#[test]
fn downgrade_is_refused() {
    if !have_pyzmq() {
        return;
    }
    let ctx = Context::new().unwrap();
    let creds = Creds::new();
    let server = creds.our_server(&ctx, Mech::Curve);
    let ep = server.bind("tcp://127.0.0.1:0").unwrap();
    for mech in ["null", "plain"] {
        let mut cfg = with(
            creds.json(Mech::Plain),
            json!({"role": "client", "endpoint": ep}),
        );
        cfg["mechanism"] = json!(mech);
        let mut peer = Peer::start(cfg);
        let line = peer.expect("EVENT");
        assert!(
            line.starts_with("EVENT HANDSHAKE_FAILED_PROTOCOL"),
            "{mech}: {line}"
        );
        // libzmq hangs up before sending its mechanism: we see the end of the stream.
        let f = wait_for("our server's report", || server.auth_failures().pop());
        assert!(matches!(f.kind, AuthFailureKind::Handshake(_)), "{f}");
    }
    assert_eq!(server.connected_peers(), 0);

    let mut cfg = with(
        creds.json(Mech::Plain),
        json!({"role": "server", "bind": true, "count": 0}),
    );
    cfg["mechanism"] = json!("null");
    let mut peer = Peer::start(cfg);
    let client = creds.our_client(&ctx, Mech::Curve);
    client.connect(&peer.endpoint()).unwrap();
    let f = wait_for("our client's report", || client.auth_failures().pop());
    assert!(
        matches!(
            f.kind,
            AuthFailureKind::Handshake(
                zmtp_std::CloseReason::Eof
                    | zmtp_std::CloseReason::Protocol(zmtp_std::ProtocolError::MechanismMismatch)
            )
        ),
        "{f}"
    );
    assert_eq!(client.connected_peers(), 0);
}
