//! A peer whose bytes come in pieces, with pauses between them, delivers every message.
//!
//! The I/O loop stops reading a stream when a read returns less than it asked for (on Unix
//! that read took everything the kernel had: see `read_some` in `src/io.rs`) and waits for
//! the next readiness event, and reads on after a read that filled its buffer. These tests
//! make every piece such a short read (the pauses let the loop read each piece before the
//! next one is written), and end with a read that fills a large body exactly while the next
//! frame is already waiting: a loop that took a full read for a drained socket would never
//! read that frame (no new event comes for bytes already there).

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use zmtp_std::{Context, SocketType};

mod common;
use common::{greeting, raw_peer, ready, STEP};

/// Time for the loop to read one piece before the next is written (not a synchronisation
/// the test relies on: without it the pieces may only arrive together, which passes too).
const PAUSE: Duration = Duration::from_millis(20);

/// Writes `bytes` to `s` in pieces of the given lengths (the rest as a last piece), pausing
/// after each.
fn write_in_pieces(s: &mut TcpStream, bytes: &[u8], pieces: &[usize]) {
    let mut rest = bytes;
    for &n in pieces {
        let (piece, after) = rest.split_at(n.min(rest.len()));
        s.write_all(piece).unwrap();
        s.flush().unwrap();
        thread::sleep(PAUSE);
        rest = after;
    }
    if !rest.is_empty() {
        s.write_all(rest).unwrap();
    }
}

/// A PULL bound on loopback, and a raw TCP PUSH connected to it, its handshake written.
fn pull_and_raw_push(ctx: &Context) -> (zmtp_std::Socket, TcpStream) {
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    s.set_nodelay(true).unwrap();
    let mut hello = greeting();
    hello.extend_from_slice(&ready("PUSH"));
    // The greeting in pieces too: the handshake reads the same way.
    write_in_pieces(&mut s, &hello, &[1, 10, 30]);
    (pull, s)
}

/// A data frame (RFC 37 §"Framing": short if the body fits 255 bytes, long otherwise).
fn frame(body: &[u8], more: bool) -> Vec<u8> {
    let flags = u8::from(more);
    let mut f = if body.len() <= 255 {
        vec![flags, body.len() as u8]
    } else {
        let mut h = vec![flags | 0x02];
        h.extend_from_slice(&(body.len() as u64).to_be_bytes());
        h
    };
    f.extend_from_slice(body);
    f
}

#[test]
fn small_frames_split_anywhere_are_delivered_whole() {
    let ctx = Context::new().unwrap();
    let (pull, mut s) = pull_and_raw_push(&ctx);
    // A header split from its body, a body in three pieces, a two-frame message split
    // between its frames.
    write_in_pieces(&mut s, &frame(b"hello", false), &[1, 1, 2]);
    let mut two = frame(b"first", true);
    two.extend_from_slice(&frame(b"second", false));
    write_in_pieces(&mut s, &two, &[3, 4]);
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"hello");
    assert_eq!(
        pull.recv_multipart_timeout(STEP).unwrap(),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
}

#[test]
fn large_frames_split_anywhere_are_delivered_whole() {
    let ctx = Context::new().unwrap();
    let (pull, mut s) = pull_and_raw_push(&ctx);
    // Above the size at which the body is read straight into the message's buffer.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = frame(&body, false);
    bytes.extend_from_slice(&frame(b"after", false));
    // The last piece is the body's end and the next frame: a read that fills the body
    // exactly leaves the next frame in the kernel, with no new event to come for it.
    write_in_pieces(&mut s, &bytes, &[5, 4, 1000, 30_000]);
    assert_eq!(pull.recv_timeout(STEP).unwrap(), body);
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"after");
}

#[test]
fn the_end_of_a_stream_read_behind_back_pressure_is_seen() {
    // The peer sends more than the socket takes without the application (its inbox holds
    // one message, the session's buffer the next 64 KiB), then closes: the rest and the
    // end of the stream wait in the kernel, reported by events the loop has already had.
    // When the application reads, the last read is a short one, and only the read after
    // it sees the end.
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_recv_hwm(1).unwrap();
    let events = pull.monitor().unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let mut s = raw_peer(&ep, "PUSH");
    const COUNT: u32 = 100;
    let mut bytes = Vec::new();
    for i in 0..COUNT {
        let mut body = vec![0u8; 1000];
        body[..4].copy_from_slice(&i.to_be_bytes());
        bytes.extend_from_slice(&frame(&body, false));
    }
    s.write_all(&bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    // Time for the bytes and the end to arrive while the socket is full.
    thread::sleep(PAUSE);
    for i in 0..COUNT {
        let m = pull.recv_timeout(STEP).unwrap();
        assert_eq!(m[..4], i.to_be_bytes(), "message {i}");
    }
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(zmtp_std::MonitorEvent::Disconnected { .. }) => break,
            Ok(_) => {}
            Err(e) => panic!("the end of the stream was never seen ({e})"),
        }
    }
}
