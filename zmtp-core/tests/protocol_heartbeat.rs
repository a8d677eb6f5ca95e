//! PROTOCOL.md §"Heartbeats (3.1)": PING/PONG, the peer's TTL, our heartbeat and the
//! handshake timeout, all on virtual time. Every test is named after the bullet it checks.

mod common;

use core::time::Duration;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::*;
use zmtp_core::wire::CommandError;
use zmtp_core::{CloseReason, Config, Instant, ProtocolError, Role, Session, SocketType};

// ------------------------------------------------------------------------------- helpers

/// A session with `cfg` that received a greeting (minor version `minor`) and READY from a
/// `peer` at time `at`; handshake event drained, output discarded.
fn active_with(cfg: &Config<'static>, peer: &str, minor: u8, at: Instant) -> Session<'static> {
    let mut s = session(cfg, Role::Connected, 4096, 4096);
    take_output(&mut s);
    let mut input = peer_greeting();
    input[11] = minor;
    input.extend(ready(&[(b"Socket-Type", peer.as_bytes())]));
    assert_eq!(s.feed(&input, at), input.len());
    let evs = drain(&mut s);
    assert!(
        matches!(evs.as_slice(), [Ev::Ready { minor: m, .. }] if *m == minor),
        "{evs:?}"
    );
    take_output(&mut s);
    s
}

/// A DEALER (talking to a ROUTER) with heartbeat options, handshake done at time 0.
fn heartbeating(
    ivl_ms: Option<u64>,
    timeout_ms: Option<u64>,
    ttl_ms: Option<u64>,
) -> Session<'static> {
    let mut cfg = Config::new(SocketType::Dealer);
    cfg.heartbeat_interval = ivl_ms.map(Duration::from_millis);
    cfg.heartbeat_timeout = timeout_ms.map(Duration::from_millis);
    cfg.heartbeat_ttl = ttl_ms.map(Duration::from_millis);
    active_with(&cfg, "ROUTER", 1, ms(0))
}

/// A PING from the peer: `04 size 04 'PING' ttl(2) context`.
fn ping(ttl_ds: u16, context: &[u8]) -> Vec<u8> {
    let mut data = ttl_ds.to_be_bytes().to_vec();
    data.extend_from_slice(context);
    command(b"PING", &data)
}

/// The PONG we must answer with, built by hand: `04 size 04 'PONG' context`.
fn pong(context: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x04,
        (5 + context.len()) as u8,
        0x04,
        b'P',
        b'O',
        b'N',
        b'G',
    ];
    v.extend_from_slice(context);
    v
}

/// The PING we send, built by hand: `04 07 04 'PING' ttl(2)`, empty context.
fn our_ping(ttl_ds: u16) -> Vec<u8> {
    let mut v = vec![0x04, 0x07, 0x04, b'P', b'I', b'N', b'G'];
    v.extend_from_slice(&ttl_ds.to_be_bytes());
    v
}

fn dealer_router() -> Session<'static> {
    ready_session(SocketType::Dealer, "ROUTER")
}

/// Calls `handle_timeout(at)` and returns the events and output it caused.
fn tick(s: &mut Session<'_>, at_ms: u64) -> (Vec<Ev>, Vec<u8>) {
    s.handle_timeout(ms(at_ms));
    let evs = drain(s);
    (evs, take_output(s))
}

/// Feeds `bytes` at `at_ms` and returns the events and output it caused.
fn feed_at(s: &mut Session<'_>, bytes: &[u8], at_ms: u64) -> (Vec<Ev>, Vec<u8>) {
    assert_eq!(s.feed(bytes, ms(at_ms)), bytes.len());
    let evs = drain(s);
    (evs, take_output(s))
}

/// Counts PING and PONG commands in a byte stream by their name.
fn count(stream: &[u8], name: &[u8; 4]) -> usize {
    stream
        .windows(5)
        .filter(|w| w[0] == 4 && &w[1..] == name)
        .count()
}

// ============================================== Heartbeats (3.1)
// - PING = name + 2-byte TTL in deciseconds + context (0-16 bytes). A PING body shorter than
//   7 bytes, or a context over 16 bytes: malformed, close (libzmq answers short PINGs with 16
//   bytes of stale memory: we must not).

#[test]
fn ping_is_name_2_byte_ttl_and_0_to_16_bytes_of_context() {
    // The shortest PING (7-byte body), a TTL, and the longest context are all valid.
    let ctx16: Vec<u8> = (0..16).collect();
    let cases = [
        (hex("04 07 04 50494e47 0000"), vec![]),
        (hex("04 08 04 50494e47 0102 41"), b"A".to_vec()),
        (ping(0xffff, &ctx16), ctx16.clone()),
    ];
    for (i, (p, ctx)) in cases.iter().enumerate() {
        let (evs, out) = feed_all_ways_out(&dealer_router, p, i as u64);
        assert!(evs.is_empty(), "{evs:?}");
        assert_eq!(&out, &pong(ctx));
    }
}

#[test]
fn ping_body_shorter_than_7_bytes_closes() {
    let short = [
        hex("04 05 04 50494e47"),    // `04 'PING'`: no TTL
        hex("04 06 04 50494e47 00"), // half a TTL
    ];
    for (i, p) in short.iter().enumerate() {
        let mut input = p.clone();
        input.extend(frame(0x00, b"lost"));
        let (evs, out) = feed_all_ways_out(&dealer_router, &input, i as u64);
        assert_eq!(
            evs,
            [Ev::Closed(CloseReason::Protocol(ProtocolError::Command(
                CommandError::MalformedPing
            )))],
            "{p:02x?}"
        );
        assert!(out.is_empty(), "short PING was answered: {out:02x?}");
    }
}

#[test]
fn short_ping_never_answered_with_a_stale_context() {
    // libzmq's bug: the PONG to a short PING carries the previous PING's 16 bytes.
    let stale: Vec<u8> = (0xa0..0xb0).collect();
    let mut s = dealer_router();
    let (evs, out) = feed_at(&mut s, &ping(0, &stale), 0);
    assert!(evs.is_empty());
    assert_eq!(out, pong(&stale));
    let (evs, out) = feed_at(&mut s, &hex("04 05 04 50494e47"), 10);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Command(
            CommandError::MalformedPing
        )))]
    );
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn ping_context_over_16_bytes_closes() {
    for (i, len) in [17usize, 18, 100, 253].into_iter().enumerate() {
        let input = ping(1, &vec![b'c'; len]);
        let (evs, out) = feed_all_ways_out(&dealer_router, &input, i as u64);
        assert_eq!(
            evs,
            [Ev::Closed(CloseReason::Protocol(ProtocolError::Command(
                CommandError::MalformedPing
            )))],
            "{len}"
        );
        assert!(out.is_empty(), "{len}: {out:02x?}");
    }
}

// - Answer every PING with PONG echoing the context exactly; PINGs may come from 3.0 peers too
//   (libzmq sends them whenever heartbeats are on).

#[test]
fn pong_echoes_ping_context_exactly() {
    for len in 0..=16usize {
        let ctx: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8 ^ 0xf0).collect();
        for ttl in [0u16, 1, 0x1234, 0xffff] {
            let (evs, out) = feed_all_ways_out(&dealer_router, &ping(ttl, &ctx), len as u64);
            assert!(evs.is_empty());
            assert_eq!(out, pong(&ctx), "context {ctx:02x?}");
        }
    }
    // Bytes on the wire for one case: PING `04 0a 04 'PING' 00 00 00 ff 41` -> PONG
    // `04 08 04 'PONG' 00 ff 41`.
    let (_, out) = feed_all_ways_out(&dealer_router, &hex("04 0a 04 50494e47 0000 00ff41"), 2);
    assert_eq!(out, hex("04 08 04 504f4e47 00ff41"));
}

#[test]
fn every_ping_is_answered() {
    let mut s = dealer_router();
    for (i, ctx) in [&b"one"[..], b"", b"three"].into_iter().enumerate() {
        let (evs, out) = feed_at(&mut s, &ping(0, ctx), i as u64 * 100);
        assert!(evs.is_empty());
        assert_eq!(out, pong(ctx));
    }
    assert!(s.is_ready());
}

#[test]
fn every_ping_is_answered_even_several_in_one_read() {
    // libzmq answers each PING; a peer may match PONGs to its contexts.
    let mut input = ping(0, b"one");
    input.extend(ping(0, b"two"));
    input.extend(frame(0x00, b"data"));
    input.extend(ping(0, b"three"));
    let mut s = dealer_router();
    let (evs, out) = feed_at(&mut s, &input, 0);
    assert_eq!(evs, [Ev::Frame(b"data".to_vec(), false)]);
    assert_eq!(
        out,
        [pong(b"one"), pong(b"two"), pong(b"three")].concat(),
        "PONGs written: {out:02x?}"
    );
}

#[test]
fn ping_answered_between_frames_of_a_message() {
    let mut input = frame(0x01, b"a");
    input.extend(ping(0, b"mid"));
    input.extend(frame(0x00, b"b"));
    let (evs, out) = feed_all_ways_out(&dealer_router, &input, 3);
    assert_eq!(
        evs,
        [
            Ev::Frame(b"a".to_vec(), true),
            Ev::Frame(b"b".to_vec(), false)
        ]
    );
    assert_eq!(out, pong(b"mid"));
}

#[test]
fn pong_from_the_peer_is_not_answered() {
    let mut input = command(b"PONG", b"ctx");
    input.extend(command(b"PONG", b""));
    let (evs, out) = feed_all_ways_out(&dealer_router, &input, 4);
    assert!(evs.is_empty());
    assert!(out.is_empty());
}

#[test]
fn pings_accepted_from_zmtp30_peers() {
    let make = || active_with(&Config::new(SocketType::Dealer), "ROUTER", 0, ms(0));
    let s = make();
    assert_eq!(s.peer_version(), Some((3, 0)));
    let (evs, out) = feed_all_ways_out(&make, &ping(0, b"v30"), 5);
    assert!(evs.is_empty(), "{evs:?}");
    assert_eq!(out, pong(b"v30"));
    // Its TTL is enforced too.
    let mut s = make();
    feed_at(&mut s, &ping(10, b""), 0);
    assert_eq!(tick(&mut s, 999).0, []);
    assert_eq!(tick(&mut s, 1000).0, [Ev::Closed(CloseReason::TtlExpired)]);
}

// - TTL: if the peer's PING carried TTL > 0, close when nothing at all arrives for TTL. Compute
//   in at least 32 bits (libzmq wraps for TTL > 655 ds).

#[test]
fn peer_ttl_closes_when_nothing_arrives_for_ttl() {
    let mut s = dealer_router();
    // TTL 10 ds = 1 s, counted from the PING's arrival at 5 s.
    let (_, out) = feed_at(&mut s, &ping(10, b""), 5_000);
    assert_eq!(out, pong(b""));
    assert_eq!(s.poll_timeout(), Some(ms(6_000)));
    assert_eq!(tick(&mut s, 5_999), (vec![], vec![]));
    assert!(s.is_ready());
    let (evs, out) = tick(&mut s, 6_000);
    assert_eq!(evs, [Ev::Closed(CloseReason::TtlExpired)]);
    assert!(out.is_empty(), "{out:02x?}");
    assert!(s.is_finished());
    assert!(s.close_reason().unwrap().should_reconnect());
}

#[test]
fn peer_ttl_zero_means_no_ttl() {
    let mut s = dealer_router();
    feed_at(&mut s, &ping(0, b"x"), 0);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(tick(&mut s, 86_400_000), (vec![], vec![]));
    assert!(s.is_ready());
}

#[test]
fn peer_ttl_restarted_by_any_incoming_byte() {
    let mut s = dealer_router();
    feed_at(&mut s, &ping(10, b""), 0);
    // One byte (the start of a data frame) at 0.9 s is life.
    assert_eq!(feed_at(&mut s, &[0x00], 900), (vec![], vec![]));
    assert_eq!(s.poll_timeout(), Some(ms(1_900)));
    assert_eq!(tick(&mut s, 1_000).0, []);
    // The rest of the frame at 1.8 s.
    assert_eq!(
        feed_at(&mut s, &[0x01, b'z'], 1_800).0,
        [Ev::Frame(b"z".to_vec(), false)]
    );
    assert_eq!(tick(&mut s, 2_799).0, []);
    assert_eq!(tick(&mut s, 2_800).0, [Ev::Closed(CloseReason::TtlExpired)]);
}

#[test]
fn peer_ttl_computed_in_32_bits_no_wrap_above_655_ds() {
    // 656 ds = 65.6 s; libzmq's `ttl * 100` in 16 bits wraps to 64 ms.
    let mut s = dealer_router();
    feed_at(&mut s, &ping(656, b""), 0);
    assert_eq!(s.poll_timeout(), Some(ms(65_600)));
    assert_eq!(tick(&mut s, 64).0, []);
    assert_eq!(tick(&mut s, 65_599).0, []);
    assert_eq!(
        tick(&mut s, 65_600).0,
        [Ev::Closed(CloseReason::TtlExpired)]
    );
    // The largest TTL: 65535 ds = 6553.5 s.
    let mut s = dealer_router();
    feed_at(&mut s, &ping(0xffff, b""), 0);
    assert_eq!(s.poll_timeout(), Some(ms(6_553_500)));
    assert_eq!(tick(&mut s, 6_553_499).0, []);
    assert_eq!(
        tick(&mut s, 6_553_500).0,
        [Ev::Closed(CloseReason::TtlExpired)]
    );
}

#[test]
fn peer_ttl_enforced_between_two_sessions() {
    // The client asks for a 3 s TTL in its PINGs; the server (no heartbeat of its own)
    // enforces it once the client falls silent.
    let mut c = Config::new(SocketType::Dealer);
    c.heartbeat_interval = Some(Duration::from_secs(1));
    c.heartbeat_ttl = Some(Duration::from_secs(3));
    let mut p = common::Pair::new(&c, &Config::new(SocketType::Router));
    let silent = Rc::new(Cell::new(false));
    let flag = silent.clone();
    p.tamper = Some(Box::new(
        move |c2s, bytes| {
            if c2s && flag.get() {
                Vec::new()
            } else {
                bytes
            }
        },
    ));
    p.handshake();
    p.advance(5_000); // the client's PING at 5 s arrives
    silent.set(true);
    p.advance(2_999);
    assert!(p.server.is_ready(), "{:?}", p.server_events);
    p.advance(1);
    assert_eq!(
        p.server_events.last(),
        Some(&Ev::Closed(CloseReason::TtlExpired))
    );
}

// - Our own heartbeat: interval, timeout and TTL options like libzmq's HEARTBEAT_IVL / TIMEOUT
//   / TTL. Any incoming byte counts as life.

#[test]
fn our_pings_on_the_interval() {
    let mut s = heartbeating(Some(1_000), None, None);
    assert_eq!(s.poll_timeout(), Some(ms(1_000)));
    assert_eq!(tick(&mut s, 999), (vec![], vec![]));
    for k in 1..=5u64 {
        let t = k * 1_000;
        let (evs, out) = tick(&mut s, t);
        assert!(evs.is_empty(), "{evs:?}");
        // `04 07 04 'PING' 00 00`: TTL 0, no context.
        assert_eq!(out, hex("04 07 04 50494e47 0000"), "at {t} ms");
        assert_eq!(our_ping(0), out);
        // The peer answers; nothing more until the next interval.
        feed_at(&mut s, &command(b"PONG", b""), t + 10);
        assert_eq!(tick(&mut s, t + 999), (vec![], vec![]));
    }
    assert!(s.is_ready());
}

#[test]
fn our_ping_carries_the_configured_ttl_in_deciseconds() {
    for (ttl_ms, ds) in [
        (5_000u64, 50u16),
        (100, 1),
        (65_600, 656),
        (6_553_500, 0xffff),
        (10_000_000, 0xffff), // capped
    ] {
        let mut s = heartbeating(Some(1_000), None, Some(ttl_ms));
        let (_, out) = tick(&mut s, 1_000);
        assert_eq!(out, our_ping(ds), "ttl {ttl_ms} ms");
    }
}

#[test]
fn heartbeat_timeout_closes_when_nothing_arrives() {
    let mut s = heartbeating(Some(1_000), Some(500), None);
    assert_eq!(tick(&mut s, 1_000).1, our_ping(0));
    assert_eq!(s.poll_timeout(), Some(ms(1_500)));
    assert_eq!(tick(&mut s, 1_499), (vec![], vec![]));
    let (evs, out) = tick(&mut s, 1_500);
    assert_eq!(evs, [Ev::Closed(CloseReason::HeartbeatTimeout)]);
    assert!(out.is_empty(), "{out:02x?}");
    assert!(s.is_finished());
}

#[test]
fn heartbeat_timeout_defaults_to_the_interval() {
    let mut s = heartbeating(Some(1_000), None, None);
    assert_eq!(tick(&mut s, 1_000).1, our_ping(0));
    assert_eq!(tick(&mut s, 1_999), (vec![], vec![]));
    assert_eq!(
        tick(&mut s, 2_000).0,
        [Ev::Closed(CloseReason::HeartbeatTimeout)]
    );
}

#[test]
fn heartbeat_timeout_longer_than_the_interval() {
    // Like libzmq: PINGs keep going on the interval; the timeout runs from the first
    // unanswered PING.
    let mut s = heartbeating(Some(1_000), Some(3_000), None);
    for t in [1_000, 2_000, 3_000] {
        assert_eq!(tick(&mut s, t), (vec![], our_ping(0)), "at {t}");
    }
    assert_eq!(tick(&mut s, 3_999).0, []);
    assert_eq!(
        tick(&mut s, 4_000).0,
        [Ev::Closed(CloseReason::HeartbeatTimeout)]
    );
}

#[test]
fn any_incoming_byte_counts_as_life() {
    let mut s = heartbeating(Some(1_000), Some(500), None);
    assert_eq!(tick(&mut s, 1_000).1, our_ping(0));
    // Not a PONG: one byte of a data frame at 1.4 s.
    assert_eq!(feed_at(&mut s, &[0x00], 1_400), (vec![], vec![]));
    assert_eq!(tick(&mut s, 1_500), (vec![], vec![]));
    assert_eq!(tick(&mut s, 1_999).0, []);
    // The next PING at 2 s; the rest of the frame at 2.3 s.
    assert_eq!(tick(&mut s, 2_000).1, our_ping(0));
    assert_eq!(
        feed_at(&mut s, &[0x02, b'o', b'k'], 2_300).0,
        [Ev::Frame(b"ok".to_vec(), false)]
    );
    assert_eq!(tick(&mut s, 2_500), (vec![], vec![]));
    // An unknown command counts too.
    assert_eq!(tick(&mut s, 3_000).1, our_ping(0));
    feed_at(&mut s, &command(b"XYZZY", b""), 3_499);
    assert_eq!(tick(&mut s, 3_500), (vec![], vec![]));
    // Then silence: PING at 4 s, closed at 4.5 s.
    assert_eq!(tick(&mut s, 4_000).1, our_ping(0));
    assert_eq!(tick(&mut s, 4_499).0, []);
    assert_eq!(
        tick(&mut s, 4_500).0,
        [Ev::Closed(CloseReason::HeartbeatTimeout)]
    );
}

#[test]
fn no_heartbeats_without_an_interval() {
    for ivl in [None, Some(0)] {
        let mut s = heartbeating(ivl, Some(500), Some(3_000));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(tick(&mut s, 3_600_000), (vec![], vec![]));
        assert!(s.is_ready());
    }
}

#[test]
fn no_pings_before_the_handshake_finishes() {
    // A PING before READY would be closed on by the peer.
    let mut cfg = Config::new(SocketType::Dealer);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    let mut s = session(&cfg, Role::Connected, 4096, 4096);
    take_output(&mut s);
    feed_at(&mut s, &peer_greeting(), 0);
    for t in (100..=5_000).step_by(100) {
        assert_eq!(tick(&mut s, t), (vec![], vec![]), "at {t}");
    }
    // The interval starts once the handshake is done.
    feed_at(&mut s, &ready(&[(b"Socket-Type", b"ROUTER")]), 5_050);
    assert_eq!(s.poll_timeout(), Some(ms(5_150)));
    assert_eq!(tick(&mut s, 5_150).1, our_ping(0));
}

#[test]
fn two_sessions_with_heartbeats_stay_up() {
    let mut cfg = Config::new(SocketType::Dealer);
    cfg.heartbeat_interval = Some(Duration::from_secs(1));
    cfg.heartbeat_timeout = Some(Duration::from_secs(3));
    cfg.heartbeat_ttl = Some(Duration::from_secs(3));
    let mut srv = cfg;
    srv.socket_type = SocketType::Router;
    let mut p = common::Pair::new(&cfg, &srv);
    let streams = Rc::new(RefCell::new((Vec::new(), Vec::new())));
    let rec = streams.clone();
    p.tamper = Some(Box::new(move |c2s, bytes| {
        let mut r = rec.borrow_mut();
        if c2s { &mut r.0 } else { &mut r.1 }.extend_from_slice(&bytes);
        bytes
    }));
    p.handshake();
    p.advance(60_000);
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    assert!(p.server.is_ready(), "{:?}", p.server_events);
    let (c2s, s2c) = streams.borrow().clone();
    for (dir, stream, other) in [("c2s", &c2s, &s2c), ("s2c", &s2c, &c2s)] {
        assert_eq!(count(stream, b"PING"), 60, "{dir}");
        assert_eq!(count(other, b"PONG"), 60, "{dir}");
    }
}

#[test]
fn heartbeat_timeout_closes_when_the_peer_goes_silent() {
    let mut c = Config::new(SocketType::Dealer);
    c.heartbeat_interval = Some(Duration::from_secs(1));
    c.heartbeat_timeout = Some(Duration::from_millis(500));
    let mut p = common::Pair::new(&c, &Config::new(SocketType::Router));
    let silent = Rc::new(Cell::new(false));
    let flag = silent.clone();
    p.tamper = Some(Box::new(move |c2s, bytes| {
        if !c2s && flag.get() {
            Vec::new()
        } else {
            bytes
        }
    }));
    p.handshake();
    p.advance(3_000); // PINGs at 1, 2, 3 s answered
    assert!(p.client.is_ready());
    silent.set(true);
    p.advance(1_499); // PING at 4 s, its PONG lost
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    p.advance(1);
    assert_eq!(
        p.client_events.last(),
        Some(&Ev::Closed(CloseReason::HeartbeatTimeout))
    );
}

// - A handshake that does not finish within the handshake timeout (default 30 s, like libzmq):
//   close.

#[test]
fn handshake_timeout_default_is_30_s_like_libzmq() {
    for ty in SocketType::ALL {
        assert_eq!(
            Config::new(ty).handshake_timeout,
            Some(Duration::from_secs(30))
        );
    }
}

#[test]
fn handshake_not_finished_in_timeout_closes() {
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        4096,
        4096,
    );
    assert_eq!(take_output(&mut s).len(), 64);
    assert_eq!(s.poll_timeout(), Some(ms(30_000)));
    assert_eq!(tick(&mut s, 29_999), (vec![], vec![]));
    let (evs, out) = tick(&mut s, 30_000);
    assert_eq!(evs, [Ev::Closed(CloseReason::HandshakeTimeout)]);
    // Our held READY is never sent.
    assert!(out.is_empty(), "{out:02x?}");
    assert!(s.is_finished());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn handshake_timeout_also_runs_after_the_greeting() {
    // The peer's greeting arrives, its READY never does.
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        4096,
        4096,
    );
    take_output(&mut s);
    feed_at(&mut s, &peer_greeting(), 1_000);
    assert_eq!(s.poll_timeout(), Some(ms(30_000)));
    assert_eq!(tick(&mut s, 29_999).0, []);
    assert_eq!(
        tick(&mut s, 30_000).0,
        [Ev::Closed(CloseReason::HandshakeTimeout)]
    );
}

#[test]
fn trickling_bytes_do_not_extend_the_handshake_timeout() {
    // One byte a second: the handshake still has to be done 30 s after the start.
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        4096,
        4096,
    );
    take_output(&mut s);
    let mut input = peer_greeting();
    input.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
    for (k, b) in input.iter().enumerate().take(29) {
        assert_eq!(feed_at(&mut s, &[*b], k as u64 * 1_000 + 500).0, []);
        assert_eq!(tick(&mut s, k as u64 * 1_000 + 999).0, []);
    }
    assert_eq!(
        tick(&mut s, 30_000).0,
        [Ev::Closed(CloseReason::HandshakeTimeout)]
    );
}

#[test]
fn finished_handshake_cancels_the_handshake_timeout() {
    let mut s = active_with(&Config::new(SocketType::Dealer), "ROUTER", 1, ms(29_999));
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(tick(&mut s, 30_000), (vec![], vec![]));
    assert_eq!(tick(&mut s, 3_600_000), (vec![], vec![]));
    assert!(s.is_ready());
}

#[test]
fn handshake_timeout_is_configurable_and_none_disables_it() {
    let mut cfg = Config::new(SocketType::Dealer);
    cfg.handshake_timeout = Some(Duration::from_secs(5));
    let mut s = session(&cfg, Role::Connected, 4096, 4096);
    assert_eq!(tick(&mut s, 4_999).0, []);
    assert_eq!(
        tick(&mut s, 5_000).0,
        [Ev::Closed(CloseReason::HandshakeTimeout)]
    );
    cfg.handshake_timeout = None;
    let mut s = session(&cfg, Role::Connected, 4096, 4096);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(tick(&mut s, 86_400_000).0, []);
    assert!(!s.is_closed());
}

#[test]
fn handshake_timeout_between_two_sessions_when_the_peer_never_answers() {
    let mut p = common::Pair::new(
        &Config::new(SocketType::Dealer),
        &Config::new(SocketType::Router),
    );
    // Everything the server writes is lost.
    p.tamper = Some(Box::new(|c2s, bytes| if c2s { bytes } else { Vec::new() }));
    p.advance(29_999);
    assert!(!p.client.is_closed() && !p.server.is_closed());
    p.advance(1);
    assert_eq!(p.client_events, [Ev::Closed(CloseReason::HandshakeTimeout)]);
    assert_eq!(p.server_events, [Ev::Closed(CloseReason::HandshakeTimeout)]);
}

#[test]
fn ping_read_after_its_ttl_already_ran_out_closes_at_once() {
    // Found by the socket fuzz target: bytes committed at t=0 but read much later left a
    // TTL deadline in the past after handle_timeout.
    let mut s = ready_session(SocketType::Pull, "PUSH");
    s.commit_received(0, ms(0)).unwrap();
    let ping = command(b"PING", &[0, 13]); // TTL 1.3 s
    let window = s.recv_window();
    window[..ping.len()].copy_from_slice(&ping);
    s.commit_received(ping.len(), ms(0)).unwrap();
    s.handle_timeout(ms(1_340_500)); // nothing read yet: time passes
    assert_eq!(drain(&mut s), [Ev::Closed(CloseReason::TtlExpired)]);
    assert_eq!(s.poll_timeout(), None);
}
