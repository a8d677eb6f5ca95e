//! `Socket::set_take_messages` / `take_messages`: one-frame messages held in the sessions
//! and taken straight from there, the others queued for `recv`, with each peer's order,
//! multipart atomicity, SUB filtering, limits and end of stream as `recv` alone gives them.

mod common;

use common::net::Net;
use zmtp_core::socket::{SocketConfig, SocketEvent, SocketRecvError};
use zmtp_core::{CloseReason, Config, SocketType};

fn net(ty: SocketType) -> Net {
    let mut n = Net::with_subscriptions(
        SocketConfig::new(Config::new(ty)),
        4,
        (1024, 1024, 8192),
        16 * 1024,
        0,
    );
    assert!(n.socket.set_take_messages(true));
    n
}

/// Everything receivable, as a driver in take mode gets it: queued messages with `recv`,
/// then held ones with `take_messages` (at most `per_take` at a time), until neither gives
/// more. Each message with its sender's index (held ones: looked up by content).
fn drain(n: &mut Net, per_take: usize) -> Vec<Vec<Vec<u8>>> {
    let mut got = Vec::new();
    loop {
        n.run();
        let mut progress = false;
        while let Ok(m) = n.socket.recv() {
            got.push(m.frames().map(<[u8]>::to_vec).collect());
            progress = true;
        }
        let k = n
            .socket
            .take_messages(per_take, |_, f| got.push(vec![f.to_vec()]));
        assert!(k <= per_take);
        if k == 0 && !progress {
            return got;
        }
    }
}

fn msgs(v: &[&[&[u8]]]) -> Vec<Vec<Vec<u8>>> {
    v.iter()
        .map(|m| m.iter().map(|f| f.to_vec()).collect())
        .collect()
}

#[test]
fn only_some_types_take() {
    for (ty, ok) in [
        (SocketType::Pull, true),
        (SocketType::Dealer, true),
        (SocketType::Pair, true),
        (SocketType::Sub, true),
        (SocketType::XSub, true),
        (SocketType::Router, false),
        (SocketType::Req, false),
        (SocketType::Rep, false),
        (SocketType::XPub, false),
    ] {
        let mut n = Net::with_subscriptions(
            SocketConfig::new(Config::new(ty)),
            2,
            (1024, 1024, 8192),
            16 * 1024,
            8192,
        );
        assert_eq!(n.socket.set_take_messages(true), ok, "{ty:?}");
        assert!(!n.socket.set_take_messages(false));
    }
}

#[test]
fn one_frame_messages_are_held_for_take_and_multipart_ones_queued_in_order() {
    let mut n = net(SocketType::Pull);
    n.connect(SocketType::Push, b"");
    n.remotes[0].send(&[b"a1"]);
    n.remotes[0].send(&[b"m1", b"m2"]);
    n.remotes[0].send(&[b"a2"]);
    n.remotes[0].send(&[b"a3"]);
    n.remotes[0].send(&[b"n1", b"n2", b"n3"]);
    n.run();
    // "a1" is held at the front: nothing queued behind it yet.
    assert_eq!(n.socket.recv().err(), Some(SocketRecvError::WouldBlock));
    let got = drain(&mut n, 1);
    assert_eq!(
        got,
        msgs(&[
            &[b"a1"],
            &[b"m1", b"m2"],
            &[b"a2"],
            &[b"a3"],
            &[b"n1", b"n2", b"n3"]
        ])
    );
}

#[test]
fn each_peer_keeps_its_order_and_every_peer_is_served() {
    let mut n = net(SocketType::Pull);
    n.connect(SocketType::Push, b"");
    n.connect(SocketType::Push, b"");
    for i in 0..20u8 {
        n.remotes[0].send(&[&[0, i]]);
        if i % 5 == 0 {
            n.remotes[1].send(&[&[1, i], b"more"]);
        } else {
            n.remotes[1].send(&[&[1, i]]);
        }
    }
    let got = drain(&mut n, 3);
    assert_eq!(got.len(), 40);
    for peer in 0..2u8 {
        let seq: Vec<u8> = got
            .iter()
            .filter(|m| m[0][0] == peer)
            .map(|m| m[0][1])
            .collect();
        assert_eq!(seq, (0..20).collect::<Vec<_>>(), "peer {peer}");
    }
    // Turns: the first ten messages are not all from one peer.
    assert!(got[..10].iter().any(|m| m[0][0] == 0));
    assert!(got[..10].iter().any(|m| m[0][0] == 1));
    // Multipart messages whole.
    for m in got.iter().filter(|m| m[0][0] == 1 && m[0][1] % 5 == 0) {
        assert_eq!(m.len(), 2);
        assert_eq!(m[1], b"more");
    }
}

#[test]
fn take_stops_at_its_limit_and_continues_later() {
    let mut n = net(SocketType::Dealer);
    n.connect(SocketType::Router, b"");
    for i in 0..5u8 {
        n.remotes[0].send(&[&[i]]);
    }
    n.run();
    let mut got = Vec::new();
    assert_eq!(n.socket.take_messages(2, |_, f| got.push(f.to_vec())), 2);
    assert_eq!(n.socket.take_messages(0, |_, f| got.push(f.to_vec())), 0);
    assert_eq!(n.socket.take_messages(10, |_, f| got.push(f.to_vec())), 3);
    assert_eq!(n.socket.take_messages(10, |_, f| got.push(f.to_vec())), 0);
    assert_eq!(got, [[0], [1], [2], [3], [4]]);
}

#[test]
fn held_input_fills_the_receive_buffer_then_reading_stops() {
    let mut n = net(SocketType::Pull);
    n.connect(SocketType::Push, b"");
    let h = n.remotes[0].handle;
    for _ in 0..200 {
        n.remotes[0].send(&[&[7u8; 20]]);
    }
    n.run();
    // 200 messages of 22 bytes on the wire do not fit the 1 KiB receive buffer: the
    // window is shut until some are taken (back-pressure), nothing is lost.
    assert!(n.socket.recv_window(h).len() < 22);
    let got = drain(&mut n, 1000);
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|m| m == &[vec![7u8; 20]]));
}

#[test]
fn sub_filters_held_messages() {
    let mut n = net(SocketType::Sub);
    n.connect(SocketType::Pub, b"");
    n.socket.subscribe(b"x").unwrap();
    n.run();
    for t in [&b"xa"[..], b"yb", b"xc", b"", b"x"] {
        n.remotes[0].send(&[t]);
    }
    n.remotes[0].send(&[b"ym", b"1"]);
    n.remotes[0].send(&[b"xm", b"2"]);
    let got = drain(&mut n, 10);
    assert_eq!(got, msgs(&[&[b"xa"], &[b"xc"], &[b"x"], &[b"xm", b"2"]]));
}

#[test]
fn end_of_stream_is_reported_after_the_held_messages() {
    let mut n = net(SocketType::Pull);
    n.connect(SocketType::Push, b"");
    let h = n.remotes[0].handle;
    n.remotes[0].send(&[b"one"]);
    n.remotes[0].send(&[b"two"]);
    n.run();
    n.socket_events.clear();
    n.kill(0);
    assert!(
        !n.socket_events
            .iter()
            .any(|e| matches!(e, SocketEvent::PeerClosed(..))),
        "closed before its messages were taken: {:?}",
        n.socket_events
    );
    let got = drain(&mut n, 1);
    assert_eq!(got, msgs(&[&[b"one"], &[b"two"]]));
    assert!(n
        .socket_events
        .contains(&SocketEvent::PeerClosed(h, CloseReason::Eof)));
}

#[test]
fn peers_take_turns_within_one_call() {
    let mut n = net(SocketType::Pull);
    n.connect(SocketType::Push, b"");
    n.connect(SocketType::Push, b"");
    for i in 0..100u8 {
        n.remotes[0].send(&[&[0, i]]);
        n.remotes[1].send(&[&[1, i]]);
    }
    n.run();
    let mut from = [0usize; 2];
    assert_eq!(
        n.socket
            .take_messages(100, |_, f| from[usize::from(f[0])] += 1),
        100
    );
    // Turns of at most 32 messages: neither peer has all the call's room.
    assert!(from[0] >= 32 && from[1] >= 32, "{from:?}");
    let rest = drain(&mut n, 1000);
    assert_eq!(rest.len(), 100);
}
