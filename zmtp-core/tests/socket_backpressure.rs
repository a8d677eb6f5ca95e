//! Receive back-pressure: input the receive queue has no room for waits in the session until
//! the application has received, whatever the frame size; only a message the queue could never
//! hold closes the connection, with a typed reason.

mod common;

use common::net::Net;
use zmtp_core::socket::{SocketConfig, SocketEvent};
use zmtp_core::{CloseReason, Config, ProtocolError, SocketType};

const KIB: usize = 1024;

/// A PULL socket whose peers have a 16 KiB receive buffer and a 256 KiB receive queue, with
/// one PUSH peer that can hold a lot of output.
fn pull_net(rx: usize, queue: usize) -> Net {
    let cfg = SocketConfig::new(Config::new(SocketType::Pull));
    let mut n = Net::with_memory(cfg, 2, rx, 1024, queue);
    n.connect_with(SocketType::Push, b"", 4096, 1 << 20);
    n
}

fn closed(n: &Net) -> Vec<CloseReason> {
    n.socket_events
        .iter()
        .filter_map(|e| match e {
            SocketEvent::PeerClosed(_, r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn recv_one(n: &mut Net) -> Option<Vec<Vec<u8>>> {
    n.run();
    let m = n.socket.recv().ok()?;
    Some(m.frames().map(<[u8]>::to_vec).collect())
}

#[test]
fn frames_larger_than_the_rx_buffer_wait_for_queue_room_instead_of_closing() {
    // The reported case: 16 KiB rx buffer, 256 KiB queue, three 90 KiB messages, the
    // application not receiving. The third used to close the connection.
    let mut n = pull_net(16 * KIB, 256 * KIB);
    let bodies: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 90 * KIB]).collect();
    for b in &bodies {
        n.remotes[0].send(&[b]);
    }
    n.run();
    assert_eq!(
        closed(&n),
        [],
        "nothing closed while the application is slow"
    );
    for (i, b) in bodies.iter().enumerate() {
        let m = recv_one(&mut n).unwrap_or_else(|| panic!("message {i} delivered"));
        assert_eq!(m, std::slice::from_ref(b), "message {i} whole and in order");
    }
    assert_eq!(recv_one(&mut n), None);
    assert_eq!(closed(&n), []);
}

#[test]
fn many_large_messages_all_arrive_through_a_small_queue() {
    // Two messages fit; the third's first (streamed) frame does too, its second must wait
    // for the application, and so on for every message after.
    let mut n = pull_net(16 * KIB, 128 * KIB);
    let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 50 * KIB]).collect();
    for b in &bodies {
        n.remotes[0].send(&[&b[..10 * KIB], &b[10 * KIB..]]);
    }
    for (i, b) in bodies.iter().enumerate() {
        let m = recv_one(&mut n).unwrap_or_else(|| panic!("message {i} delivered"));
        assert_eq!(m.concat(), *b, "message {i}");
        assert_eq!(m.len(), 2);
    }
    assert_eq!(closed(&n), []);
}

#[test]
fn a_streamed_frame_that_could_never_fit_closes_with_message_too_large() {
    // The body fits the session's message limit (the queue's size) but not with its record.
    let mut n = pull_net(1024, 4096);
    n.remotes[0].send(&[&[7u8; 4093]]);
    n.run();
    assert_eq!(
        closed(&n),
        [CloseReason::Protocol(ProtocolError::MessageTooLarge)]
    );
}

#[test]
fn a_message_whose_frames_outgrow_the_queue_closes_with_message_too_large() {
    // 40 + 40 KiB bodies fit the message limit, but the first frame leaves too little room for
    // the second even in an empty queue.
    let mut n = pull_net(16 * KIB, 80 * KIB);
    n.remotes[0].send(&[&[1u8; 40 * KIB], &[2u8; 40 * KIB - 8]]);
    n.run();
    assert_eq!(
        closed(&n),
        [CloseReason::Protocol(ProtocolError::MessageTooLarge)]
    );
    assert_eq!(recv_one(&mut n), None, "nothing of it is delivered");
}

#[test]
fn a_queue_with_a_partial_message_still_takes_a_large_frame_that_fits() {
    // Queued: one whole message; then a two-frame message whose second frame is streamed and
    // only fits once the first message is received.
    let mut n = pull_net(16 * KIB, 100 * KIB);
    n.remotes[0].send(&[&[1u8; 60 * KIB]]);
    n.remotes[0].send(&[&[2u8; 10 * KIB], &[3u8; 50 * KIB]]);
    n.run();
    assert_eq!(closed(&n), []);
    assert_eq!(recv_one(&mut n), Some(vec![vec![1u8; 60 * KIB]]));
    assert_eq!(
        recv_one(&mut n),
        Some(vec![vec![2u8; 10 * KIB], vec![3u8; 50 * KIB]])
    );
    assert_eq!(closed(&n), []);
}
