//! PLAIN against real libzmq, both roles: our client with a libzmq ZAP handler that accepts
//! or rejects us, and libzmq's client with our server deciding.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::driver::*;
use common::Ev;
use zmtp_core::{CloseReason, Config, Security, SocketType};

const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// A libzmq ZAP handler (RFC 27) answering one request: 200 for admin/secret, 400 otherwise.
/// Returns what it was asked (mechanism, username, password).
fn zap_handler(ctx: &zmq::Context) -> thread::JoinHandle<Vec<Vec<u8>>> {
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.set_linger(0).unwrap();
    rep.bind(ZAP_ENDPOINT).unwrap();
    thread::spawn(move || {
        rep.set_rcvtimeo(5000).unwrap();
        // version, request id, domain, address, routing id, mechanism, credentials...
        let req = rep.recv_multipart(0).expect("a ZAP request");
        assert_eq!(req[0], b"1.0");
        let ok = req[5] == b"PLAIN" && req[6] == b"admin" && req[7] == b"secret";
        let (code, text): (&[u8], &[u8]) = if ok {
            (b"200", b"OK")
        } else {
            (b"400", b"denied")
        };
        rep.send_multipart([&b"1.0"[..], &req[1], code, text, b"admin-user", b""], 0)
            .unwrap();
        vec![req[5].clone(), req[6].clone(), req[7].clone()]
    })
}

fn plain_client(password: &'static [u8]) -> Config<'static> {
    Config::new(SocketType::Dealer)
        .with_identity(b"dev-9")
        .with_security(Security::PlainClient {
            username: b"admin",
            password,
        })
}

#[test]
fn our_plain_client_accepted_by_libzmq_zap_handler() {
    let ctx = zmq::Context::new();
    let zap = zap_handler(&ctx);
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_plain_server(true).unwrap();
    let addr = zbind(&router);
    let mut d = Driver::connect(addr, &plain_client(b"secret"));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Router);
    assert_eq!(
        zap.join().unwrap(),
        [b"PLAIN".to_vec(), b"admin".to_vec(), b"secret".to_vec()]
    );
    d.send(&[b"over plain"]);
    let msg = zrecv(&mut d, &router);
    assert_eq!(msg, [b"dev-9".to_vec(), b"over plain".to_vec()]);
    zsend(&mut d, &router, &[&b"dev-9"[..], b"welcome"]);
    assert_eq!(d.recv_message(), [b"welcome".to_vec()]);
}

#[test]
fn our_plain_client_rejected_by_libzmq_zap_handler_fails_auth() {
    let ctx = zmq::Context::new();
    let zap = zap_handler(&ctx);
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_plain_server(true).unwrap();
    let addr = zbind(&router);
    let mut d = Driver::connect(addr, &plain_client(b"wrong"));
    let reason = d.wait_for("the rejection", |d| d.closed.map(|(r, _)| r));
    assert_eq!(reason, CloseReason::AuthFailed, "{}", d.summary());
    assert_eq!(zap.join().unwrap()[2], b"wrong");
    // libzmq 4.3 sends the status code as the ERROR reason (or its mangled 5E-RROR form,
    // which carries no readable reason): either way we report it before closing.
    assert!(
        matches!(d.events.front(), Some(Ev::PeerError(_))),
        "{:?}",
        d.events
    );
}

/// libzmq's client against our server, with a monitor to see how libzmq took our answer.
fn libzmq_plain_client(
    ctx: &zmq::Context,
    password: &str,
) -> (zmq::Socket, zmq::Socket, std::net::TcpListener) {
    let dealer = zsocket(ctx, zmq::DEALER);
    dealer.set_plain_username(Some("admin")).unwrap();
    dealer.set_plain_password(Some(password)).unwrap();
    dealer.set_reconnect_ivl(60_000).unwrap();
    dealer
        .monitor("inproc://monitor", zmq::SocketEvent::ALL as i32)
        .unwrap();
    let mon = ctx.socket(zmq::PAIR).unwrap();
    mon.set_rcvtimeo(5000).unwrap();
    mon.connect("inproc://monitor").unwrap();
    let (listener, ep) = listen();
    dealer.connect(&ep).unwrap();
    (dealer, mon, listener)
}

/// Next monitor event (number, value) from libzmq, waiting up to 100 ms.
fn monitor_event(mon: &zmq::Socket) -> Option<(u16, u32)> {
    mon.set_rcvtimeo(100).unwrap();
    let m = mon.recv_multipart(0).ok()?;
    let e = u16::from_le_bytes([m[0][0], m[0][1]]);
    let v = u32::from_le_bytes([m[0][2], m[0][3], m[0][4], m[0][5]]);
    Some((e, v))
}

#[test]
fn libzmq_plain_client_accepted_by_our_server() {
    let ctx = zmq::Context::new();
    let (dealer, _mon, listener) = libzmq_plain_client(&ctx, "secret");
    let cfg = Config::new(SocketType::Router).with_security(Security::PlainServer);
    let mut d = Driver::accept(&listener, &cfg);
    let auth = d.wait_for("Authenticate", |d| {
        d.events.iter().find_map(|e| match e {
            Ev::Auth(u, p) => Some((u.clone(), p.clone())),
            _ => None,
        })
    });
    assert_eq!(auth, (b"admin".to_vec(), b"secret".to_vec()));
    d.events.retain(|e| !matches!(e, Ev::Auth(..)));
    d.session.accept_peer();
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    zsend(&mut d, &dealer, &[b"from libzmq"]);
    assert_eq!(d.recv_message(), [b"from libzmq".to_vec()]);
    d.send(&[b"from zmtp"]);
    assert_eq!(zrecv(&mut d, &dealer), [b"from zmtp".to_vec()]);
}

#[test]
fn libzmq_plain_client_rejected_by_our_server_fails_its_handshake() {
    const HANDSHAKE_SUCCEEDED: u16 = 0x1000;
    const HANDSHAKE_FAILED_PROTOCOL: u16 = 0x2000;
    const HANDSHAKE_FAILED_AUTH: u16 = 0x4000;
    const PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND: u32 = 0x1000_0001;
    let ctx = zmq::Context::new();
    let (_dealer, mon, listener) = libzmq_plain_client(&ctx, "wrong");
    let cfg = Config::new(SocketType::Router).with_security(Security::PlainServer);
    let mut d = Driver::accept(&listener, &cfg);
    d.wait_for("Authenticate", |d| {
        d.events
            .iter()
            .any(|e| matches!(e, Ev::Auth(..)))
            .then_some(())
    });
    d.session.reject_peer(b"400");
    d.pump();
    assert_eq!(d.closed.map(|(r, _)| r), Some(CloseReason::AuthRejected));
    assert!(d.session.is_finished(), "ERROR written: {}", d.summary());
    // We send the RFC's `05 ERROR 03 400`. libzmq's PLAIN client compares commands with
    // "\x05ERROR", which C reads as `5E 'RROR'`, so it cannot parse a conforming ERROR and
    // fails the handshake as an unexpected command. Either way the handshake must fail and
    // never succeed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match monitor_event(&mon) {
            Some((HANDSHAKE_SUCCEEDED, _)) => panic!("libzmq let itself in: {seen:x?}"),
            Some((HANDSHAKE_FAILED_AUTH, 400))
            | Some((HANDSHAKE_FAILED_PROTOCOL, PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND)) => return,
            Some(e) => seen.push(e),
            None => {}
        }
    }
    panic!("libzmq did not fail the handshake; events seen: {seen:x?}");
}
