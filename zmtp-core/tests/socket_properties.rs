//! Property tests for the socket layer: any interleaving of peer arrivals, departures,
//! partial deliveries, sends and receives keeps every message whole and per-peer order.

mod common;

use common::net::Net;
use proptest::prelude::*;
use zmtp_core::socket::{SocketConfig, SocketSendError};
use zmtp_core::{Config, SocketType};

#[derive(Clone, Debug)]
enum Op {
    /// A new remote peer connects.
    Connect,
    /// Remote `peer` sends a message of `frames` frames of `len` bytes each.
    RemoteSend {
        peer: usize,
        frames: usize,
        len: usize,
    },
    /// Remote `peer` sends only the first frames of a message, then dies.
    DieMidMessage { peer: usize },
    /// The socket sends a message.
    Send { frames: usize, len: usize },
    /// The application takes up to `n` messages.
    Recv { n: usize },
    /// Move at most `bytes` per peer and direction.
    Trickle { bytes: usize },
    /// Everything moves.
    Run,
    /// Remote `peer` stops or starts reading.
    Reading { peer: usize, on: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Connect),
        4 => (0..4usize, 1..4usize, 0..300usize)
            .prop_map(|(peer, frames, len)| Op::RemoteSend { peer, frames, len }),
        // Frames larger than the socket's 512-byte receive buffer come in chunks; three of
        // them still fit the 4096-byte receive queue.
        2 => (0..4usize, 1..4usize, 500..1300usize)
            .prop_map(|(peer, frames, len)| Op::RemoteSend { peer, frames, len }),
        1 => (0..4usize).prop_map(|peer| Op::DieMidMessage { peer }),
        3 => (1..4usize, 0..300usize).prop_map(|(frames, len)| Op::Send { frames, len }),
        2 => (1..5usize).prop_map(|n| Op::Recv { n }),
        3 => (1..200usize).prop_map(|bytes| Op::Trickle { bytes }),
        1 => Just(Op::Run),
        1 => (0..4usize, any::<bool>()).prop_map(|(peer, on)| Op::Reading { peer, on }),
    ]
}

/// Frame `k` of message `seq` from `origin`: its bytes say who, which message, which frame,
/// so any mix-up or truncation is caught.
fn make_frame(origin: u8, seq: u16, k: usize, len: usize) -> Vec<u8> {
    let mut f = vec![origin, (seq >> 8) as u8, seq as u8, k as u8];
    f.resize(len.max(4), (seq as u8) ^ (k as u8));
    f
}

fn check_message(frames: &[Vec<u8>]) -> (u8, u16) {
    assert!(!frames.is_empty());
    let origin = frames[0][0];
    let seq = u16::from_be_bytes([frames[0][1], frames[0][2]]);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(
            f[..4],
            [origin, (seq >> 8) as u8, seq as u8, k as u8],
            "frame {k} of {origin}/{seq}"
        );
        assert!(
            f[4..].iter().all(|&b| b == (seq as u8) ^ (k as u8)),
            "body of {origin}/{seq}/{k}"
        );
    }
    (origin, seq)
}

/// Moves at most `max` bytes per peer and direction, once.
fn trickle(n: &mut Net, max: usize) {
    let now = n.now;
    for r in n.remotes.iter_mut() {
        if r.reading && !r.session.is_closed() {
            let out = n.socket.poll_transmit(r.handle);
            let take = out.len().min(max);
            if take > 0 {
                let chunk = out[..take].to_vec();
                let fed = r.session.feed(&chunk, now);
                n.socket.mark_transmitted(r.handle, fed).unwrap();
            }
        }
        let window = n.socket.recv_window(r.handle).len();
        let out = r.session.poll_transmit();
        let take = out.len().min(max).min(window);
        if take > 0 {
            let chunk = out[..take].to_vec();
            r.session.mark_transmitted(take).unwrap();
            assert_eq!(n.socket.feed(r.handle, &chunk, now), take);
        }
    }
}

fn run_ops(ty: SocketType, peer_ty: SocketType, ops: Vec<Op>) {
    let mut cfg = SocketConfig::new(Config::new(ty));
    cfg.send_hwm = 4;
    cfg.recv_hwm = 4;
    let mut n = Net::with_memory(cfg, 6, 512, 512, 4096);
    // What each remote sent whole (in order), and what the socket sent whole.
    let mut sent_by_remote: Vec<Vec<u16>> = Vec::new();
    let mut dead: Vec<bool> = Vec::new();
    let mut received: Vec<Vec<u16>> = Vec::new();
    let mut socket_seq: u16 = 0;
    let mut socket_sent = 0usize;
    let mut remote_seq: Vec<u16> = Vec::new();
    for op in ops {
        match op {
            Op::Connect => {
                if n.socket.peers().count() < 6 {
                    let i = n.connect(peer_ty, b"");
                    let _ = i;
                    sent_by_remote.push(Vec::new());
                    received.push(Vec::new());
                    dead.push(false);
                    remote_seq.push(0);
                }
            }
            Op::RemoteSend { peer, frames, len } => {
                let Some(r) = n.remotes.get_mut(peer) else {
                    continue;
                };
                if dead[peer] || !r.session.is_ready() {
                    continue;
                }
                let seq = remote_seq[peer];
                let msg: Vec<Vec<u8>> = (0..frames)
                    .map(|k| make_frame(peer as u8, seq, k, len))
                    .collect();
                let wire: usize = msg.iter().map(|f| f.len() + 9).sum();
                if r.session.poll_transmit().len() + wire > 60_000 {
                    continue; // the remote's own buffer; not what is under test
                }
                let refs: Vec<&[u8]> = msg.iter().map(Vec::as_slice).collect();
                r.send(&refs);
                remote_seq[peer] = seq + 1;
                sent_by_remote[peer].push(seq);
            }
            Op::DieMidMessage { peer } => {
                let Some(r) = n.remotes.get_mut(peer) else {
                    continue;
                };
                if dead[peer] || !r.session.is_ready() {
                    continue;
                }
                let seq = remote_seq[peer];
                let _ = r
                    .session
                    .send_frame(&make_frame(peer as u8, seq, 0, 10), true);
                n.run();
                n.kill(peer);
                dead[peer] = true;
            }
            Op::Send { frames, len } => {
                let msg: Vec<Vec<u8>> = (0..frames)
                    .map(|k| make_frame(200, socket_seq, k, len))
                    .collect();
                let mut refs: Vec<&[u8]> = msg.iter().map(Vec::as_slice).collect();
                // ROUTER: address a live peer by its routing id (the message is dropped if that
                // peer is full, as libzmq does).
                let id;
                if ty == SocketType::Router {
                    let live: Vec<_> = n
                        .socket
                        .peers()
                        .filter(|&h| n.socket.peer_type(h).is_some())
                        .collect();
                    let Some(&h) = live.get(socket_seq as usize % live.len().max(1)) else {
                        continue;
                    };
                    id = n.socket.peer_routing_id(h).unwrap().to_vec();
                    refs.insert(0, &id);
                }
                match n.socket.send(&refs) {
                    Ok(()) => {
                        socket_seq += 1;
                        socket_sent += 1;
                    }
                    Err(SocketSendError::WouldBlock) => {}
                    Err(SocketSendError::NotAllowed) if ty == SocketType::Pull => {}
                    Err(e) => panic!("send: {e:?}"),
                }
            }
            Op::Recv { n: count } => {
                for _ in 0..count {
                    let Ok(m) = n.socket.recv() else { break };
                    let who = n.remotes.iter().position(|r| r.handle == m.peer).unwrap();
                    let frames: Vec<Vec<u8>> = m.frames().map(<[u8]>::to_vec).collect();
                    let frames = if ty == SocketType::Router {
                        frames[1..].to_vec()
                    } else {
                        frames
                    };
                    let (origin, seq) = check_message(&frames);
                    assert_eq!(origin as usize, who, "delivered as from the wrong peer");
                    received[who].push(seq);
                }
            }
            Op::Trickle { bytes } => trickle(&mut n, bytes),
            Op::Run => n.run(),
            Op::Reading { peer, on } => {
                if let Some(r) = n.remotes.get_mut(peer) {
                    r.reading = on;
                }
            }
        }
    }
    // Drain everything.
    for r in n.remotes.iter_mut() {
        r.reading = true;
    }
    loop {
        n.run();
        let mut any = false;
        while let Ok(m) = n.socket.recv() {
            any = true;
            let who = n.remotes.iter().position(|r| r.handle == m.peer).unwrap();
            let frames: Vec<Vec<u8>> = m.frames().map(<[u8]>::to_vec).collect();
            let frames = if ty == SocketType::Router {
                frames[1..].to_vec()
            } else {
                frames
            };
            let (origin, seq) = check_message(&frames);
            assert_eq!(origin as usize, who);
            received[who].push(seq);
        }
        if !any {
            break;
        }
    }
    // Per peer: what arrived is exactly what was sent, in order; from a dead peer, a prefix.
    for (p, got) in received.iter().enumerate() {
        let sent = &sent_by_remote[p];
        if dead[p] {
            assert!(
                sent.starts_with(got),
                "peer {p}: {got:?} not a prefix of {sent:?}"
            );
        } else {
            assert_eq!(got, sent, "peer {p}");
        }
    }
    // What the socket sent arrived whole, each remote in increasing order, none twice.
    let mut seen = Vec::new();
    for (p, r) in n.remotes.iter().enumerate() {
        let mut last = None;
        for m in &r.messages {
            let (origin, seq) = check_message(m);
            assert_eq!(origin, 200);
            assert!(last < Some(seq), "remote {p} order");
            last = Some(seq);
            seen.push(seq);
        }
    }
    seen.sort();
    seen.dedup();
    let delivered = seen.len();
    assert!(delivered <= socket_sent);
    if !dead.iter().any(|&d| d) && ty != SocketType::Router {
        assert_eq!(
            delivered, socket_sent,
            "nothing lost while every peer lives"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn pull_from_push_peers_keeps_order_and_atomicity(ops in proptest::collection::vec(op(), 1..60)) {
        run_ops(SocketType::Pull, SocketType::Push, ops);
    }

    #[test]
    fn dealer_with_dealer_peers_keeps_order_and_atomicity(ops in proptest::collection::vec(op(), 1..60)) {
        run_ops(SocketType::Dealer, SocketType::Dealer, ops);
    }

    #[test]
    fn router_with_dealer_peers_keeps_order_and_atomicity(ops in proptest::collection::vec(op(), 1..60)) {
        run_ops(SocketType::Router, SocketType::Dealer, ops);
    }
}
