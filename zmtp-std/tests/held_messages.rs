//! PULL, DEALER, PAIR, SUB and XSUB copy one-frame messages from the connection's receive
//! buffer straight into the inbox (zmtp-core's `Socket::take_messages`), the others through
//! the core's queue: with both kinds mixed, several senders and a full inbox, every sender's
//! messages still arrive whole, in order, and none is lost or repeated.

use std::time::Duration;

use zmtp_std::{Context, Error, SocketType};

mod common;
use common::STEP;

/// Message `i` of sender `s`: one frame (of 1 to 300 bytes) or, every seventh, three.
fn msg(s: u8, i: u32) -> Vec<Vec<u8>> {
    let mut first = vec![s];
    first.extend_from_slice(&i.to_be_bytes());
    first.resize(5 + (i as usize * 37) % 296, s ^ (i as u8));
    if i % 7 == 3 {
        vec![first, b"middle".to_vec(), vec![s; (i % 50) as usize]]
    } else {
        vec![first]
    }
}

#[test]
fn mixed_one_frame_and_multipart_messages_from_two_senders_through_a_full_inbox() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    // A small inbox and receive buffer: most of the time one is full.
    pull.set_recv_hwm(10).unwrap();
    let mut opts = pull.options();
    opts.buffer_size = 4096;
    pull.set_options(opts).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let n = 5000u32;
    let senders: Vec<_> = (0..2u8)
        .map(|s| {
            let push = ctx.socket(SocketType::Push).unwrap();
            push.connect(&ep).unwrap();
            std::thread::spawn(move || {
                for i in 0..n {
                    push.send_multipart(msg(s, i)).unwrap();
                }
                push
            })
        })
        .collect();
    let mut next = [0u32; 2];
    let mut got = 0;
    while got < 2 * n {
        let m = pull.recv_multipart_timeout(STEP).unwrap();
        let s = m[0][0];
        assert!(s < 2, "unknown sender {s}");
        let i = next[s as usize];
        assert_eq!(m, msg(s, i), "sender {s} message {i}");
        next[s as usize] += 1;
        got += 1;
    }
    for t in senders {
        drop(t.join().unwrap());
    }
    assert!(matches!(
        pull.recv_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
}

#[test]
fn a_one_frame_message_over_the_size_limit_ends_only_its_connection() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_max_message_size(Some(100)).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let good = ctx.socket(SocketType::Push).unwrap();
    good.connect(&ep).unwrap();
    let bad = ctx.socket(SocketType::Push).unwrap();
    bad.set_reconnect_interval(None).unwrap();
    bad.connect(&ep).unwrap();
    for i in 0..100u8 {
        good.send([i; 100]).unwrap();
    }
    bad.send([1u8; 50]).unwrap();
    bad.send([2u8; 101]).unwrap();
    bad.send([3u8; 50]).unwrap();
    let mut from_good = 0u8;
    let mut from_bad = Vec::new();
    while from_good < 100 {
        let m = pull.recv_timeout(STEP).unwrap();
        assert!(m.len() <= 100, "a message over the limit came through");
        if m.len() == 100 {
            assert_eq!(m, [from_good; 100]);
            from_good += 1;
        } else {
            from_bad.push(m[0]);
        }
    }
    // The bad sender's first message may come before its connection ends; never the
    // oversized one, never what followed it on that connection.
    while let Ok(m) = pull.recv_timeout(Duration::from_millis(200)) {
        from_bad.push(m[0]);
    }
    assert!(from_bad.is_empty() || from_bad == [1], "{from_bad:?}");
}
