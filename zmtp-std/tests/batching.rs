//! Messages cross between the application and the I/O thread in batches (a queue swapped
//! whole under one lock): order, frame boundaries, large frames, the high-water marks and
//! readiness must come out as if they crossed one by one.

use std::time::{Duration, Instant};

use zmtp_std::{poll, Context, Error, PollEvents, SocketType};

mod common;
use common::STEP;

/// A message's bytes, different for each `i` (`len` bytes).
fn body(i: u32, len: usize) -> Vec<u8> {
    let seed = i.to_be_bytes();
    (0..len).map(|k| seed[k % 4] ^ (k as u8)).collect()
}

#[test]
fn mixed_sizes_and_frame_counts_arrive_whole_and_in_order() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    // Sizes around the batch's own-allocation threshold (8 KiB) and empty frames, one to
    // twelve frames (more than the 8 kept on the stack).
    let sizes = [0usize, 1, 64, 8191, 8192, 8193, 70_000];
    let msg = move |i: u32| -> Vec<Vec<u8>> {
        let frames = 1 + (i as usize % 12);
        (0..frames)
            .map(|f| body(i + f as u32, sizes[(i as usize + f) % sizes.len()]))
            .collect()
    };
    let n = 300u32;
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            if i % 2 == 0 {
                push.send_multipart(msg(i)).unwrap();
            } else {
                let m = msg(i);
                let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
                push.send_multipart(refs).unwrap();
            }
        }
        push
    });
    for i in 0..n {
        let want = msg(i);
        if i % 3 == 0 {
            // Frame by frame, with `has_more`.
            for (k, f) in want.iter().enumerate() {
                assert_eq!(
                    &pull.recv_timeout(STEP).unwrap(),
                    f,
                    "message {i} frame {k}"
                );
                assert_eq!(pull.has_more(), k + 1 < want.len(), "message {i} frame {k}");
            }
        } else if i % 3 == 1 && want.len() > 1 {
            // The first frame alone, then the rest at once.
            assert_eq!(pull.recv_timeout(STEP).unwrap(), want[0]);
            assert!(pull.has_more());
            assert_eq!(pull.recv_multipart_timeout(STEP).unwrap(), want[1..]);
            assert!(!pull.has_more());
        } else {
            assert_eq!(
                pull.recv_multipart_timeout(STEP).unwrap(),
                want,
                "message {i}"
            );
        }
    }
    drop(sender.join().unwrap());
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
}

#[test]
fn a_full_inbox_resumes_after_reading_and_poll_sees_it() {
    // The receiver's high-water mark is small: the I/O thread stops taking messages until
    // the application has read what it holds, and must be let go on when it has, whether
    // the application reads on with `recv` or waits in `poll`.
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_recv_hwm(3).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&ep).unwrap();
    let n = 2000u32;
    for i in 0..n {
        push.send(i.to_be_bytes()).unwrap();
    }
    let mut items = [pull.as_poll_item(PollEvents::IN)];
    for i in 0..n {
        if i % 2 == 0 {
            assert_eq!(poll(&mut items, Some(STEP)).unwrap(), 1, "message {i}");
            assert_eq!(pull.try_recv().unwrap(), i.to_be_bytes(), "message {i}");
        } else {
            assert_eq!(pull.recv_timeout(STEP).unwrap(), i.to_be_bytes());
        }
    }
    assert_eq!(
        poll(&mut items, Some(Duration::from_millis(20))).unwrap(),
        0
    );
}

#[test]
fn send_hwm_counts_messages_the_io_thread_has_not_given_to_a_peer() {
    // Messages the I/O thread took from the outbox but could not hand to a peer still
    // count against `send_hwm`: a PUSH without peers takes exactly `send_hwm` messages.
    let ctx = Context::new().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_send_hwm(5).unwrap();
    push.set_linger(Some(Duration::ZERO));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("tcp://{}", listener.local_addr().unwrap());
    drop(listener);
    push.connect(&nowhere).unwrap();
    for i in 0..5u8 {
        push.try_send([i]).unwrap();
    }
    // Give the I/O thread time to take the batch (it must not make room by doing so).
    let until = Instant::now() + Duration::from_millis(50);
    while Instant::now() < until {
        assert!(matches!(push.try_send("x"), Err(Error::WouldBlock)));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn correlating_req_skips_a_stale_reply_already_taken_into_its_batch() {
    // A ROUTER plays the server and answers the first request twice: with
    // `req_correlate`, the second answer is stale once the REQ has sent again, even when
    // it reaches the REQ's side together with the right one.
    let ctx = Context::new().unwrap();
    let router = ctx.socket(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_req_correlate(true).unwrap();
    req.set_req_relaxed(true).unwrap();
    req.connect(&ep).unwrap();
    req.send("one").unwrap();
    // [peer, request id, delimiter, body]
    let first = router.recv_multipart_timeout(STEP).unwrap();
    assert_eq!(first.len(), 4);
    assert_eq!(first[3], b"one");
    router
        .send_multipart([&first[0][..], &first[1], b"", b"reply to one"])
        .unwrap();
    assert_eq!(req.recv_timeout(STEP).unwrap(), b"reply to one");
    req.send("two").unwrap();
    let second = router.recv_multipart_timeout(STEP).unwrap();
    assert_eq!(second[3], b"two");
    // A late duplicate for "one", then the real reply for "two".
    router
        .send_multipart([&first[0][..], &first[1], b"", b"late"])
        .unwrap();
    router
        .send_multipart([&second[0][..], &second[1], b"", b"reply to two"])
        .unwrap();
    assert_eq!(req.recv_timeout(STEP).unwrap(), b"reply to two");
    assert!(matches!(req.try_recv(), Err(Error::State)));
}

#[test]
fn no_wake_up_is_lost_whatever_the_io_spin() {
    // While the I/O thread spins, a send pokes a flag instead of writing to the waker; a
    // poke racing with the end of the spin must still be seen. Spins of zero (never), a
    // microsecond (ending all the time, racing with the sends) and the default.
    for spin in [
        Duration::ZERO,
        Duration::from_micros(1),
        Duration::from_micros(200),
    ] {
        let ctx = Context::new().unwrap();
        ctx.set_io_spin(spin);
        let rep = ctx.socket(SocketType::Rep).unwrap();
        let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..2000 {
                let m = rep.recv_timeout(STEP).unwrap();
                rep.send(m).unwrap();
            }
        });
        let client_ctx = Context::new().unwrap();
        client_ctx.set_io_spin(spin);
        let req = client_ctx.socket(SocketType::Req).unwrap();
        req.connect(&ep).unwrap();
        for i in 0..2000u32 {
            req.send(i.to_be_bytes()).unwrap();
            assert_eq!(
                req.recv_timeout(STEP).unwrap(),
                i.to_be_bytes(),
                "spin {spin:?}, round trip {i}"
            );
        }
        server.join().unwrap();
    }
}
