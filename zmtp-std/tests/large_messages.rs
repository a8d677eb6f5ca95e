//! Large frames go between the application's `Vec`s and the streams without a copy through
//! zmtp-core (its direct frames): bodies of 32 KiB and more are written from the sender's
//! `Vec` by vectored writes, bodies of 8 KiB and more are read straight into the `Vec` the
//! receiver gets. Checked here against libzmq both ways, with multipart messages mixing
//! small and large frames, against a reader too slow to take a body in one write, and
//! against a peer announcing a huge body.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use zmtp_core::{CloseReason, ProtocolError};
use zmtp_std::{Context, MonitorEvent, Socket, SocketType};

mod common;
use common::{greeting, raw_peer, ready};

const STEP: Duration = Duration::from_secs(20);
const MIB: usize = 1 << 20;

/// One test at a time: they move hundreds of MiB, and one measures the process's memory.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn zsocket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s
}

/// `len` bytes, different for each `seed`.
fn body(seed: u32, len: usize) -> Vec<u8> {
    let s = seed.to_le_bytes();
    (0..len)
        .map(|k| s[k % 4].wrapping_add((k / 7) as u8))
        .collect()
}

/// Our socket, able to carry 16 MiB messages (a message must fit in `queue_size`).
fn ours(ctx: &Context, ty: SocketType) -> Socket {
    let s = ctx.socket(ty).unwrap();
    s.set_queue_size(17 * MIB).unwrap();
    s
}

fn assert_same(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: frame count");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "{what}: frame {k} differs ({} bytes, {} expected)",
            g.len(),
            w.len()
        );
    }
}

/// The messages of the tests: one frame of each size, then multipart ones mixing small,
/// empty and large frames around the thresholds (8 KiB received, 32 KiB sent directly).
fn messages() -> Vec<Vec<Vec<u8>>> {
    let mut m: Vec<Vec<Vec<u8>>> = [64 * 1024, MIB, 16 * MIB]
        .iter()
        .enumerate()
        .map(|(i, &n)| vec![body(i as u32, n)])
        .collect();
    m.push(vec![
        body(10, 5),
        body(11, 64 * 1024),
        Vec::new(),
        body(12, 40_000),
        body(13, 9000),
        body(14, 8191),
        body(15, 32 * 1024 - 1),
        body(16, MIB),
    ]);
    m.push(vec![body(20, 100_000), body(21, 3)]);
    m
}

#[test]
fn large_messages_from_us_to_libzmq_arrive_whole() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    for we_bind in [true, false] {
        let push = ours(&ctx, SocketType::Push);
        let pull = zsocket(&zctx, zmq::PULL);
        if we_bind {
            let ep = push.bind("tcp://127.0.0.1:0").unwrap();
            pull.connect(&ep).unwrap();
        } else {
            pull.bind("tcp://127.0.0.1:*").unwrap();
            push.connect(&pull.get_last_endpoint().unwrap().unwrap())
                .unwrap();
        }
        let msgs = messages();
        for m in &msgs {
            push.send_multipart_timeout(m, STEP).unwrap();
        }
        for (i, m) in msgs.iter().enumerate() {
            let got = pull.recv_multipart(0).unwrap();
            assert_same(&got, m, &format!("bind {we_bind}, message {i}"));
        }
    }
}

#[test]
fn large_messages_from_libzmq_to_us_arrive_whole() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    for we_bind in [true, false] {
        let pull = ours(&ctx, SocketType::Pull);
        let push = zsocket(&zctx, zmq::PUSH);
        if we_bind {
            let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
            push.connect(&ep).unwrap();
        } else {
            push.bind("tcp://127.0.0.1:*").unwrap();
            pull.connect(&push.get_last_endpoint().unwrap().unwrap())
                .unwrap();
        }
        let msgs = messages();
        for m in &msgs {
            push.send_multipart(m, 0).unwrap();
        }
        for (i, m) in msgs.iter().enumerate() {
            let got = pull.recv_multipart_timeout(STEP).unwrap();
            assert_same(&got, m, &format!("bind {we_bind}, message {i}"));
        }
    }
}

#[test]
fn dealer_and_router_route_large_messages_both_ways() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    // Our ROUTER, two libzmq DEALERs: replies go to the right one.
    let router = ours(&ctx, SocketType::Router);
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let dealers: Vec<zmq::Socket> = (0..2u8)
        .map(|i| {
            let d = zsocket(&zctx, zmq::DEALER);
            d.set_identity(&[b'd', i]).unwrap();
            d.connect(&ep).unwrap();
            d
        })
        .collect();
    for round in 0..3u32 {
        for (i, d) in dealers.iter().enumerate() {
            let req = vec![body(round, 50_000 + i), b"small".to_vec()];
            d.send_multipart(&req, 0).unwrap();
            let mut got = router.recv_multipart_timeout(STEP).unwrap();
            assert_eq!(got.remove(0), [b'd', i as u8]);
            assert_same(&got, &req, "request");
            let reply = vec![vec![b'd', i as u8], body(round + 7, 70_000), body(1, 10)];
            router.send_multipart_timeout(&reply, STEP).unwrap();
            let got = d.recv_multipart(0).unwrap();
            assert_same(&got, &reply[1..], "reply");
        }
    }
    // Our DEALER round robin over two libzmq ROUTERs, large frames only.
    let dealer = ours(&ctx, SocketType::Dealer);
    let routers: Vec<zmq::Socket> = (0..2)
        .map(|_| {
            let r = zsocket(&zctx, zmq::ROUTER);
            r.bind("tcp://127.0.0.1:*").unwrap();
            dealer
                .connect(&r.get_last_endpoint().unwrap().unwrap())
                .unwrap();
            r
        })
        .collect();
    // Both connected before the first send, so that round robin spreads the messages.
    let events = dealer.monitor().unwrap();
    let mut ready = 0;
    while ready < 2 {
        if let MonitorEvent::HandshakeSucceeded { .. } = events.recv_timeout(STEP).unwrap() {
            ready += 1;
        }
    }
    for k in 0..4u32 {
        dealer
            .send_multipart_timeout([body(k, 200_000)], STEP)
            .unwrap();
    }
    let mut seen = Vec::new();
    for r in &routers {
        for _ in 0..2 {
            let mut got = r.recv_multipart(0).unwrap();
            got.remove(0);
            assert_eq!(got.len(), 1);
            seen.push(got.remove(0));
        }
    }
    seen.sort();
    let mut want: Vec<Vec<u8>> = (0..4).map(|k| body(k, 200_000)).collect();
    want.sort();
    assert!(seen == want, "round robin lost or changed a message");
}

/// Reads exactly `buf.len()` bytes, a little at a time (a slow reader).
fn read_slowly(s: &mut TcpStream, buf: &mut [u8]) {
    let mut at = 0;
    while at < buf.len() {
        let end = (at + 4096).min(buf.len());
        match s.read(&mut buf[at..end]) {
            Ok(0) => panic!("stream closed after {at} of {} bytes", buf.len()),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// The next data frame from a raw stream (commands skipped): body and MORE flag.
fn read_frame(s: &mut TcpStream) -> (Vec<u8>, bool) {
    loop {
        let mut flags = [0u8];
        read_slowly(s, &mut flags);
        let len = if flags[0] & 2 != 0 {
            let mut l = [0u8; 8];
            read_slowly(s, &mut l);
            u64::from_be_bytes(l) as usize
        } else {
            let mut l = [0u8];
            read_slowly(s, &mut l);
            usize::from(l[0])
        };
        let mut body = vec![0u8; len];
        read_slowly(s, &mut body);
        if flags[0] & 4 == 0 {
            return (body, flags[0] & 1 != 0);
        }
    }
}

#[test]
fn a_reader_too_slow_for_one_write_gets_every_byte_in_order() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let push = ours(&ctx, SocketType::Push);
    let ep = push.bind("tcp://127.0.0.1:0").unwrap();
    // A raw PULL with a 4 KiB receive buffer, reading 4 KiB at a time: 4 x 4 MiB is far
    // more than the system's socket buffers (the send side's grows to 4 MiB at most), so
    // the vectored writes of every body end part-way, many times.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = ep.trim_start_matches("tcp://").parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut raw: TcpStream = sock.into();
    raw.set_read_timeout(Some(STEP)).unwrap();
    raw.write_all(&greeting()).unwrap();
    raw.write_all(&ready("PULL")).unwrap();
    let mut theirs = [0u8; 64];
    read_slowly(&mut raw, &mut theirs);
    let msgs: Vec<Vec<Vec<u8>>> = (0..4u32)
        .map(|i| vec![body(i, 300), body(i + 100, 4 * MIB), body(i + 200, 50_000)])
        .collect();
    let sender = {
        let msgs = msgs.clone();
        thread::spawn(move || {
            for m in &msgs {
                push.send_multipart_timeout(m, STEP).unwrap();
            }
            push
        })
    };
    for (i, m) in msgs.iter().enumerate() {
        for (k, f) in m.iter().enumerate() {
            let (got, more) = read_frame(&mut raw);
            assert!(got == *f, "message {i} frame {k}: {} bytes", got.len());
            assert_eq!(more, k + 1 < m.len(), "message {i} frame {k}");
        }
    }
    drop(sender.join().unwrap());
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn next_close(events: &std::sync::mpsc::Receiver<MonitorEvent>) -> CloseReason {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left).expect("no close event") {
            MonitorEvent::HandshakeFailed { reason, .. }
            | MonitorEvent::Disconnected { reason, .. } => return reason,
            _ => {}
        }
    }
}

#[test]
fn a_huge_announced_body_allocates_only_what_arrives() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    // The default limit (queue_size): a header announcing 2^40 bytes closes the
    // connection before any body byte is stored.
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let events = pull.monitor().unwrap();
    let mut raw = raw_peer(&ep, "PUSH");
    let mut frame = vec![0x02];
    frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
    frame.extend_from_slice(&[0xAB; 100]);
    raw.write_all(&frame).unwrap();
    assert_eq!(
        next_close(&events),
        CloseReason::Protocol(ProtocolError::MessageTooLarge)
    );
    // A limit far above memory: the body is allocated as it comes, 4 MiB at a time. 64 MiB
    // sent (more than the system buffers between the two sides hold, so most of it has been
    // read into the body when `write_all` returns) cost about that, not 2^40 bytes.
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_max_message_size(Some(1 << 50)).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let events = pull.monitor().unwrap();
    let good = zsocket(&zctx, zmq::PUSH);
    good.connect(&ep).unwrap();
    good.send(&b"before"[..], 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"before");
    let before = rss_kib();
    let mut raw = raw_peer(&ep, "PUSH");
    let mut header = vec![0x02];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    raw.write_all(&header).unwrap();
    let chunk = vec![0x5A; MIB];
    for _ in 0..64 {
        raw.write_all(&chunk).unwrap();
    }
    good.send(&b"during"[..], 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"during");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 160 * 1024, "memory grew by {grown} KiB");
    drop(raw);
    assert_eq!(next_close(&events), CloseReason::Eof);
    // The good peer is untouched.
    good.send(&b"after"[..], 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"after");
}

#[test]
fn plain_takes_the_direct_path_and_curve_the_copying_one_with_the_same_results() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    for curve in [false, true] {
        // CURVE seals each frame whole in the transmit buffer (64 KiB): its frames stay
        // below that.
        let big = if curve { 60_000 } else { MIB };
        let msgs = vec![
            vec![body(1, 60_000)],
            vec![body(2, 3), body(3, big), body(4, 40_000)],
        ];
        let pull = ours(&ctx, SocketType::Pull);
        let push = ours(&ctx, SocketType::Push);
        if curve {
            let (public, secret) = zmtp_std::curve_keypair().unwrap();
            pull.set_curve_server(true).unwrap();
            pull.set_curve_secretkey(secret.as_bytes()).unwrap();
            let (cp, cs) = zmtp_std::curve_keypair().unwrap();
            push.set_curve_serverkey(&public).unwrap();
            push.set_curve_publickey(&cp).unwrap();
            push.set_curve_secretkey(cs.as_bytes()).unwrap();
        } else {
            pull.set_plain_server(true).unwrap();
            push.set_plain_username("user").unwrap();
            push.set_plain_password("secret").unwrap();
        }
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        push.connect(&ep).unwrap();
        for m in &msgs {
            push.send_multipart_timeout(m, STEP).unwrap();
        }
        for (i, m) in msgs.iter().enumerate() {
            let got = pull
                .recv_multipart_timeout(STEP)
                .unwrap_or_else(|e| panic!("curve {curve}, message {i}: {e}"));
            assert_same(&got, m, &format!("curve {curve}, message {i}"));
        }
    }
}

#[test]
fn curve_frames_larger_than_the_transmit_buffer_are_refused_at_send() {
    // CURVE seals each frame whole (RFC 26): a frame must fit a connection's transmit
    // buffer. A larger one is refused by `send`, not queued to wait for ever; raising
    // `buffer_size` on both sides lets it through.
    let _serial = serial();
    let ctx = Context::new().unwrap();
    for buffer in [None, Some(256 * 1024)] {
        let pull = ours(&ctx, SocketType::Pull);
        let push = ours(&ctx, SocketType::Push);
        let (public, secret) = zmtp_std::curve_keypair().unwrap();
        pull.set_curve_server(true).unwrap();
        pull.set_curve_secretkey(secret.as_bytes()).unwrap();
        let (cp, cs) = zmtp_std::curve_keypair().unwrap();
        push.set_curve_serverkey(&public).unwrap();
        push.set_curve_publickey(&cp).unwrap();
        push.set_curve_secretkey(cs.as_bytes()).unwrap();
        if let Some(b) = buffer {
            pull.set_buffer_size(b).unwrap();
            push.set_buffer_size(b).unwrap();
        }
        let max = zmtp_core::curve_max_frame_body(buffer.unwrap_or(64 * 1024));
        if buffer.is_none() {
            assert_eq!(max, 65_417, "the documented default");
        }
        let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
        push.connect(&ep).unwrap();
        let too_big = [body(5, 10), body(6, max + 1)];
        match push.send_multipart_timeout(&too_big, STEP) {
            Err(zmtp_std::Error::MessageTooLarge) => {}
            other => panic!("buffer {buffer:?}: {other:?}"),
        }
        let largest = vec![body(7, 10), body(8, max)];
        push.send_multipart_timeout(&largest, STEP).unwrap();
        push.send_timeout(&b"after"[..], STEP).unwrap();
        let got = pull.recv_multipart_timeout(STEP).unwrap();
        assert_same(&got, &largest, &format!("buffer {buffer:?}, largest frame"));
        assert_eq!(pull.recv_timeout(STEP).unwrap(), b"after");
    }
}

/// Long bodies are used again (the `Vec` that `recv_into` replaces becomes the next body
/// read, a written body the next copy sent): messages of changing lengths, shorter and
/// longer than the last, come out exactly as sent, never with bytes of an earlier one.
#[test]
fn reused_bodies_never_show_bytes_of_earlier_messages() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let pull = ours(&ctx, SocketType::Pull);
    let push = ours(&ctx, SocketType::Push);
    push.connect(&pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    let lens = [
        64 * 1024,
        40_000,
        9000,
        100_000,
        8192,
        65_537,
        32 * 1024,
        8191,
        200_000,
    ];
    let sent: Vec<Vec<u8>> = (0..300u32)
        .map(|i| body(i, lens[i as usize % lens.len()]))
        .collect();
    let sender = {
        let sent = sent.clone();
        thread::spawn(move || {
            for (i, b) in sent.iter().enumerate() {
                if i % 3 == 2 {
                    push.send_multipart_timeout([b.as_slice(), b"tail"], STEP)
                        .unwrap();
                } else {
                    push.send_timeout(b, STEP).unwrap();
                }
            }
            push
        })
    };
    let mut buf = Vec::new();
    let mut msg = Vec::new();
    for (i, b) in sent.iter().enumerate() {
        if i % 3 == 2 {
            pull.recv_multipart_into(&mut msg).unwrap();
            assert_same(
                &msg,
                &[b.clone(), b"tail".to_vec()],
                &format!("message {i}"),
            );
        } else {
            let n = pull.recv_into_timeout(&mut buf, STEP).unwrap();
            assert_eq!(n, b.len(), "message {i}: length");
            assert!(buf == *b, "message {i} differs");
        }
    }
    drop(sender.join().unwrap());
}
