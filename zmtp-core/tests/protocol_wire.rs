//! PROTOCOL.md, sections "Greeting (64 bytes)" and "Frames": one test per bullet, named after
//! it, plus the session API's misuse rules and large-body streaming.

mod common;

use common::*;
use zmtp_core::wire::{FrameError, GreetingError};
use zmtp_core::{
    CloseReason, Config, Event, Instant, ProtocolError, Role, SendError, SocketType, UsageError,
};

fn closed(evs: &[Ev]) -> Option<CloseReason> {
    evs.iter().find_map(|e| match e {
        Ev::Closed(r) => Some(*r),
        _ => None,
    })
}

fn fresh(ty: SocketType) -> zmtp_core::Session<'static> {
    let mut s = session(&Config::new(ty), Role::Connected, 1024, 1024);
    take_output(&mut s);
    s
}

// ------------------------------------------------------------------ Greeting

#[test]
fn send_whole_greeting_as_soon_as_transport_is_up() {
    for role in [Role::Connected, Role::Accepted] {
        let mut s = session(&Config::new(SocketType::Dealer), role, 1024, 1024);
        // Nothing received yet: the whole 64-byte greeting is ready to go.
        assert_eq!(s.poll_transmit().len(), 64);
    }
}

#[test]
fn libzmq_greeting_in_three_pieces_does_not_deadlock() {
    // libzmq sends 10 bytes, then 1, then 53, waiting for ours in between.
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        1024,
        1024,
    );
    let g = peer_greeting();
    let mut out = Vec::new();
    for piece in [&g[..10], &g[10..11], &g[11..]] {
        out.extend(take_output(&mut s));
        assert_eq!(
            out.len(),
            64,
            "our greeting goes out before the peer's is complete"
        );
        s.feed(piece, ms(0));
        assert!(drain(&mut s).is_empty());
    }
    // Once the peer's greeting is whole, READY follows.
    assert!(!take_output(&mut s).is_empty());
}

#[test]
fn we_send_ff_zero_padding_7f_03_01_mechanism_as_server_zero_filler() {
    for role in [Role::Connected, Role::Accepted] {
        let mut s = session(&Config::new(SocketType::Pull), role, 1024, 1024);
        let g = take_output(&mut s);
        let mut want = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1];
        want.extend_from_slice(b"NULL");
        want.resize(64, 0); // mechanism NUL padding, as-server 0, 31-byte filler
        assert_eq!(g, want);
    }
}

#[test]
fn do_not_validate_bytes_1_to_8_filler_or_as_server() {
    let mut g = peer_greeting();
    g[1..9].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0x09]);
    g[32] = 1; // as-server set by a NULL peer
    for b in &mut g[33..] {
        *b = 0xaa;
    }
    let mut input = g;
    input.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
    let evs = feed_all_ways(&|| fresh(SocketType::Dealer), &input, 1);
    assert!(
        matches!(
            evs.as_slice(),
            [Ev::Ready {
                socket_type: SocketType::Router,
                ..
            }]
        ),
        "{evs:?}"
    );
}

#[test]
fn byte_9_needs_only_bit_0() {
    let mut g = peer_greeting();
    g[9] = 0x01; // the RFC says 7F, but only bit 0 tells 3.x from 1.0
    g.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
    let evs = feed_all_ways(&|| fresh(SocketType::Dealer), &g, 2);
    assert!(matches!(evs.as_slice(), [Ev::Ready { .. }]), "{evs:?}");
}

#[test]
fn accept_any_major_version_3_or_higher() {
    for (major, minor) in [(3, 0), (3, 1), (3, 2), (4, 0), (255, 255)] {
        let mut g = peer_greeting();
        g[10] = major;
        g[11] = minor;
        g.extend(ready(&[(b"Socket-Type", b"PUB")]));
        let mut s = fresh(SocketType::Sub);
        s.feed(&g, ms(0));
        let evs = drain(&mut s);
        assert!(
            matches!(evs.as_slice(), [Ev::Ready { .. }]),
            "{major}.{minor}: {evs:?}"
        );
        assert_eq!(s.peer_version(), Some((major, minor)));
        // 3.0 peers get legacy subscriptions, 3.1 and later get commands.
        s.send_subscribe(b"A").unwrap();
        let out = take_output(&mut s);
        let want = if major == 3 && minor == 0 {
            frame(0, b"\x01A")
        } else {
            command(b"SUBSCRIBE", b"A")
        };
        assert_eq!(out[out.len() - want.len()..], want, "{major}.{minor}");
    }
}

#[test]
fn major_below_3_closes_without_waiting_for_64_bytes() {
    // A ZMTP 2.0 peer: signature, then revision 01 and its socket type, then it waits.
    let zmtp20 = [0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0x01, 0x05];
    let mut s = fresh(SocketType::Dealer);
    s.feed(&zmtp20, ms(0));
    assert_eq!(
        drain(&mut s),
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Greeting(
            GreetingError::UnsupportedVersion { major: 1 }
        )))]
    );
    for major in [0u8, 1, 2] {
        let mut g = peer_greeting();
        g[10] = major;
        let evs = feed_all_ways(&|| fresh(SocketType::Dealer), &g, 3);
        assert_eq!(
            closed(&evs),
            Some(CloseReason::Protocol(ProtocolError::Greeting(
                GreetingError::UnsupportedVersion { major }
            )))
        );
    }
}

#[test]
fn byte_0_not_ff_closes() {
    let mut s = fresh(SocketType::Dealer);
    s.feed(b"GET / HTTP/1.1\r\n", ms(0));
    let bad = CloseReason::Protocol(ProtocolError::Greeting(GreetingError::BadSignature));
    assert_eq!(drain(&mut s), [Ev::Closed(bad)]);
    // And nothing more from a closed session.
    assert!(s.recv_window().is_empty());
    assert_eq!(drain(&mut s), []);
}

#[test]
fn byte_9_bit_0_clear_is_zmtp_10_and_closes() {
    // ZMTP 1.0: a length-prefixed identity frame, e.g. FF + 8 bytes + 7E.
    let mut g = peer_greeting();
    g[9] = 0x7e;
    let evs = feed_all_ways(&|| fresh(SocketType::Dealer), &g[..10], 4);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Greeting(
            GreetingError::BadSignature
        )))]
    );
}

#[test]
fn mechanism_must_equal_ours_in_all_20_bytes() {
    let cases: [&[u8]; 4] = [b"PLAIN", b"null", b"NULL\0x", b"CURVE"];
    for mech in cases {
        let mut g = peer_greeting();
        g[12..32].fill(0);
        g[12..12 + mech.len()].copy_from_slice(mech);
        let evs = feed_all_ways(&|| fresh(SocketType::Dealer), &g, 5);
        assert_eq!(
            evs,
            [Ev::Closed(CloseReason::Protocol(
                ProtocolError::MechanismMismatch
            ))]
        );
    }
}

#[test]
fn greeting_mismatch_never_sends_ready() {
    let mut s = session(
        &Config::new(SocketType::Dealer),
        Role::Connected,
        1024,
        1024,
    );
    let mut g = peer_greeting();
    g[12..17].copy_from_slice(b"PLAIN");
    s.feed(&g, ms(0));
    drain(&mut s);
    // Only our greeting ever goes out: READY is held until the peer's greeting checks out.
    assert_eq!(take_output(&mut s).len(), 64);
    assert!(s.is_finished());
}

// ------------------------------------------------------------------ Frames

#[test]
fn flags_bits_3_to_7_set_close() {
    for bit in 3..8 {
        let mut s = ready_session(SocketType::Pull, "PUSH");
        s.feed(&[1 << bit, 0], ms(0));
        assert_eq!(
            drain(&mut s),
            [Ev::Closed(CloseReason::Protocol(ProtocolError::Frame(
                FrameError::ReservedFlags(1 << bit)
            )))]
        );
    }
}

#[test]
fn command_with_more_closes() {
    let mut s = ready_session(SocketType::Pull, "PUSH");
    let mut input = vec![0x05];
    input.extend(&command(b"PING", &[0, 0])[1..]);
    s.feed(&input, ms(0));
    assert_eq!(
        drain(&mut s),
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Frame(
            FrameError::CommandWithMore
        )))]
    );
}

#[test]
fn we_send_1_byte_size_up_to_255_and_8_byte_size_from_256() {
    let mut s = ready_session(SocketType::Push, "PULL");
    for (len, header) in [
        (0usize, vec![0x00, 0]),
        (1, vec![0x00, 1]),
        (255, vec![0x00, 255]),
        (256, vec![0x02, 0, 0, 0, 0, 0, 0, 1, 0]),
        (1000, vec![0x02, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]),
    ] {
        let body = vec![0x5a; len];
        s.send_frame(&body, false).unwrap();
        let out = take_output(&mut s);
        assert_eq!(out[..header.len()], header[..], "len {len}");
        assert_eq!(out.len(), header.len() + len);
        s.send_frame(&body, true).unwrap();
        assert_eq!(
            take_output(&mut s)[0],
            header[0] | 0x01,
            "MORE flag, len {len}"
        );
    }
}

#[test]
fn we_accept_a_long_size_below_256() {
    let mut input = vec![0x03, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'];
    input.extend([0x02, 0, 0, 0, 0, 0, 0, 0, 0]);
    let evs = feed_all_ways(&|| ready_session(SocketType::Pull, "PUSH"), &input, 6);
    assert_eq!(
        evs,
        [Ev::Frame(b"hi".to_vec(), true), Ev::Frame(vec![], false)]
    );
}

#[test]
fn long_size_with_bit_63_closes_before_the_body() {
    let input = [0x02, 0x80, 0, 0, 0, 0, 0, 0, 1];
    let evs = feed_all_ways(&|| ready_session(SocketType::Pull, "PUSH"), &input, 7);
    assert_eq!(
        evs,
        [Ev::Closed(CloseReason::Protocol(ProtocolError::Frame(
            FrameError::SizeOverflow
        )))]
    );
}

fn limited(frame: Option<u64>, message: Option<u64>) -> zmtp_core::Session<'static> {
    let mut cfg = Config::new(SocketType::Pull);
    cfg.max_frame_size = frame;
    cfg.max_message_size = message;
    let mut s = session(&cfg, Role::Accepted, 4096, 1024);
    let mut input = peer_greeting();
    input.extend(ready(&[(b"Socket-Type", b"PUSH")]));
    s.feed(&input, ms(0));
    assert!(matches!(drain(&mut s).as_slice(), [Ev::Ready { .. }]));
    s
}

#[test]
fn frame_larger_than_max_frame_size_closes_before_reading_the_body() {
    let mut s = limited(Some(100), None);
    s.feed(&frame(0, &[7; 100]), ms(0));
    assert_eq!(drain(&mut s), [Ev::Frame(vec![7; 100], false)]);
    // Only the header of a 101-byte frame: closed at once, the body is never waited for.
    s.feed(&[0x00, 101], ms(0));
    assert_eq!(
        drain(&mut s),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::FrameTooLarge
        ))]
    );
    // A huge long size is refused the same way (CVE-2019-6250 class).
    let mut s = limited(Some(100), None);
    s.feed(
        &[0x02, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ms(0),
    );
    assert_eq!(
        drain(&mut s),
        [Ev::Closed(CloseReason::Protocol(
            ProtocolError::FrameTooLarge
        ))]
    );
}

#[test]
fn message_size_limit_counts_all_frames_of_a_message() {
    let mut s = limited(None, Some(10));
    let mut input = frame(1, &[1; 5]);
    input.extend(frame(0, &[2; 5]));
    s.feed(&input, ms(0));
    assert_eq!(
        drain(&mut s),
        [Ev::Frame(vec![1; 5], true), Ev::Frame(vec![2; 5], false)]
    );
    // A new message starts counting from zero.
    let mut input = frame(1, &[3; 6]);
    input.extend(frame(1, &[4; 4]));
    input.extend([0x00, 1]); // header of an 11th byte
    s.feed(&input, ms(0));
    assert_eq!(
        drain(&mut s),
        [
            Ev::Frame(vec![3; 6], true),
            Ev::Frame(vec![4; 4], true),
            Ev::Closed(CloseReason::Protocol(ProtocolError::MessageTooLarge))
        ]
    );
}

#[test]
fn connection_dying_mid_message_drops_the_partial_message() {
    // The session reports frames as they come and Closed after them; a consumer that
    // assembles messages (as the socket layer does) must deliver no partial message.
    let mut input = frame(1, b"part-1");
    input.extend(frame(1, b"part-2"));
    input.extend(&frame(0, b"never-finished")[..5]);
    let mut s = ready_session(SocketType::Pull, "PUSH");
    s.feed(&input, ms(0));
    s.handle_eof();
    let evs = drain(&mut s);
    assert_eq!(
        evs,
        [
            Ev::Frame(b"part-1".to_vec(), true),
            Ev::Frame(b"part-2".to_vec(), true),
            Ev::Closed(CloseReason::Eof)
        ]
    );
    assert_eq!(assemble(&evs), Vec::<Vec<Vec<u8>>>::new());
}

/// Whole messages only, as a socket delivers them.
fn assemble(evs: &[Ev]) -> Vec<Vec<Vec<u8>>> {
    let mut msgs = Vec::new();
    let mut cur = Vec::new();
    for e in normalize(evs) {
        match e {
            Ev::Frame(d, more) => {
                cur.push(d);
                if !more {
                    msgs.push(std::mem::take(&mut cur));
                }
            }
            Ev::Closed(_) => cur.clear(),
            _ => {}
        }
    }
    msgs
}

#[test]
fn commands_between_frames_of_a_multipart_message_keep_it_intact() {
    let mut input = frame(1, b"a");
    input.extend(command(b"PING", b"\x00\x00ctx"));
    input.extend(frame(1, b"b"));
    input.extend(command(b"UNKNOWN", b"whatever"));
    input.extend(frame(0, b"c"));
    let evs = feed_all_ways(&|| ready_session(SocketType::Pull, "PUSH"), &input, 8);
    assert_eq!(
        assemble(&evs),
        [vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]]
    );
    let mut s = ready_session(SocketType::Pull, "PUSH");
    s.feed(&input, ms(0));
    drain(&mut s);
    assert_eq!(take_output(&mut s), command(b"PONG", b"ctx"));
}

#[test]
fn decoder_is_split_agnostic() {
    // A long transcript: greeting, READY, short and long frames, multipart, commands.
    let mut input = peer_greeting();
    input.extend(ready(&[
        (b"Socket-Type", b"DEALER"),
        (b"Identity", b"peer"),
        (b"X-Extra", b"1"),
    ]));
    for i in 0..40u32 {
        let len = (i * 37 % 700) as usize;
        input.extend(frame(1, &vec![i as u8; len]));
        if i % 7 == 0 {
            input.extend(command(b"PING", &[0, 10]));
        }
        input.extend(frame(0, &i.to_be_bytes()));
    }
    input.extend(command(b"SUBSCRIBE", b"topic"));
    input.extend(command(b"ERROR", b"\x03bye"));
    // Small receive buffer too, so long frames stream as chunks.
    for rx in [128, 512, 4096] {
        let make = move || {
            let mut s = session(&Config::new(SocketType::Router), Role::Accepted, rx, 4096);
            take_output(&mut s);
            s
        };
        let evs = feed_all_ways(&make, &input, rx as u64);
        assert_eq!(assemble(&evs).len(), 40, "rx {rx}");
        assert_eq!(
            &evs[evs.len() - 3..],
            [
                Ev::Subscribe(b"topic".to_vec()),
                Ev::PeerError(b"bye".to_vec()),
                Ev::Closed(CloseReason::PeerError)
            ]
        );
    }
}

// ------------------------------------------------------------------ Large bodies

#[test]
fn one_mib_frame_through_a_1_kib_buffer_arrives_as_chunks() {
    let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut p = Pair::with_buffers(
        &Config::new(SocketType::Push),
        &Config::new(SocketType::Pull),
        1024,
        1024,
    );
    p.handshake();
    p.client.start_frame(body.len() as u64, false).unwrap();
    let mut sent = 0;
    while sent < body.len() {
        match p.client.write_frame_body(&body[sent..]) {
            Ok(n) => sent += n,
            Err(SendError::WouldBlock) => p.run(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(p.client.frame_body_remaining(), 0);
    p.run();
    let chunks: Vec<_> = p
        .server_events
        .iter()
        .filter(|e| matches!(e, Ev::Chunk(..)))
        .collect();
    assert!(chunks.len() >= 1024, "{} chunks", chunks.len());
    assert!(chunks
        .iter()
        .all(|c| matches!(c, Ev::Chunk(d, ..) if d.len() <= 1024)));
    assert_eq!(normalize(&p.server_events[1..]), [Ev::Frame(body, false)]);
}

#[test]
fn small_frames_are_delivered_whole_and_zero_copy() {
    let mut s = ready_session(SocketType::Pull, "PUSH");
    s.feed(&frame(0, b"0123456789"), ms(0));
    let window_start = s.recv_window().as_ptr() as usize; // compacts: frame now at offset 0
    match s.poll_event() {
        Some(Event::Frame { data, more: false }) => {
            assert_eq!(data, b"0123456789");
            // The slice points into the receive buffer (after the 2-byte header).
            assert_eq!(data.as_ptr() as usize, window_start - 10);
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------ API misuse

#[test]
fn misuse_returns_named_errors_and_changes_nothing() {
    let mut s = session(&Config::new(SocketType::Dealer), Role::Connected, 256, 512);
    // Sending before the peer's greeting: our READY is not queued yet.
    assert_eq!(s.send_frame(b"x", false), Err(SendError::NotReady));
    let window = s.recv_window().len();
    assert_eq!(
        s.commit_received(window + 1, ms(0)),
        Err(UsageError::CommitExceedsWindow)
    );
    let pending = s.poll_transmit().len();
    assert_eq!(
        s.mark_transmitted(pending + 1),
        Err(UsageError::TransmitExceedsPending)
    );
    assert_eq!(s.poll_transmit().len(), pending);
    assert_eq!(s.write_frame_body(b"x"), Err(SendError::NoFrameInProgress));
    // Handshake, then a frame that can never fit the transmit buffer whole.
    let mut input = peer_greeting();
    input.extend(ready(&[(b"Socket-Type", b"ROUTER")]));
    s.feed(&input, ms(0));
    drain(&mut s);
    assert_eq!(s.send_frame(&[0; 600], false), Err(SendError::TooLarge));
    // Fill the buffer: WouldBlock, and the queued bytes are untouched.
    take_output(&mut s);
    s.send_frame(&[1; 400], false).unwrap();
    let before = s.poll_transmit().to_vec();
    assert_eq!(s.send_frame(&[2; 200], false), Err(SendError::WouldBlock));
    assert_eq!(s.poll_transmit(), &before[..]);
    // A streamed frame blocks other sends until its body is complete.
    take_output(&mut s);
    s.start_frame(3, false).unwrap();
    assert_eq!(s.send_frame(b"y", false), Err(SendError::FrameInProgress));
    assert_eq!(s.write_frame_body(b"abcdef"), Ok(3));
    s.send_frame(b"y", false).unwrap();
    assert_eq!(take_output(&mut s), [0, 3, b'a', b'b', b'c', 0, 1, b'y']);
    s.close();
    assert_eq!(s.send_frame(b"z", false), Err(SendError::Closed));
    assert_eq!(drain(&mut s), [Ev::Closed(CloseReason::Local)]);
    assert!(s.is_finished());
}

#[test]
fn events_after_close_are_none_and_closed_is_reported_once() {
    let mut s = ready_session(SocketType::Pull, "PUSH");
    s.handle_eof();
    assert_eq!(drain(&mut s), [Ev::Closed(CloseReason::Eof)]);
    assert_eq!(drain(&mut s), []);
    s.handle_timeout(Instant::from_millis(1_000_000));
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn empty_message_to_pub_is_a_message_not_a_subscription() {
    // Found by the session fuzz target: the legacy-subscription check read the byte after
    // an empty frame (here the next frame's flags, 00) and reported Cancel("").
    let mut input = frame(0, b"");
    input.extend(frame(0, b"\x01A"));
    let evs = feed_all_ways(&|| ready_session(SocketType::Pub, "SUB"), &input, 11);
    assert_eq!(
        evs,
        [Ev::Frame(vec![], false), Ev::Subscribe(b"A".to_vec())]
    );
}
