//! PROTOCOL.md §"Commands and the NULL handshake" and §"Metadata (READY, INITIATE)" (what
//! applies to a NULL session: READY metadata, the Socket-Type table, and the Identity rules the
//! session enforces). Every test is named after the bullet it checks.

mod common;

use common::*;
use zmtp_core::wire::{CommandError, MetadataError};
use zmtp_core::{
    CloseReason, Config, Event, Instant, ProtocolError, Role, SendError, Session, SocketType,
};

use std::cell::RefCell;
use std::rc::Rc;

use SocketType::*;

// ------------------------------------------------------------------------------- helpers

/// A fresh session of type `ours` whose own greeting has already been written out, so what it
/// writes from now on is what the peer's bytes caused.
fn fresh(ours: SocketType) -> Session<'static> {
    let mut s = session(&Config::new(ours), Role::Connected, 4096, 4096);
    assert_eq!(take_output(&mut s).len(), 64);
    s
}

/// The peer's greeting followed by `rest`.
fn after_greeting(rest: &[&[u8]]) -> Vec<u8> {
    let mut v = peer_greeting();
    for r in rest {
        v.extend_from_slice(r);
    }
    v
}

/// The ERROR command frame with `reason`, built by hand: `04 size 05 'ERROR' len reason`.
fn error_frame(reason: &[u8]) -> Vec<u8> {
    let mut data = vec![reason.len() as u8];
    data.extend_from_slice(reason);
    command(b"ERROR", &data)
}

/// RFC 37: "error-reason = OCTET 0*255VCHAR"; PROTOCOL.md: a *short* reason.
fn assert_short_vchar_reason(reason: &[u8]) {
    assert!(
        !reason.is_empty() && reason.len() <= 64,
        "reason not short: {reason:?}"
    );
    assert!(
        reason.iter().all(|b| (0x21..=0x7e).contains(b)),
        "reason not VCHAR: {reason:?}"
    );
}

/// The READY a session of type `ty` with identity `id` must send, built by hand.
fn expected_ready(ty: SocketType, id: &[u8]) -> Vec<u8> {
    match ty {
        Req | Dealer | Router => {
            ready(&[(b"Socket-Type", ty.as_str().as_bytes()), (b"Identity", id)])
        }
        _ => ready(&[(b"Socket-Type", ty.as_str().as_bytes())]),
    }
}

/// Our 64-byte NULL greeting, built by hand.
fn our_greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// The raw property bytes for `name` and `value`.
fn prop(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut m = vec![name.len() as u8];
    m.extend_from_slice(name);
    m.extend_from_slice(&(value.len() as u32).to_be_bytes());
    m.extend_from_slice(value);
    m
}

/// READY whose metadata is `meta` (raw bytes, possibly malformed).
fn raw_ready(meta: &[u8]) -> Vec<u8> {
    command(b"READY", meta)
}

fn closed(e: ProtocolError) -> Vec<Ev> {
    vec![Ev::Closed(CloseReason::Protocol(e))]
}

fn cmd_err(e: CommandError) -> ProtocolError {
    ProtocolError::Command(e)
}

fn meta_err(e: MetadataError) -> ProtocolError {
    ProtocolError::Command(CommandError::Metadata(e))
}

// ============================================== Commands and the NULL handshake
// - A command name is `1 byte length + 1-255 ASCII letters`; names compare case-sensitively
//   (`ping` is an unknown command).

#[test]
fn command_name_is_1_to_255_ascii_letters() {
    let long: Vec<u8> = (0..255).map(|i| b'A' + (i % 26) as u8).collect();
    let mut lower = long.clone();
    lower.make_ascii_lowercase();
    let mut input = command(b"X", b"");
    input.extend(command(b"Z", &[1, 2, 3]));
    input.extend(command(&long, b"data"));
    input.extend(command(&lower, b""));
    input.extend(command(b"AbCdEfGhIjKlMnOpQrStUvWxYz", &[0; 300]));
    input.extend(frame(0x00, b"after"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Dealer, "ROUTER"), &input, 1);
    assert_eq!(evs, [Ev::Frame(b"after".to_vec(), false)]);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn command_name_with_non_letter_closes() {
    let bad: [&[u8]; 8] = [
        b"PING1",
        b"X-Y",
        b"PI NG",
        b"READY.",
        b"A\x00",
        b"\x7f",
        b"\xc3\xa9",
        b"_",
    ];
    for (i, name) in bad.iter().enumerate() {
        // After the handshake.
        let mut input = command(name, b"\x00\x00");
        input.extend(frame(0x00, b"lost"));
        let evs = feed_all_ways(&|| ready_session(Dealer, "ROUTER"), &input, i as u64);
        assert_eq!(evs, closed(cmd_err(CommandError::InvalidName)), "{name:?}");
        // During the handshake.
        let input = after_greeting(&[&command(name, b"")]);
        let evs = feed_all_ways(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(cmd_err(CommandError::InvalidName)), "{name:?}");
    }
}

#[test]
fn empty_command_name_closes_after_handshake() {
    // `04 00` (no body) and `04 01 00` (name length 0).
    for (i, input) in [hex("04 00"), hex("04 01 00"), hex("04 03 00 41 42")]
        .iter()
        .enumerate()
    {
        let evs = feed_all_ways(&|| ready_session(Dealer, "ROUTER"), input, i as u64);
        assert_eq!(
            evs,
            closed(cmd_err(CommandError::EmptyName)),
            "{input:02x?}"
        );
    }
}

#[test]
fn lowercase_ping_is_unknown_command() {
    // A real PING would be answered with `04 05 04 PONG ctx` and arm a 1 s TTL.
    let mut input = command(b"ping", &[0x00, 0x0a, b'c', b't', b'x']);
    input.extend(frame(0x00, b"still-up"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Dealer, "ROUTER"), &input, 2);
    assert_eq!(evs, [Ev::Frame(b"still-up".to_vec(), false)]);
    assert!(out.is_empty(), "lowercase ping was answered: {out:02x?}");

    let mut s = ready_session(Dealer, "ROUTER");
    s.feed(&command(b"ping", &[0x00, 0x0a]), ms(0));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None, "lowercase ping armed a TTL");
    s.handle_timeout(ms(3_600_000));
    assert!(drain(&mut s).is_empty());
    assert!(s.is_ready());
}

#[test]
fn command_names_compare_case_sensitively() {
    // Every known name in another case is an unknown command, ignored after the handshake:
    // `error` is not fatal, `Ping` not answered, `subscribe` not a subscription.
    let mut input = Vec::new();
    input.extend(command(b"Ping", &[0, 0]));
    input.extend(command(b"PinG", &[0, 0]));
    input.extend(command(b"pong", b""));
    input.extend(command(b"error", b"\x03bye"));
    input.extend(command(b"Error", b"\x03bye"));
    input.extend(command(b"ready", &prop(b"Socket-Type", b"SUB")));
    input.extend(command(b"subscribe", b"topic"));
    input.extend(command(b"Cancel", b"topic"));
    input.extend(command(b"SUBSCRIBE", b"real"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Pub, "SUB"), &input, 3);
    assert_eq!(evs, [Ev::Subscribe(b"real".to_vec())]);
    assert!(out.is_empty(), "{out:02x?}");
}

#[test]
fn lowercase_ready_during_handshake_closes() {
    let input = after_greeting(&[&command(b"ready", &prop(b"Socket-Type", b"ROUTER"))]);
    let evs = feed_all_ways(&|| fresh(Dealer), &input, 4);
    assert_eq!(evs, closed(ProtocolError::UnexpectedCommand));
}

// - NULL: both sides send READY right after the greeting; we may send messages right after our
//   own READY has been queued, and the peer's READY may arrive in the same read as its first
//   messages.

#[test]
fn both_sides_send_ready_right_after_the_greeting() {
    for ty in SocketType::ALL {
        // Before the peer's greeting only our greeting goes out.
        let mut s = session(&Config::new(ty), Role::Connected, 4096, 4096);
        assert_eq!(take_output(&mut s), our_greeting(), "{ty}");
        // The peer's greeting alone (no READY from it yet) releases our READY.
        let (evs, out) = feed_all_ways_out(&|| fresh(ty), &peer_greeting(), 5);
        assert!(evs.is_empty(), "{ty}: {evs:?}");
        assert_eq!(out, expected_ready(ty, b""), "{ty}");
    }

    // Two sessions: each stream is exactly greeting + READY, and both finish.
    let streams = Rc::new(RefCell::new((Vec::new(), Vec::new())));
    let mut p = common::Pair::new(&Config::new(Dealer), &Config::new(Router));
    let rec = streams.clone();
    p.tamper = Some(Box::new(move |c2s, bytes| {
        let mut r = rec.borrow_mut();
        if c2s { &mut r.0 } else { &mut r.1 }.extend_from_slice(&bytes);
        bytes
    }));
    p.handshake();
    let (c2s, s2c) = streams.borrow().clone();
    assert_eq!(c2s, [our_greeting(), expected_ready(Dealer, b"")].concat());
    assert_eq!(s2c, [our_greeting(), expected_ready(Router, b"")].concat());
}

#[test]
fn we_may_send_right_after_our_ready_is_queued() {
    let mut s = fresh(Dealer);
    // Our READY is not queued before the peer's greeting: nothing may be sent yet.
    assert!(!s.can_send());
    assert_eq!(s.send_frame(b"early", false), Err(SendError::NotReady));
    s.feed(&peer_greeting(), ms(0));
    assert!(drain(&mut s).is_empty());
    // Our READY is queued; the peer's has not arrived: sending is allowed.
    assert!(s.can_send());
    assert!(!s.is_ready());
    s.send_frame(b"", true).unwrap();
    s.send_frame(b"hi", false).unwrap();
    let mut want = expected_ready(Dealer, b"");
    want.extend(hex("01 00 00 02 6869"));
    assert_eq!(take_output(&mut s), want);
    s.feed(&ready(&[(b"Socket-Type", b"ROUTER")]), ms(0));
    assert!(matches!(drain(&mut s).as_slice(), [Ev::Ready { .. }]));

    // The peer (a ROUTER) gets our READY and the messages in one read and delivers them.
    let mut c = session(&Config::new(Dealer), Role::Connected, 4096, 4096);
    let mut r = session(&Config::new(Router), Role::Accepted, 4096, 4096);
    r.feed(&take_output(&mut c), ms(0));
    assert!(drain(&mut r).is_empty());
    let r_out = take_output(&mut r);
    assert_eq!(r_out.len(), 64 + expected_ready(Router, b"").len());
    c.feed(&r_out[..64], ms(0)); // the router's greeting only
    assert!(drain(&mut c).is_empty());
    c.send_frame(b"", true).unwrap();
    c.send_frame(b"hello", false).unwrap();
    r.feed(&take_output(&mut c), ms(0));
    let evs = drain(&mut r);
    assert!(
        matches!(
            evs[0],
            Ev::Ready {
                socket_type: Dealer,
                ..
            }
        ),
        "{evs:?}"
    );
    assert_eq!(
        evs[1..],
        [Ev::Frame(vec![], true), Ev::Frame(b"hello".to_vec(), false)]
    );
}

#[test]
fn peer_ready_in_same_read_as_first_messages() {
    let input = after_greeting(&[
        &ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", b"peer-1")]),
        &frame(0x01, b""),
        &frame(0x00, b"hello"),
        &frame(0x00, &[7u8; 300]),
        &command(b"PING", &[0, 0, b'k']),
        &frame(0x00, b"end"),
    ]);
    let (evs, out) = feed_all_ways_out(&|| fresh(Router), &input, 6);
    assert_eq!(
        evs,
        [
            Ev::Ready {
                socket_type: Dealer,
                identity: b"peer-1".to_vec(),
                minor: 1,
                metadata: vec![
                    (b"Socket-Type".to_vec(), b"DEALER".to_vec()),
                    (b"Identity".to_vec(), b"peer-1".to_vec()),
                ],
            },
            Ev::Frame(vec![], true),
            Ev::Frame(b"hello".to_vec(), false),
            Ev::Frame(vec![7u8; 300], false),
            Ev::Frame(b"end".to_vec(), false),
        ]
    );
    assert_eq!(
        out,
        [expected_ready(Router, b""), hex("04 06 04 504f4e47 6b")].concat()
    );
}

// - During the handshake anything but the expected command (a data frame, PING, an unknown
//   command, an empty command `04 00`, a READY in a data frame): close.

#[test]
fn data_frame_during_handshake_closes() {
    let frames = [
        frame(0x00, b"hello"),
        frame(0x01, b""),
        frame(0x00, b""),
        frame(0x02, &[1u8; 300]),
        hex("02 00 00 00 00 00 00 00 01 41"), // LONG size below 256
    ];
    for (i, f) in frames.iter().enumerate() {
        let input = after_greeting(&[f]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnexpectedMessage), "{f:02x?}");
        assert_eq!(out, expected_ready(Dealer, b""), "{f:02x?}");
    }
}

#[test]
fn ping_during_handshake_closes() {
    for (i, ping) in [
        command(b"PING", &[0, 0]),
        command(b"PING", &[0, 10, b'c', b't', b'x']),
    ]
    .iter()
    .enumerate()
    {
        let input = after_greeting(&[ping]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnexpectedCommand));
        // No PONG: only our READY went out.
        assert_eq!(out, expected_ready(Dealer, b""));
    }
}

#[test]
fn unknown_command_during_handshake_closes() {
    let cmds = [
        command(b"HELLO", b""),
        command(b"XYZZY", b"data"),
        command(b"INITIATE", &prop(b"Socket-Type", b"ROUTER")),
        command(b"PONG", b""),
        command(b"SUBSCRIBE", b"topic"),
        command(b"CANCEL", b"topic"),
        command(b"A", b""),
    ];
    for (i, c) in cmds.iter().enumerate() {
        let input = after_greeting(&[c]);
        let evs = feed_all_ways(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnexpectedCommand), "{c:02x?}");
    }
}

#[test]
fn empty_command_during_handshake_closes() {
    for (i, c) in [hex("04 00"), hex("04 01 00")].iter().enumerate() {
        let input = after_greeting(&[c, &ready(&[(b"Socket-Type", b"ROUTER")])]);
        let evs = feed_all_ways(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(cmd_err(CommandError::EmptyName)), "{c:02x?}");
    }
}

#[test]
fn ready_in_a_data_frame_during_handshake_closes() {
    let r = ready(&[(b"Socket-Type", b"ROUTER")]);
    // The same body, with flags 00 (and 01) instead of 04.
    for (i, flags) in [0x00u8, 0x01].into_iter().enumerate() {
        let mut as_data = r.clone();
        as_data[0] = flags;
        let input = after_greeting(&[&as_data]);
        let evs = feed_all_ways(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnexpectedMessage));
    }
}

// - After the handshake: unknown commands (and a second READY) are ignored; the connection
//   stays up. A command whose name length runs past its body: close.

#[test]
fn unknown_command_after_handshake_ignored() {
    let mut input = Vec::new();
    input.extend(command(b"HELLO", b""));
    input.extend(command(b"XYZZY", b"some data"));
    input.extend(command(b"INITIATE", &prop(b"Socket-Type", b"PUB")));
    input.extend(command(b"MESSAGE", &[0u8; 400])); // long command frame
    input.extend(frame(0x01, b"a"));
    input.extend(command(b"NOTIFY", b"between frames"));
    input.extend(frame(0x00, b"b"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Dealer, "ROUTER"), &input, 7);
    assert_eq!(
        evs,
        [
            Ev::Frame(b"a".to_vec(), true),
            Ev::Frame(b"b".to_vec(), false)
        ]
    );
    assert!(out.is_empty(), "{out:02x?}");
    let mut s = ready_session(Dealer, "ROUTER");
    s.feed(&input, ms(0));
    drain(&mut s);
    assert!(s.is_ready());
    assert_eq!(s.close_reason(), None);
}

#[test]
fn second_ready_ignored() {
    let mut input = Vec::new();
    // The same READY again, then one that would be incompatible, then one without Socket-Type.
    input.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
    input.extend(ready(&[(b"Socket-Type", b"PUB"), (b"Identity", b"x")]));
    input.extend(ready(&[]));
    input.extend(frame(0x00, b"data"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Dealer, "ROUTER"), &input, 8);
    assert_eq!(evs, [Ev::Frame(b"data".to_vec(), false)]);
    assert!(out.is_empty(), "second READY was answered: {out:02x?}");
    let mut s = ready_session(Dealer, "ROUTER");
    s.feed(&input, ms(0));
    drain(&mut s);
    assert!(s.is_ready());
    assert_eq!(s.peer_socket_type(), Some(Router));
}

#[test]
fn name_length_past_body_closes() {
    let cases = [
        hex("04 03 05 41 42"),       // name length 5, 2 bytes of name
        hex("04 01 ff"),             // name length 255, nothing after
        hex("04 05 06 50 49 4e 47"), // 6 for "PING"
    ];
    for (i, c) in cases.iter().enumerate() {
        let evs = feed_all_ways(&|| ready_session(Dealer, "ROUTER"), c, i as u64);
        assert_eq!(evs, closed(cmd_err(CommandError::NameOverrun)), "{c:02x?}");
        let input = after_greeting(&[c]);
        let evs = feed_all_ways(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(cmd_err(CommandError::NameOverrun)), "{c:02x?}");
    }
}

// - ERROR (`05 ERROR` + 1-byte reason length + reason): fatal, close, report the reason to the
//   application, and do not reconnect with the same credentials. A malformed ERROR is still a
//   failure (libzmq's PLAIN server sends `04 09 5E 'RROR' 03 '400'`, a C escape bug: treat it
//   as an auth failure).

#[test]
fn error_command_is_fatal_and_reason_reported() {
    // After the handshake; the frame after it is never delivered and ERROR is not answered.
    let mut input = hex("04 0a 05 4552524f52 03");
    input.extend_from_slice(b"bye");
    assert_eq!(input, error_frame(b"bye"));
    input.extend(frame(0x00, b"lost"));
    let (evs, out) = feed_all_ways_out(&|| ready_session(Dealer, "ROUTER"), &input, 9);
    assert_eq!(
        evs,
        [
            Ev::PeerError(b"bye".to_vec()),
            Ev::Closed(CloseReason::PeerError)
        ]
    );
    assert!(out.is_empty(), "{out:02x?}");
    let mut s = ready_session(Dealer, "ROUTER");
    s.feed(&input, ms(0));
    drain(&mut s);
    assert!(s.is_closed());
    assert!(s.is_finished());
    assert_eq!(s.close_reason(), Some(CloseReason::PeerError));
}

#[test]
fn error_during_handshake_is_fatal_and_reason_reported() {
    for (i, reason) in [&b"denied"[..], b"", b"400"].iter().enumerate() {
        let input = after_greeting(&[&error_frame(reason), &ready(&[(b"Socket-Type", b"ROUTER")])]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(
            evs,
            [
                Ev::PeerError(reason.to_vec()),
                Ev::Closed(CloseReason::PeerError)
            ]
        );
        // Our READY had been released by the greeting; nothing is sent after the ERROR.
        assert_eq!(out, expected_ready(Dealer, b""));
    }
}

#[test]
fn error_reason_of_255_bytes_reported_whole() {
    let reason: Vec<u8> = (0..255).map(|i| b'!' + (i % 94) as u8).collect();
    let f = error_frame(&reason);
    assert_eq!(&f[..2], &[0x06, 0x00], "262-byte body needs a long size");
    let evs = feed_all_ways(&|| ready_session(Dealer, "ROUTER"), &f, 10);
    assert_eq!(
        evs,
        [Ev::PeerError(reason), Ev::Closed(CloseReason::PeerError)]
    );
}

#[test]
fn error_means_do_not_reconnect_with_the_same_credentials() {
    let mut s = ready_session(Dealer, "ROUTER");
    s.feed(&error_frame(b"go-away"), ms(0));
    drain(&mut s);
    let why = s.close_reason().unwrap();
    assert_eq!(why, CloseReason::PeerError);
    assert!(!why.should_reconnect());
}

#[test]
fn malformed_error_is_still_a_failure() {
    // libzmq's PLAIN server: "\5ERROR" in C source became `5E 'RROR'`.
    let libzmq = hex("04 09 5e 52524f52 03 343030");
    let body = libzmq[2..].to_vec();
    // During the handshake (in place of READY) and after it.
    for (make, input) in [
        (
            &(|| fresh(Dealer)) as &dyn Fn() -> Session<'static>,
            after_greeting(&[&libzmq, &frame(0x00, b"lost")]),
        ),
        (
            &|| ready_session(Dealer, "ROUTER"),
            [libzmq.clone(), frame(0x00, b"lost")].concat(),
        ),
    ] {
        let evs = feed_all_ways(make, &input, 11);
        assert_eq!(
            evs,
            [
                Ev::PeerError(body.clone()),
                Ev::Closed(CloseReason::PeerError)
            ]
        );
        let mut s = make();
        s.feed(&input, ms(0));
        drain(&mut s);
        assert!(!s.close_reason().unwrap().should_reconnect());
    }
}

#[test]
fn error_with_wrong_reason_length_is_still_a_failure() {
    let cases = [
        command(b"ERROR", b"\x05ab"),  // says 5, has 2
        command(b"ERROR", b"\x01abc"), // says 1, has 3
        command(b"ERROR", b""),        // no reason length at all
    ];
    for (i, c) in cases.iter().enumerate() {
        let body = c[2..].to_vec();
        for (make, input) in [
            (
                &(|| fresh(Dealer)) as &dyn Fn() -> Session<'static>,
                after_greeting(&[c]),
            ),
            (&|| ready_session(Dealer, "ROUTER"), c.clone()),
        ] {
            let evs = feed_all_ways(make, &input, i as u64);
            assert_eq!(
                evs,
                [
                    Ev::PeerError(body.clone()),
                    Ev::Closed(CloseReason::PeerError)
                ],
                "{c:02x?}"
            );
        }
    }
}

// ============================================== Metadata (READY, INITIATE)
// - property = 1-byte name length (1-255) + name + 4-byte big-endian value length (< 2^31) +
//   value. Names compare **case-insensitively** (RFC), values exactly.

#[test]
fn metadata_names_compare_case_insensitively() {
    let spellings: [(&[u8], &[u8]); 4] = [
        (b"Socket-Type", b"Identity"),
        (b"socket-type", b"identity"),
        (b"SOCKET-TYPE", b"IDENTITY"),
        (b"sOcKeT-tYpE", b"iDeNtItY"),
    ];
    for (i, (st, id)) in spellings.into_iter().enumerate() {
        let input = after_greeting(&[&ready(&[(st, b"DEALER"), (id, b"abc")])]);
        let evs = feed_all_ways(&|| fresh(Router), &input, i as u64);
        assert_eq!(
            evs,
            [Ev::Ready {
                socket_type: Dealer,
                identity: b"abc".to_vec(),
                minor: 1,
                // Names are handed on as received.
                metadata: vec![
                    (st.to_vec(), b"DEALER".to_vec()),
                    (id.to_vec(), b"abc".to_vec())
                ],
            }],
            "{st:?}"
        );
    }
    // The application's look-ups ignore case too.
    let mut s = fresh(Router);
    s.feed(
        &after_greeting(&[&ready(&[
            (b"socket-TYPE", b"DEALER"),
            (b"X-Colour", b"Blue"),
        ])]),
        ms(0),
    );
    match s.poll_event() {
        Some(Event::HandshakeComplete(p)) => {
            assert_eq!(p.metadata.get(b"Socket-Type"), Some(&b"DEALER"[..]));
            assert_eq!(p.metadata.get(b"x-colour"), Some(&b"Blue"[..]));
            assert_eq!(p.metadata.get(b"X-COLOUR"), Some(&b"Blue"[..]));
            assert_eq!(p.metadata.get(b"X-Color"), None);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn metadata_values_compare_exactly() {
    let values: [&[u8]; 6] = [
        b"dealer",
        b"Dealer",
        b"DEALER ",
        b" DEALER",
        b"DEALER\x00",
        b"DEALE",
    ];
    for (i, v) in values.into_iter().enumerate() {
        let input = after_greeting(&[&ready(&[(b"Socket-Type", v)])]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Router), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnknownSocketType), "{v:?}");
        assert_eq!(
            out,
            [
                expected_ready(Router, b""),
                error_frame(b"unknown-socket-type")
            ]
            .concat()
        );
    }
}

#[test]
fn property_value_length_is_4_byte_big_endian() {
    // A value of 300 bytes: length `00 00 01 2C`.
    let big: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let mut meta = prop(b"Socket-Type", b"DEALER");
    meta.extend_from_slice(&[8]);
    meta.extend_from_slice(b"X-Binary");
    meta.extend_from_slice(&[0x00, 0x00, 0x01, 0x2c]);
    meta.extend_from_slice(&big);
    let input = after_greeting(&[&raw_ready(&meta)]);
    let evs = feed_all_ways(&|| fresh(Router), &input, 12);
    match evs.as_slice() {
        [Ev::Ready { metadata, .. }] => {
            assert_eq!(metadata[1], (b"X-Binary".to_vec(), big.clone()));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn property_value_length_of_2_pow_31_or_more_closes() {
    // Bit 31 set: malformed whatever follows (`MetadataError::ValueTooLong`: "a value size with
    // bit 31 set"), not a truncated list.
    let lens = [
        (hex("80000000"), &b""[..]),
        (hex("80000001"), b"v"),
        (hex("ffffffff"), b""),
        (hex("80000001"), b""),
    ];
    let got: Vec<_> = lens
        .iter()
        .enumerate()
        .map(|(i, (len, value))| {
            let mut meta = prop(b"Socket-Type", b"DEALER");
            meta.extend_from_slice(b"\x01X");
            meta.extend_from_slice(len);
            meta.extend_from_slice(value);
            let input = after_greeting(&[&raw_ready(&meta)]);
            (
                len.clone(),
                feed_all_ways(&|| fresh(Router), &input, i as u64),
            )
        })
        .collect();
    let want: Vec<_> = lens
        .iter()
        .map(|(len, _)| (len.clone(), closed(meta_err(MetadataError::ValueTooLong))))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn property_name_of_1_to_255_bytes_accepted() {
    let long: Vec<u8> = (0..255).map(|i| b"ab-_.+09XZ"[i % 10]).collect();
    let input = after_greeting(&[&ready(&[
        (b"Socket-Type", b"DEALER"),
        (b"X", b"one"),
        (&long, b"long"),
    ])]);
    let evs = feed_all_ways(&|| fresh(Router), &input, 13);
    match evs.as_slice() {
        [Ev::Ready { metadata, .. }] => assert_eq!(
            metadata[1..],
            [
                (b"X".to_vec(), b"one".to_vec()),
                (long.clone(), b"long".to_vec())
            ]
        ),
        e => panic!("{e:?}"),
    }
}

// - Zero-length name, name bytes outside `A-Z a-z 0-9 - _ . +`, a value running past the body,
//   one stray trailing byte: malformed, close.

#[test]
fn zero_length_property_name_closes() {
    let cases = [
        [prop(b"Socket-Type", b"DEALER"), hex("00 00000000")].concat(),
        [hex("00 00000000"), prop(b"Socket-Type", b"DEALER")].concat(),
        [prop(b"Socket-Type", b"DEALER"), hex("00 00000003 616263")].concat(),
    ];
    for (i, meta) in cases.iter().enumerate() {
        let input = after_greeting(&[&raw_ready(meta)]);
        let evs = feed_all_ways(&|| fresh(Router), &input, i as u64);
        assert_eq!(
            evs,
            closed(meta_err(MetadataError::EmptyName)),
            "{meta:02x?}"
        );
    }
}

#[test]
fn property_name_bytes_outside_the_alphabet_close() {
    let bad: [&[u8]; 12] = [
        b"X Y",
        b"X:Y",
        b"X/Y",
        b"X@",
        b"!",
        b"~",
        b"X=1",
        b"X\x00",
        b"X\x7f",
        b"X\x80",
        b"\xff",
        b"Socket-Type\t",
    ];
    for (i, name) in bad.into_iter().enumerate() {
        let meta = [prop(b"Socket-Type", b"DEALER"), prop(name, b"v")].concat();
        let input = after_greeting(&[&raw_ready(&meta)]);
        let evs = feed_all_ways(&|| fresh(Router), &input, i as u64);
        assert_eq!(
            evs,
            closed(meta_err(MetadataError::InvalidName)),
            "{name:?}"
        );
    }
}

#[test]
fn every_byte_of_the_name_alphabet_accepted() {
    let name: Vec<u8> = (b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain(b'0'..=b'9')
        .chain(*b"-_.+")
        .collect();
    let input = after_greeting(&[&ready(&[(b"Socket-Type", b"DEALER"), (&name, b"v")])]);
    let evs = feed_all_ways(&|| fresh(Router), &input, 14);
    match evs.as_slice() {
        [Ev::Ready { metadata, .. }] => assert_eq!(metadata[1], (name.clone(), b"v".to_vec())),
        e => panic!("{e:?}"),
    }
}

#[test]
fn property_value_running_past_the_body_closes() {
    let st = prop(b"Socket-Type", b"DEALER");
    let cases = [
        [st.clone(), hex("01 58 00000002 41")].concat(), // value 2 bytes, 1 there
        [st.clone(), hex("01 58 7fffffff")].concat(),    // largest legal length, no value
        [st.clone(), hex("01 58 0000")].concat(),        // value length cut short
        [st.clone(), hex("01 58")].concat(),             // no value length
        [st.clone(), hex("05 58")].concat(),             // name runs past the body
        hex("0b 536f636b65742d54797065 00000007 4445414c4552"), // Socket-Type value short
    ];
    for (i, meta) in cases.iter().enumerate() {
        let input = after_greeting(&[&raw_ready(meta)]);
        let evs = feed_all_ways(&|| fresh(Router), &input, i as u64);
        assert_eq!(
            evs,
            closed(meta_err(MetadataError::Truncated)),
            "{meta:02x?}"
        );
    }
}

#[test]
fn one_stray_trailing_byte_closes() {
    for (i, stray) in [0x00u8, 0x01, 0x41, 0xff].into_iter().enumerate() {
        let mut meta = prop(b"Socket-Type", b"DEALER");
        meta.push(stray);
        let input = after_greeting(&[&raw_ready(&meta)]);
        let evs = feed_all_ways(&|| fresh(Router), &input, i as u64);
        // `00` reads as a zero-length name; anything else as a name running past the body.
        let want = if stray == 0 {
            MetadataError::EmptyName
        } else {
            MetadataError::Truncated
        };
        assert_eq!(evs, closed(meta_err(want)), "{stray:02x}");
    }
}

// - Socket-Type missing, unknown, or not compatible with ours (REQ:REP,ROUTER · ...): send
//   ERROR with a short reason, then close. libzmq closes without ERROR; we do what the RFC
//   asks.

#[test]
fn missing_socket_type_sends_error_then_closes() {
    let wire = [
        hex("04 1a 05 4552524f52 13"),
        b"missing-socket-type".to_vec(),
    ]
    .concat();
    assert_eq!(wire, error_frame(b"missing-socket-type"));
    assert_short_vchar_reason(b"missing-socket-type");
    let readies = [
        ready(&[]),
        ready(&[(b"Identity", b"abc")]),
        ready(&[(b"Socket-Typ", b"DEALER"), (b"X-Socket-Type", b"DEALER")]),
    ];
    for (i, r) in readies.iter().enumerate() {
        let input = after_greeting(&[r, &frame(0x00, b"lost")]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Router), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::MissingSocketType));
        // Our READY (released by the greeting), then ERROR, then nothing.
        assert_eq!(out, [expected_ready(Router, b""), wire.clone()].concat());
    }
}

#[test]
fn unknown_socket_type_sends_error_then_closes() {
    let wire = [
        hex("04 1a 05 4552524f52 13"),
        b"unknown-socket-type".to_vec(),
    ]
    .concat();
    assert_eq!(wire, error_frame(b"unknown-socket-type"));
    assert_short_vchar_reason(b"unknown-socket-type");
    let values: [&[u8]; 6] = [b"FOO", b"", b"STREAM", b"CLIENT", b"SERVER", b"RADIO"];
    for (i, v) in values.into_iter().enumerate() {
        let input = after_greeting(&[&ready(&[(b"Socket-Type", v)])]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Dealer), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::UnknownSocketType), "{v:?}");
        assert_eq!(out, [expected_ready(Dealer, b""), wire.clone()].concat());
    }
}

#[test]
fn incompatible_socket_type_sends_error_then_closes() {
    // `04 1F 05 'ERROR' 18 'incompatible-socket-type'`.
    let wire = [
        hex("04 1f 05 4552524f52 18"),
        b"incompatible-socket-type".to_vec(),
    ]
    .concat();
    assert_eq!(wire, error_frame(b"incompatible-socket-type"));
    assert_short_vchar_reason(b"incompatible-socket-type");
    let input = after_greeting(&[&ready(&[(b"Socket-Type", b"PUB")]), &frame(0x00, b"lost")]);
    let (evs, out) = feed_all_ways_out(&|| fresh(Req), &input, 15);
    assert_eq!(evs, closed(ProtocolError::IncompatibleSocketType(Pub)));
    assert_eq!(out, [expected_ready(Req, b""), wire].concat());
    let mut s = fresh(Req);
    s.feed(&input, ms(0));
    drain(&mut s);
    take_output(&mut s);
    assert!(s.is_finished());
    assert!(!s.close_reason().unwrap().should_reconnect());
}

/// PROTOCOL.md's table, as written there.
const PROTOCOL_MD_TABLE: &[(&[SocketType], &[SocketType])] = &[
    (&[Req], &[Rep, Router]),
    (&[Rep], &[Req, Dealer]),
    (&[Dealer], &[Rep, Dealer, Router]),
    (&[Router], &[Req, Dealer, Router]),
    (&[Pub, XPub], &[Sub, XSub]),
    (&[Sub, XSub], &[Pub, XPub]),
    (&[Push], &[Pull]),
    (&[Pull], &[Push]),
    (&[Pair], &[Pair]),
];

/// The table parsed out of `docs/PROTOCOL.md` itself, so the two cannot drift apart.
fn table_from_protocol_md() -> Vec<(Vec<SocketType>, Vec<SocketType>)> {
    let md = include_str!("../../docs/PROTOCOL.md");
    let flat: String = md.split_whitespace().collect::<Vec<_>>().join(" ");
    let start = flat.find("(REQ:").expect("table in PROTOCOL.md") + 1;
    let len = flat[start..].find(')').unwrap();
    let names = |s: &str| -> Vec<SocketType> {
        s.split(',')
            .map(|n| SocketType::from_bytes(n.trim().as_bytes()).expect(n))
            .collect()
    };
    flat[start..start + len]
        .split('·')
        .map(|entry| {
            let (ours, peers) = entry.split_once(':').unwrap();
            (names(ours), names(peers))
        })
        .collect()
}

fn compatible_per_protocol_md(a: SocketType, b: SocketType) -> bool {
    PROTOCOL_MD_TABLE
        .iter()
        .any(|(ours, peers)| ours.contains(&a) && peers.contains(&b))
}

#[test]
fn socket_type_compatibility_table_matches_protocol_md() {
    let parsed = table_from_protocol_md();
    let written: Vec<(Vec<SocketType>, Vec<SocketType>)> = PROTOCOL_MD_TABLE
        .iter()
        .map(|(a, b)| (a.to_vec(), b.to_vec()))
        .collect();
    assert_eq!(parsed, written, "PROTOCOL.md's table changed");

    let mut compatible = 0;
    for a in SocketType::ALL {
        for b in SocketType::ALL {
            let ok = compatible_per_protocol_md(a, b);
            assert_eq!(ok, compatible_per_protocol_md(b, a), "table not symmetric");
            let streams = Rc::new(RefCell::new((Vec::new(), Vec::new())));
            let rec = streams.clone();
            let mut p = common::Pair::new(&Config::new(a), &Config::new(b));
            p.tamper = Some(Box::new(move |c2s, bytes| {
                let mut r = rec.borrow_mut();
                if c2s { &mut r.0 } else { &mut r.1 }.extend_from_slice(&bytes);
                bytes
            }));
            p.run();
            let (c2s, s2c) = streams.borrow().clone();
            if ok {
                compatible += 1;
                assert!(p.client.is_ready() && p.server.is_ready(), "{a}-{b}");
                assert!(
                    matches!(p.client_events.as_slice(), [Ev::Ready { socket_type, .. }] if *socket_type == b),
                    "{a}-{b}: {:?}",
                    p.client_events
                );
                assert!(
                    matches!(p.server_events.as_slice(), [Ev::Ready { socket_type, .. }] if *socket_type == a),
                    "{a}-{b}: {:?}",
                    p.server_events
                );
                assert_eq!(c2s, [our_greeting(), expected_ready(a, b"")].concat());
                assert_eq!(s2c, [our_greeting(), expected_ready(b, b"")].concat());
            } else {
                let refused = |t| closed(ProtocolError::IncompatibleSocketType(t));
                assert_eq!(p.client_events, refused(b), "{a}-{b}");
                assert_eq!(p.server_events, refused(a), "{a}-{b}");
                let err = error_frame(b"incompatible-socket-type");
                assert_eq!(
                    c2s,
                    [our_greeting(), expected_ready(a, b""), err.clone()].concat(),
                    "{a}-{b}"
                );
                assert_eq!(
                    s2c,
                    [our_greeting(), expected_ready(b, b""), err].concat(),
                    "{a}-{b}"
                );
            }
        }
    }
    assert_eq!(compatible, 2 + 2 + 3 + 3 + 4 + 4 + 1 + 1 + 1);
}

// - We send `Socket-Type` always, and `Identity` from REQ, DEALER and ROUTER (empty unless the
//   application set one), like libzmq.

#[test]
fn we_send_socket_type_always_and_identity_from_req_dealer_router() {
    for ty in SocketType::ALL {
        let name = ty.as_str().as_bytes();
        let mut want = vec![0x04, 0x00, 0x05];
        want.extend_from_slice(b"READY");
        want.push(0x0b);
        want.extend_from_slice(b"Socket-Type");
        want.extend_from_slice(&(name.len() as u32).to_be_bytes());
        want.extend_from_slice(name);
        if matches!(ty, Req | Dealer | Router) {
            want.push(0x08);
            want.extend_from_slice(b"Identity");
            want.extend_from_slice(&[0, 0, 0, 0]);
        }
        want[1] = (want.len() - 2) as u8;
        let mut s = fresh(ty);
        s.feed(&peer_greeting(), ms(0));
        assert!(drain(&mut s).is_empty());
        assert_eq!(take_output(&mut s), want, "{ty}");
    }
}

#[test]
fn identity_set_by_the_application_is_sent_by_req_dealer_router_only() {
    for ty in SocketType::ALL {
        let cfg = Config::new(ty).with_identity(b"device-7");
        let mut s = session(&cfg, Role::Connected, 4096, 4096);
        take_output(&mut s);
        s.feed(&peer_greeting(), ms(0));
        assert!(drain(&mut s).is_empty());
        assert_eq!(take_output(&mut s), expected_ready(ty, b"device-7"), "{ty}");
    }
    // `08 'Identity' 00 00 00 08 'device-7'` on the wire.
    let r = expected_ready(Dealer, b"device-7");
    assert!(r.ends_with(&[&hex("08")[..], b"Identity", &hex("00000008"), b"device-7"].concat()));
}

// - Unknown properties are kept and available to the application (up to a fixed budget in the
//   core); `X-` properties are the application's.

#[test]
fn unknown_properties_available_to_application() {
    let binary: Vec<u8> = (0..=255).collect();
    let props: [(&[u8], &[u8]); 7] = [
        (b"Socket-Type", b"DEALER"),
        (b"Identity", b"id"),
        (b"Resource", b"/a/b"),
        (b"User-Id", b"alice"),
        (b"X-Hostname", b"node-1"),
        (b"X-Empty", b""),
        (b"X-Binary", &binary),
    ];
    let input = after_greeting(&[&ready(&props), &frame(0x00, b"m")]);
    let evs = feed_all_ways(&|| fresh(Router), &input, 16);
    assert_eq!(
        evs,
        [
            Ev::Ready {
                socket_type: Dealer,
                identity: b"id".to_vec(),
                minor: 1,
                // In wire order, values exactly as sent.
                metadata: props
                    .iter()
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect(),
            },
            Ev::Frame(b"m".to_vec(), false)
        ]
    );
    let mut s = fresh(Router);
    s.feed(&input, ms(0));
    match s.poll_event() {
        Some(Event::HandshakeComplete(p)) => {
            assert_eq!(p.metadata.get(b"resource"), Some(&b"/a/b"[..]));
            assert_eq!(p.metadata.get(b"X-Hostname"), Some(&b"node-1"[..]));
            assert_eq!(p.metadata.get(b"x-empty"), Some(&b""[..]));
            assert_eq!(p.metadata.get(b"X-Binary"), Some(&binary[..]));
            assert_eq!(p.metadata.iter().count(), 7);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn unknown_properties_beyond_the_core_budget_close_cleanly() {
    // The core keeps READY in the receive buffer: its size is the budget. Within it, everything
    // is kept; a READY that cannot fit closes the connection (never a panic, never a partial
    // property list).
    let make = || session(&Config::new(Router), Role::Accepted, 256, 1024);
    let small = ready(&[(b"Socket-Type", b"DEALER"), (b"X-Fits", &[b'v'; 200])]);
    assert!(small.len() <= 256);
    let evs = feed_all_ways(&make, &after_greeting(&[&small]), 17);
    assert!(matches!(evs.as_slice(), [Ev::Ready { metadata, .. }] if metadata.len() == 2));
    let big = ready(&[(b"Socket-Type", b"DEALER"), (b"X-Big", &[b'v'; 300])]);
    let evs = feed_all_ways(&make, &after_greeting(&[&big]), 18);
    assert_eq!(evs, closed(ProtocolError::CommandTooLarge));
}

// ============================================== Identity rules the session enforces
// (PROTOCOL.md §"Identity and routing": longer than 255 bytes or starting with `00`: reject
// the connection with ERROR; see `check_ready`.)

fn invalid_identity_wire() -> Vec<u8> {
    let wire = [hex("04 17 05 4552524f52 10"), b"invalid-identity".to_vec()].concat();
    assert_eq!(wire, error_frame(b"invalid-identity"));
    assert_short_vchar_reason(b"invalid-identity");
    wire
}

#[test]
fn identity_longer_than_255_bytes_rejected_with_error() {
    for (i, len) in [256usize, 1000].into_iter().enumerate() {
        let id = vec![b'i'; len];
        let input = after_greeting(&[&ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", &id)])]);
        let (evs, out) = feed_all_ways_out(&|| fresh(Router), &input, i as u64);
        assert_eq!(evs, closed(ProtocolError::InvalidIdentity), "{len}");
        assert_eq!(
            out,
            [expected_ready(Router, b""), invalid_identity_wire()].concat()
        );
    }
}

#[test]
fn identity_of_255_bytes_accepted() {
    let id = vec![b'i'; 255];
    let input = after_greeting(&[&ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", &id)])]);
    let evs = feed_all_ways(&|| fresh(Router), &input, 19);
    assert!(
        matches!(evs.as_slice(), [Ev::Ready { identity, .. }] if *identity == id),
        "{evs:?}"
    );
}

#[test]
fn router_refuses_identity_starting_with_00() {
    let ids: [&[u8]; 3] = [b"\x00", b"\x00\x00\x00\x00\x01", b"\x00abc"];
    for (i, id) in ids.into_iter().enumerate() {
        for peer in [&b"DEALER"[..], b"REQ", b"ROUTER"] {
            let input = after_greeting(&[&ready(&[(b"Socket-Type", peer), (b"Identity", id)])]);
            let (evs, out) = feed_all_ways_out(&|| fresh(Router), &input, i as u64);
            assert_eq!(evs, closed(ProtocolError::InvalidIdentity), "{id:?}");
            assert_eq!(
                out,
                [expected_ready(Router, b""), invalid_identity_wire()].concat()
            );
        }
    }
}

#[test]
fn identity_starting_with_00_is_not_refused_by_a_non_router() {
    // Only a ROUTER uses a received Identity.
    for (ours, peer) in [(Rep, &b"REQ"[..]), (Dealer, b"DEALER"), (Req, b"ROUTER")] {
        let input = after_greeting(&[&ready(&[(b"Socket-Type", peer), (b"Identity", b"\x00ab")])]);
        let evs = feed_all_ways(&|| fresh(ours), &input, 20);
        assert!(
            matches!(evs.as_slice(), [Ev::Ready { .. }]),
            "{ours}: {evs:?}"
        );
    }
}

#[test]
fn empty_identity_accepted_by_router() {
    for id in [None, Some(&b""[..])] {
        let r = match id {
            Some(id) => ready(&[(b"Socket-Type", b"DEALER"), (b"Identity", id)]),
            None => ready(&[(b"Socket-Type", b"DEALER")]),
        };
        let evs = feed_all_ways(&|| fresh(Router), &after_greeting(&[&r]), 21);
        assert!(
            matches!(evs.as_slice(), [Ev::Ready { identity, .. }] if identity.is_empty()),
            "{evs:?}"
        );
    }
}

#[test]
fn we_refuse_to_configure_an_identity_we_would_reject() {
    use zmtp_core::{Buffers, ConfigError};
    let long = [b'x'; 256];
    for id in [&long[..], b"\x00abc"] {
        let cfg = Config::new(Dealer).with_identity(id);
        let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
        let r = Session::new(
            &cfg,
            Role::Connected,
            Buffers {
                rx: &mut rx,
                tx: &mut tx,
            },
            Instant::ZERO,
        );
        assert_eq!(r.err(), Some(ConfigError::InvalidIdentity));
    }
}
