//! CURVE costs: a whole handshake, and sealing / opening MESSAGEs.
//!
//! - `curve/handshake`: a client and a server session from `Session::new_curve` to both
//!   reporting the handshake done, bytes moved in memory (four X25519 key agreements on each
//!   side plus the boxes; the server accepts at once).
//! - `curve/send/<size>`: `send_frame` of one frame sealed into a MESSAGE, then
//!   `poll_transmit`/`mark_transmitted` (one frame per iteration).
//! - `curve/recv/<size>`: a batch of sealed MESSAGEs fed to the receiving session and opened
//!   in place by the `poll_event` loop (bytes/s of frame bodies).
//!
//! ```text
//! cargo bench -p zmtp-core --bench curve
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zmtp_core::mechanism::curve::{CurveKeyPair, CurveRandom};
use zmtp_core::{Buffers, Config, Event, Instant, Role, Security, Session, SocketType};

fn buf(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

fn random(seed: u64) -> CurveRandom {
    let mut x = seed | 1;
    CurveRandom::from_fn(|b| {
        for v in b {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = x as u8;
        }
    })
}

fn configs() -> (Config<'static>, Config<'static>) {
    let server: &'static CurveKeyPair = Box::leak(Box::new(CurveKeyPair::from_secret([1; 32])));
    let client: &'static CurveKeyPair = Box::leak(Box::new(CurveKeyPair::from_secret([2; 32])));
    (
        Config::new(SocketType::Dealer).with_security(Security::CurveClient {
            server_key: *server.public_key(),
            keys: client,
        }),
        Config::new(SocketType::Router).with_security(Security::CurveServer { keys: server }),
    )
}

/// Moves all pending output of `from` into `to`; returns whether anything moved.
fn pass(from: &mut Session<'_>, to: &mut Session<'_>) -> bool {
    let mut moved = false;
    loop {
        let out = from.poll_transmit();
        if out.is_empty() {
            return moved;
        }
        let n = to.feed(out, Instant::ZERO);
        if n == 0 {
            return moved;
        }
        from.mark_transmitted(n).unwrap();
        moved = true;
    }
}

/// Drains events; accepts a pending client; returns whether the handshake completed.
fn drain(s: &mut Session<'_>) -> bool {
    let mut done = false;
    let mut auth = false;
    while let Some(e) = s.poll_event() {
        match e {
            Event::HandshakeComplete(_) => done = true,
            Event::Authenticate(_) => auth = true,
            Event::Closed(r) => panic!("closed: {r}"),
            _ => {}
        }
    }
    if auth {
        s.accept_peer();
        done |= drain(s);
    }
    done
}

/// Two sessions on fresh buffers, through the handshake.
fn handshake(
    cfgs: &(Config<'static>, Config<'static>),
    bufs: [(usize, usize); 2],
    seed: u64,
) -> (Session<'static>, Session<'static>) {
    let [(crx, ctx), (srx, stx)] = bufs;
    let mut c = Session::new_curve(
        &cfgs.0,
        Role::Connected,
        Buffers {
            rx: buf(crx),
            tx: buf(ctx),
        },
        Instant::ZERO,
        random(seed),
    )
    .unwrap();
    let mut s = Session::new_curve(
        &cfgs.1,
        Role::Accepted,
        Buffers {
            rx: buf(srx),
            tx: buf(stx),
        },
        Instant::ZERO,
        random(seed ^ 0xff),
    )
    .unwrap();
    let (mut c_done, mut s_done) = (false, false);
    while !(c_done && s_done) {
        let a = pass(&mut c, &mut s);
        s_done |= drain(&mut s);
        let b = pass(&mut s, &mut c);
        c_done |= drain(&mut c);
        assert!(a || b || (c_done && s_done), "handshake stalled");
    }
    (c, s)
}

fn bench_handshake(c: &mut Criterion) {
    let cfgs = configs();
    let mut g = c.benchmark_group("curve");
    g.throughput(Throughput::Elements(1));
    let mut seed = 1;
    g.bench_function("handshake", |b| {
        b.iter(|| {
            seed += 1;
            black_box(handshake(&cfgs, [(1024, 1024), (1024, 1024)], seed))
        })
    });
    g.finish();
}

fn bench_traffic(c: &mut Criterion) {
    let cfgs = configs();
    let mut g = c.benchmark_group("curve");
    for size in [64usize, 1024, 16 * 1024] {
        let body = vec![0x5au8; size];
        // Send: one sealed frame per iteration.
        let (mut client, _server) = handshake(&cfgs, [(1024, size + 1024), (1024, 1024)], 7);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("send/{size}"), |b| {
            b.iter(|| {
                client.send_frame(black_box(&body), false).unwrap();
                let n = client.poll_transmit().len();
                client.mark_transmitted(n).unwrap();
            })
        });
        // Receive: a batch of sealed frames, opened in place.
        let batch_frames = (256 * 1024 / (size + 64)).max(4);
        let rx = batch_frames * (size + 64);
        g.throughput(Throughput::Bytes((size * batch_frames) as u64));
        g.bench_function(format!("recv/{size}"), |b| {
            b.iter_batched(
                || {
                    let (mut c, s) = handshake(&cfgs, [(1024, rx), (rx, 1024)], 9);
                    let mut wire = Vec::new();
                    for _ in 0..batch_frames {
                        c.send_frame(&body, false).unwrap();
                    }
                    loop {
                        let out = c.poll_transmit();
                        if out.is_empty() {
                            break;
                        }
                        let n = out.len();
                        wire.extend_from_slice(out);
                        c.mark_transmitted(n).unwrap();
                    }
                    (s, wire)
                },
                |(mut s, wire)| {
                    assert_eq!(s.feed(&wire, Instant::ZERO), wire.len());
                    let mut total = 0;
                    while let Some(e) = s.poll_event() {
                        if let Event::Frame { data, .. } = e {
                            total += black_box(data).len();
                        }
                    }
                    assert_eq!(total, size * batch_frames);
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_handshake, bench_traffic);
criterion_main!(benches);
