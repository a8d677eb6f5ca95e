//! The reason of a peer's ERROR command reaches the application through the socket
//! (`Socket::peer_error_reason`), for a refused PLAIN handshake (the ZAP status code) and for
//! an ERROR during traffic.

mod common;

use common::net::{slots, Net};
use common::{drain, leak, Ev};
use zmtp_core::socket::{PeerHandle, Socket, SocketConfig, SocketEvent};
use zmtp_core::{Buffers, CloseReason, Config, Instant, Role, Security, Session, SocketType};

/// Moves bytes both ways until nothing moves; returns the session's events.
fn shuttle(socket: &mut Socket<'_, '_>, h: PeerHandle, s: &mut Session<'_>) -> Vec<Ev> {
    let mut evs = Vec::new();
    loop {
        let mut moved = 0;
        let out = socket.poll_transmit(h).to_vec();
        let n = s.feed(&out, Instant::ZERO);
        socket.mark_transmitted(h, n).unwrap();
        moved += n;
        evs.extend(drain(s));
        let out = s.poll_transmit().to_vec();
        let n = socket.feed(h, &out, Instant::ZERO);
        s.mark_transmitted(n).unwrap();
        moved += n;
        if socket.is_finished(h) && !s.is_closed() {
            s.handle_eof();
            evs.extend(drain(s));
        }
        if moved == 0 {
            return evs;
        }
    }
}

fn events(socket: &mut Socket<'_, '_>) -> Vec<SocketEvent> {
    std::iter::from_fn(|| socket.poll_event()).collect()
}

#[test]
fn a_refused_plain_client_reads_the_servers_zap_status() {
    let cfg = Config::new(SocketType::Dealer).with_security(Security::PlainClient {
        username: b"admin",
        password: b"wrong",
    });
    let mut socket = Socket::new(SocketConfig::new(cfg), slots(1, 1024, 1024, 4096));
    let h = socket.add_peer(Role::Connected, Instant::ZERO).unwrap();
    let server_cfg = Config::new(SocketType::Router).with_security(Security::PlainServer);
    let mut server = Session::new(
        &server_cfg,
        Role::Accepted,
        Buffers {
            rx: leak(1024),
            tx: leak(1024),
        },
        Instant::ZERO,
    )
    .unwrap();
    let evs = shuttle(&mut socket, h, &mut server);
    assert!(
        evs.contains(&Ev::Auth(b"admin".to_vec(), b"wrong".to_vec())),
        "{evs:?}"
    );
    assert_eq!(socket.peer_error_reason(h), None, "not closed yet");
    server.reject_peer(b"400");
    shuttle(&mut socket, h, &mut server);
    assert_eq!(
        events(&mut socket),
        [SocketEvent::PeerClosed(h, CloseReason::AuthFailed)]
    );
    assert_eq!(socket.peer_error_reason(h), Some(&b"400"[..]));
    socket.remove_peer(h);
    assert_eq!(socket.peer_error_reason(h), None, "gone with the peer");
}

#[test]
fn an_error_during_traffic_is_readable_until_the_peer_is_removed() {
    let mut n = Net::new(SocketConfig::new(Config::new(SocketType::Pull)), 2);
    let a = n.connect(SocketType::Push, b"");
    let b = n.connect(SocketType::Push, b"");
    n.remotes[a].send(&[b"before"]);
    n.remotes[a].session.close_with_error(b"shutting-down");
    n.run();
    let ha = n.remotes[a].handle;
    let hb = n.remotes[b].handle;
    assert!(
        n.socket_events
            .contains(&SocketEvent::PeerClosed(ha, CloseReason::PeerError)),
        "{:?}",
        n.socket_events
    );
    assert_eq!(n.socket.peer_error_reason(ha), Some(&b"shutting-down"[..]));
    assert_eq!(
        n.socket.peer_error_reason(hb),
        None,
        "the other peer is fine"
    );
    // The message before the ERROR is still delivered.
    let m = n.socket.recv().unwrap();
    assert_eq!(m.frames().collect::<Vec<_>>(), [&b"before"[..]]);
    n.socket.remove_peer(ha);
    assert_eq!(n.socket.peer_error_reason(ha), None);
}

#[test]
fn a_peer_that_just_hangs_up_has_no_error_reason() {
    let mut n = Net::new(SocketConfig::new(Config::new(SocketType::Pull)), 1);
    let a = n.connect(SocketType::Push, b"");
    n.kill(a);
    let h = n.remotes[a].handle;
    assert!(n
        .socket_events
        .contains(&SocketEvent::PeerClosed(h, CloseReason::Eof)));
    assert_eq!(n.socket.peer_error_reason(h), None);
}

#[test]
fn the_reason_of_libzmqs_malformed_plain_error_is_recovered() {
    // libzmq's PLAIN server writes "\5ERROR" in C, read as \x5E + "RROR" (see plain.rs).
    let cfg = Config::new(SocketType::Dealer).with_security(Security::PlainClient {
        username: b"admin",
        password: b"secret",
    });
    let mut c = common::session(&cfg, Role::Connected, 1024, 1024);
    let mut input = common::peer_greeting();
    input[12..17].copy_from_slice(b"PLAIN");
    input[32] = 0;
    input.extend([
        0x04, 0x09, 0x5e, b'R', b'R', b'O', b'R', 0x03, b'4', b'0', b'0',
    ]);
    let evs = common::feed_split(&mut c, &input, &[usize::MAX], Instant::ZERO);
    assert_eq!(evs.last(), Some(&Ev::Closed(CloseReason::AuthFailed)));
    assert_eq!(c.peer_error_reason(), Some(&b"400"[..]));
    // Anything else malformed: the raw body.
    let mut c = common::session(&cfg, Role::Connected, 1024, 1024);
    input.truncate(64);
    input.extend([0x04, 0x07, 0x5e, b'R', b'R', b'O', b'R', 0x09, b'4']);
    common::feed_split(&mut c, &input, &[usize::MAX], Instant::ZERO);
    assert_eq!(c.peer_error_reason(), Some(&b"\x5eRROR\x094"[..]));
}
