//! PLAIN (RFC 24) and PROTOCOL.md "PLAIN and CURVE": handshake bytes, authentication by the
//! application, rejection, malformed commands and downgrade refusal.
#![cfg(feature = "plain")]

mod common;

use common::*;
use zmtp_core::{
    CloseReason, Config, Instant, ProtocolError, Role, Security, SendError, SocketType,
};

fn client_cfg() -> Config<'static> {
    Config::new(SocketType::Dealer).with_security(Security::PlainClient {
        username: b"admin",
        password: b"secret",
    })
}

fn server_cfg() -> Config<'static> {
    Config::new(SocketType::Router).with_security(Security::PlainServer)
}

fn auth_of(evs: &[Ev]) -> Option<(Vec<u8>, Vec<u8>)> {
    evs.iter().find_map(|e| match e {
        Ev::Auth(u, p) => Some((u.clone(), p.clone())),
        _ => None,
    })
}

#[test]
fn plain_greeting_names_plain_and_only_the_server_sets_as_server() {
    let mut c = session(&client_cfg(), Role::Connected, 1024, 1024);
    let mut s = session(&server_cfg(), Role::Accepted, 1024, 1024);
    let (gc, gs) = (take_output(&mut c), take_output(&mut s));
    assert_eq!(&gc[12..17], b"PLAIN");
    assert!(gc[17..32].iter().all(|&b| b == 0));
    assert_eq!((gc[32], gs[32]), (0, 1));
    assert_eq!(&gs[12..17], b"PLAIN");
}

#[test]
fn plain_handshake_hello_welcome_initiate_ready_bytes() {
    let mut p = Pair::new(&client_cfg(), &server_cfg());
    let wire = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = wire.clone();
    p.tamper = Some(Box::new(move |c2s, b| {
        log.borrow_mut().push((c2s, b.clone()));
        b
    }));
    p.run();
    // The server holds the handshake until the application decides.
    assert_eq!(
        auth_of(&p.server_events),
        Some((b"admin".to_vec(), b"secret".to_vec()))
    );
    assert!(!p.server.is_ready());
    p.server.accept_peer();
    p.handshake();
    let c2s: Vec<u8> = wire
        .borrow()
        .iter()
        .filter(|(d, _)| *d)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let s2c: Vec<u8> = wire
        .borrow()
        .iter()
        .filter(|(d, _)| !*d)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let mut hello = b"\x05HELLO\x05admin\x06secret".to_vec();
    hello.insert(0, hello.len() as u8);
    hello.insert(0, 0x04);
    let mut want_c2s = c2s[..64].to_vec();
    want_c2s.extend(hello);
    want_c2s.extend(command(
        b"INITIATE",
        &ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"")])[8..],
    ));
    assert_eq!(c2s, want_c2s);
    // WELCOME is exactly an 8-byte body, then READY with the server's metadata.
    let mut want_s2c = s2c[..64].to_vec();
    want_s2c.extend([0x04, 0x08, 0x07]);
    want_s2c.extend(b"WELCOME");
    want_s2c.extend(ready(&[(b"Socket-Type", b"ROUTER"), (b"Identity", b"")]));
    assert_eq!(s2c, want_s2c);
    // Messages flow both ways.
    p.client.send_frame(b"hi", false).unwrap();
    p.server.send_frame(b"yo", false).unwrap();
    p.run();
    assert_eq!(
        p.server_events.last(),
        Some(&Ev::Frame(b"hi".to_vec(), false))
    );
    assert_eq!(
        p.client_events.last(),
        Some(&Ev::Frame(b"yo".to_vec(), false))
    );
}

#[test]
fn plain_client_may_not_send_before_the_servers_ready() {
    let mut p = Pair::new(&client_cfg(), &server_cfg());
    p.run();
    assert_eq!(
        p.client.send_frame(b"early", false),
        Err(SendError::NotReady)
    );
    assert!(!p.client.can_send());
    p.server.accept_peer();
    p.run();
    assert!(p.client.can_send());
}

#[test]
fn rejected_credentials_send_error_with_the_zap_status_code() {
    let mut p = Pair::new(&client_cfg(), &server_cfg());
    p.run();
    p.server.reject_peer(b"400");
    p.run();
    assert_eq!(
        &p.client_events[..],
        [
            Ev::PeerError(b"400".to_vec()),
            Ev::Closed(CloseReason::AuthFailed)
        ]
    );
    assert_eq!(
        p.server_events.last(),
        Some(&Ev::Closed(CloseReason::AuthRejected))
    );
    assert!(!CloseReason::AuthFailed.should_reconnect());
}

#[test]
fn libzmq_malformed_error_from_plain_server_is_an_auth_failure() {
    // libzmq's PLAIN server writes "\5ERROR" in C, which the compiler reads as \x5E + "RROR".
    let mut c = session(&client_cfg(), Role::Connected, 1024, 1024);
    let mut g = peer_greeting();
    g[12..17].copy_from_slice(b"PLAIN");
    g[32] = 0;
    let mut input = g;
    input.extend([
        0x04, 0x09, 0x5e, b'R', b'R', b'O', b'R', 0x03, b'4', b'0', b'0',
    ]);
    let evs = feed_split(&mut c, &input, &[usize::MAX], Instant::ZERO);
    assert_eq!(evs.last(), Some(&Ev::Closed(CloseReason::AuthFailed)));
}

fn plain_greeting(as_server: bool) -> Vec<u8> {
    let mut g = peer_greeting();
    g[12..17].copy_from_slice(b"PLAIN");
    g[32] = u8::from(as_server);
    g
}

fn server_after(input: &[u8]) -> Vec<Ev> {
    let mut s = session(&server_cfg(), Role::Accepted, 1024, 1024);
    take_output(&mut s);
    let mut all = plain_greeting(false);
    all.extend_from_slice(input);
    feed_split(&mut s, &all, &[usize::MAX], Instant::ZERO)
}

#[test]
fn hello_with_anything_after_the_password_closes() {
    for bad in [
        &b"\x05admin\x06secretX"[..],
        b"\x05admin\x07secret",
        b"\x09admin",
        b"",
    ] {
        let evs = server_after(&command(b"HELLO", bad));
        assert_eq!(
            evs,
            [Ev::Closed(CloseReason::Protocol(
                ProtocolError::MalformedHello
            ))],
            "{bad:?}"
        );
    }
}

#[test]
fn empty_username_and_password_are_valid() {
    let evs = server_after(&command(b"HELLO", b"\x00\x00"));
    assert_eq!(auth_of(&evs), Some((vec![], vec![])));
}

#[test]
fn welcome_with_a_body_closes_the_client() {
    let mut c = session(&client_cfg(), Role::Connected, 1024, 1024);
    let mut input = plain_greeting(true);
    input.extend(command(b"WELCOME", b"x"));
    let evs = feed_split(&mut c, &input, &[usize::MAX], Instant::ZERO);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
}

#[test]
fn initiate_before_hello_or_ready_instead_of_initiate_closes() {
    let evs = server_after(&ready(&[(b"Socket-Type", b"DEALER")]));
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
    let evs = server_after(&command(b"INITIATE", b""));
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::UnexpectedCommand
        ))]
    );
}

#[test]
fn initiate_with_incompatible_socket_type_gets_error() {
    let mut s = session(&server_cfg(), Role::Accepted, 1024, 1024);
    take_output(&mut s);
    let mut input = plain_greeting(false);
    input.extend(command(b"HELLO", b"\x00\x00"));
    s.feed(&input, Instant::ZERO);
    drain(&mut s);
    s.accept_peer();
    take_output(&mut s);
    let mut meta = Vec::new();
    meta.extend(b"\x0bSocket-Type\x00\x00\x00\x03PUB");
    s.feed(&command(b"INITIATE", &meta), Instant::ZERO);
    assert_eq!(
        drain(&mut s),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::IncompatibleSocketType(SocketType::Pub)
        ))]
    );
    assert_eq!(
        take_output(&mut s),
        command(b"ERROR", b"\x18incompatible-socket-type")
    );
}

#[test]
fn plain_never_downgrades_to_null_or_zmtp_2() {
    // A NULL peer: mechanism mismatch, no HELLO ever leaves.
    let mut c = session(&client_cfg(), Role::Connected, 1024, 1024);
    take_output(&mut c);
    let evs = feed_split(&mut c, &peer_greeting(), &[usize::MAX], Instant::ZERO);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::MechanismMismatch
        ))]
    );
    assert!(take_output(&mut c).is_empty());
    // A ZMTP 2.0 peer.
    let mut c = session(&client_cfg(), Role::Connected, 1024, 1024);
    take_output(&mut c);
    let evs = feed_split(
        &mut c,
        &[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 1, 5],
        &[1],
        Instant::ZERO,
    );
    assert!(matches!(
        evs.as_slice(),
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Greeting(
            _
        )))]
    ));
    assert!(take_output(&mut c).is_empty());
}

#[test]
fn accept_and_reject_without_a_pending_request_do_nothing() {
    let mut p = Pair::new(&client_cfg(), &server_cfg());
    p.server.accept_peer();
    p.server.reject_peer(b"400");
    p.run();
    assert!(auth_of(&p.server_events).is_some());
    assert!(!p.server.is_closed());
}

#[test]
fn plain_handshake_is_split_agnostic() {
    let mut input = plain_greeting(false);
    input.extend(command(b"HELLO", b"\x05admin\x06secret"));
    let evs = feed_all_ways(
        &|| {
            let mut s = session(&server_cfg(), Role::Accepted, 256, 1024);
            take_output(&mut s);
            s
        },
        &input,
        9,
    );
    assert_eq!(evs, [Ev::Auth(b"admin".to_vec(), b"secret".to_vec())]);
}
