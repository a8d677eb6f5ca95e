//! Hostile and broken peers lose their own connection and nothing else: a raw TCP stream of
//! garbage, an oversize frame, a handshake that never finishes, a peer that sends forever
//! and never reads. Meanwhile a well-behaved libzmq peer keeps working, messages already
//! queued stay queued, and memory stays within the socket's limits.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use zmtp_core::{CloseReason, ProtocolError};
use zmtp_std::{Context, MonitorEvent, Socket, SocketType};

mod common;
use common::{closed_by_peer, greeting, raw_peer, zsocket, STEP};

/// The tests of this file run one at a time: one of them measures the process's memory.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The next `HandshakeFailed` or `Disconnected` reason from a monitor.
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

/// A PULL bound on loopback with a libzmq PUSH connected, and `queued` messages from it
/// waiting unread in the PULL.
fn pull_with_queued_messages(
    ctx: &Context,
    zctx: &zmq::Context,
    queued: u32,
) -> (Socket, String, zmq::Socket) {
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_max_message_size(Some(1000)).unwrap();
    pull.set_handshake_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let good = zsocket(zctx, zmq::PUSH);
    good.connect(&ep).unwrap();
    for i in 0..queued {
        good.send(&i.to_be_bytes()[..], 0).unwrap();
    }
    (pull, ep, good)
}

/// The good peer's messages: first the ones queued before, then `more` sent now, all in
/// order.
fn good_peer_still_works(pull: &Socket, good: &zmq::Socket, queued: u32, more: u32) {
    for i in queued..queued + more {
        good.send(&i.to_be_bytes()[..], 0).unwrap();
    }
    for i in 0..queued + more {
        assert_eq!(
            pull.recv_timeout(STEP).unwrap(),
            i.to_be_bytes(),
            "message {i}"
        );
    }
}

#[test]
fn garbage_closes_only_the_garbage_connection() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let (pull, ep, good) = pull_with_queued_messages(&ctx, &zctx, 10);
    let events = pull.monitor().unwrap();
    let mut raw = TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    // The peer may be cut off before it has written everything.
    let _ = raw.write_all(&garbage);
    assert!(matches!(
        next_close(&events),
        CloseReason::Protocol(ProtocolError::Greeting(_))
    ));
    assert!(closed_by_peer(&mut raw));
    good_peer_still_works(&pull, &good, 10, 100);
}

#[test]
fn an_oversize_frame_closes_only_that_connection() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let (pull, ep, good) = pull_with_queued_messages(&ctx, &zctx, 10);
    let events = pull.monitor().unwrap();
    for size in [1001u64, 1 << 40, u64::MAX] {
        let mut raw = raw_peer(&ep, "PUSH");
        // A long data frame header announcing `size` bytes, and a little of its body.
        let mut frame = vec![0x02];
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&[0xAB; 100]);
        let _ = raw.write_all(&frame);
        let reason = next_close(&events);
        assert!(
            matches!(
                reason,
                CloseReason::Protocol(
                    ProtocolError::MessageTooLarge
                        | ProtocolError::FrameTooLarge
                        | ProtocolError::Frame(_)
                )
            ),
            "{size}: {reason:?}"
        );
        assert!(closed_by_peer(&mut raw), "{size}");
    }
    // Split over frames: the sum counts too.
    let mut raw = raw_peer(&ep, "PUSH");
    let mut frames = Vec::new();
    for _ in 0..3 {
        frames.extend_from_slice(&[0x01, 200]);
        frames.extend_from_slice(&[0; 200]);
        frames.extend_from_slice(&[0x01, 200]);
        frames.extend_from_slice(&[0; 200]);
    }
    let _ = raw.write_all(&frames);
    assert_eq!(
        next_close(&events),
        CloseReason::Protocol(ProtocolError::MessageTooLarge)
    );
    assert!(closed_by_peer(&mut raw));
    good_peer_still_works(&pull, &good, 10, 100);
}

#[test]
fn a_handshake_that_never_finishes_times_out_alone() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let (pull, ep, good) = pull_with_queued_messages(&ctx, &zctx, 10);
    let events = pull.monitor().unwrap();
    let addr = ep.trim_start_matches("tcp://");
    // Silent; half a greeting; a greeting but no READY.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(&greeting()[..30]).unwrap();
    let mut no_ready = TcpStream::connect(addr).unwrap();
    no_ready.write_all(&greeting()).unwrap();
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(next_close(&events), CloseReason::HandshakeTimeout);
    }
    for s in [&mut silent, &mut half, &mut no_ready] {
        assert!(closed_by_peer(s));
    }
    assert!(start.elapsed() >= Duration::from_millis(250));
    good_peer_still_works(&pull, &good, 10, 100);
}

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_peer_that_sends_forever_and_never_reads_costs_bounded_memory() {
    let _serial = serial();
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    // An echo ROUTER with small limits.
    let router = ctx.socket(SocketType::Router).unwrap();
    router.set_send_hwm(100).unwrap();
    router.set_recv_hwm(100).unwrap();
    router.set_max_peers(4).unwrap();
    router.set_queue_size(256 * 1024).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(m) = router.recv_multipart_timeout(Duration::from_millis(20)) {
                    // Never blocks: a ROUTER drops replies for a peer at its HWM.
                    router.send_multipart(m).unwrap();
                }
            }
        });
        // The flooder: a DEALER that sends 1 KiB requests as fast as TCP takes them and
        // never reads the replies.
        let flooder = scope.spawn(|| {
            let mut raw = raw_peer(&ep, "DEALER");
            raw.set_write_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut batch = Vec::new();
            for _ in 0..64 {
                batch.extend_from_slice(&[0x00, 0xFF]);
                batch.extend_from_slice(&[0x42; 255]);
            }
            let mut sent = 0usize;
            while !stop.load(Ordering::SeqCst) {
                // Writes may be partial: carry on where the last one stopped.
                let at = sent % batch.len();
                match raw.write(&batch[at..]) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("the flooder was cut off: {e}"),
                }
            }
            (sent, raw)
        });
        let before = rss_kib();
        // Meanwhile a good libzmq DEALER gets every reply.
        let good = zsocket(&zctx, zmq::DEALER);
        good.connect(&ep).unwrap();
        let start = Instant::now();
        let mut rounds = 0u32;
        while start.elapsed() < Duration::from_millis(1500) {
            good.send(&rounds.to_be_bytes()[..], 0).unwrap();
            assert_eq!(good.recv_bytes(0).unwrap(), rounds.to_be_bytes());
            rounds += 1;
        }
        let grown = rss_kib().saturating_sub(before);
        eprintln!("{rounds} round trips while flooded; RSS grew by {grown} KiB");
        stop.store(true, Ordering::SeqCst);
        let (sent, _raw) = flooder.join().unwrap();
        assert!(rounds > 10, "{rounds} round trips");
        assert!(sent > 4 << 20, "the flooder only got {sent} bytes in");
        // The socket's memory was allocated up front (4 slots of 2 x 256 KiB queues and
        // 2 x 64 KiB buffers: 2.5 MiB); the flood must not grow it beyond that and the
        // application's queues (100 messages of 255 bytes each way).
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB while flooded");
    });
}
