//! Frame decode throughput of [`Session`] in the traffic phase.
//!
//! A batch of back-to-back data frames (as a socket read would deliver them) is copied into
//! the session's receive window, committed, and decoded by draining
//! [`Session::poll_event`] until `None`; every frame's body is consumed (`black_box` of the
//! slice and a running sum of lengths, checked against the expected total each iteration).
//!
//! Per case, three benchmarks run in one group, each reporting frames/s and bytes/s
//! (`Throughput::ElementsAndBytes`; bytes are wire bytes, headers included):
//!
//! - `copy+decode`: `recv_window` + `copy_from_slice` of the batch + `commit_received` + the
//!   `poll_event` loop: the cost of one socket read's worth of input, minus the syscall.
//! - `decode`: the `poll_event` loop alone. Measured with `iter_custom`: each iteration refills
//!   the window outside the timed region, then times the drain; only the drain is summed. The
//!   batch is therefore hot in cache, as it is right after a real `read`.
//! - `memcpy`: `copy_from_slice` of the same batch into a buffer of the same size, the
//!   reference the decoder is compared with.
//!
//! `decode` times each batch with two `Instant::now` calls (tens of ns per batch of 250 to
//! 4000 frames). `copy+decode` minus `memcpy` is a second, derived estimate of decode alone;
//! `BENCHMARKS.md` reports both.
//!
//! Cases: 64-byte frames in 64 KiB and 256 KiB batches, 1 KiB frames (8-byte LONG size) in a
//! 256 KiB batch, and three-part messages of 64-byte frames (MORE, MORE, last) in a 64 KiB
//! batch. The receive buffer is exactly one batch. Results and a profile: `BENCHMARKS.md`.
//!
//! ```text
//! cargo bench -p zmtp-core --bench decode                      # everything, about 1 minute
//! cargo bench -p zmtp-core --bench decode -- 'decode/64B/'     # one case
//! valgrind --tool=callgrind --toggle-collect='decode::drain' \
//!     target/release/deps/decode-<hash> --bench --profile-time 3 'decode/64B/decode$'
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zmtp_core::wire::FrameHeader;
use zmtp_core::{Buffers, Config, Event, Instant, Role, Session, SocketType};

/// One benchmark input: `parts`-frame messages of `body`-byte frames, filling about
/// `target` bytes of wire data.
struct Case {
    name: &'static str,
    body: usize,
    parts: usize,
    target: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "64B",
        body: 64,
        parts: 1,
        target: 64 * 1024,
    },
    Case {
        name: "64B-256KiB",
        body: 64,
        parts: 1,
        target: 256 * 1024,
    },
    Case {
        name: "1KiB",
        body: 1024,
        parts: 1,
        target: 256 * 1024,
    },
    Case {
        name: "3x64B-multipart",
        body: 64,
        parts: 3,
        target: 64 * 1024,
    },
];

/// The wire bytes of whole messages fitting in `case.target`, and the number of frames.
fn build_batch(case: &Case) -> (Vec<u8>, usize) {
    let mut header = [0u8; 9];
    let hl = FrameHeader::data(case.body as u64, false).encoded_len();
    let message = (hl + case.body) * case.parts;
    let messages = case.target / message;
    let mut batch = Vec::with_capacity(messages * message);
    for m in 0..messages {
        for p in 0..case.parts {
            let more = p + 1 < case.parts;
            let n = FrameHeader::data(case.body as u64, more)
                .emit(&mut header)
                .expect("header fits 9 bytes");
            batch.extend_from_slice(&header[..n]);
            batch.extend((0..case.body).map(|i| (m + p + i) as u8));
        }
    }
    (batch, messages * case.parts)
}

/// A NULL greeting from a ZMTP 3.1 peer.
fn peer_greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xff;
    g[8] = 0x01;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// The peer's READY command with `Socket-Type` = `socket_type`.
fn peer_ready(socket_type: &[u8]) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type);
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

/// A DEALER session talking to a ROUTER, past the handshake, with its output discarded.
fn ready_session<'b>(rx: &'b mut [u8], tx: &'b mut [u8]) -> Session<'b> {
    let cfg = Config::new(SocketType::Dealer);
    let buffers = Buffers { rx, tx };
    let mut s = Session::new(&cfg, Role::Connected, buffers, Instant::ZERO).expect("session");
    let mut input = peer_greeting();
    input.extend(peer_ready(b"ROUTER"));
    assert_eq!(s.feed(&input, Instant::ZERO), input.len());
    assert!(matches!(s.poll_event(), Some(Event::HandshakeComplete(_))));
    assert!(s.poll_event().is_none());
    loop {
        let n = s.poll_transmit().len();
        if n == 0 {
            break;
        }
        s.mark_transmitted(n).expect("n is pending");
    }
    assert!(s.is_ready());
    s
}

/// Copies `batch` into the receive window and commits it, as a socket read would.
#[inline(always)]
fn refill(s: &mut Session<'_>, batch: &[u8]) {
    let window = s.recv_window();
    window[..batch.len()].copy_from_slice(batch);
    s.commit_received(batch.len(), Instant::ZERO)
        .expect("batch fits the window");
}

/// Drains `poll_event` until `None`, consuming every frame; returns (frames, body bytes).
///
/// Not inlined (one call per batch, so the call costs nothing measurable) so that profilers
/// can attribute the hot loop: `valgrind --tool=callgrind --toggle-collect='*decode::drain*'`.
#[inline(never)]
fn drain(s: &mut Session<'_>) -> (usize, usize) {
    let mut frames = 0usize;
    let mut bytes = 0usize;
    while let Some(ev) = s.poll_event() {
        match ev {
            Event::Frame { data, more } => {
                black_box((data, more));
                frames += 1;
                bytes += data.len();
            }
            // Not `other => panic!("{other:?}")`: that keeps the whole event alive and adds
            // copies to the hot loop that a real consumer would not have.
            _ => panic!("unexpected event"),
        }
    }
    (frames, bytes)
}

fn decode(c: &mut Criterion) {
    for case in CASES {
        let (batch, frames) = build_batch(case);
        let expected = (frames, frames * case.body);
        let mut rx = vec![0u8; batch.len()];
        let mut tx = vec![0u8; 1024];
        let mut s = ready_session(&mut rx, &mut tx);

        let mut g = c.benchmark_group(format!("decode/{}", case.name));
        g.throughput(Throughput::ElementsAndBytes {
            elements: frames as u64,
            bytes: batch.len() as u64,
        });

        g.bench_function("copy+decode", |b| {
            b.iter(|| {
                refill(&mut s, black_box(&batch));
                let got = drain(&mut s);
                assert_eq!(got, expected);
            })
        });

        g.bench_function("decode", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    refill(&mut s, black_box(&batch));
                    let t0 = std::time::Instant::now();
                    let got = drain(&mut s);
                    total += t0.elapsed();
                    assert_eq!(got, expected);
                }
                total
            })
        });

        let mut dst = vec![0u8; batch.len()];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&batch));
                black_box(&mut dst);
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode
}
criterion_main!(benches);
