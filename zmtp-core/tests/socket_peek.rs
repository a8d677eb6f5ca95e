//! `Socket::peek`: the message `recv` would return, left queued; the `recv` right after
//! returns that same message, whatever the pattern (fair queueing across peers, ROUTER's
//! routing id, REQ/REP state).

mod common;

use common::net::Net;
use zmtp_core::socket::{SocketConfig, SocketRecvError};
use zmtp_core::{Config, SocketType};

fn frames(r: &zmtp_core::socket::Received<'_>) -> Vec<Vec<u8>> {
    r.frames().map(<[u8]>::to_vec).collect()
}

fn net(ty: SocketType) -> Net {
    Net::new(SocketConfig::new(Config::new(ty)), 4)
}

#[test]
fn peek_leaves_the_message_and_recv_returns_it_across_peers() {
    let mut n = net(SocketType::Dealer);
    for _ in 0..3 {
        n.connect(SocketType::Router, b"");
    }
    n.run();
    for (k, r) in n.remotes.iter_mut().enumerate() {
        r.send(&[b"from", &[k as u8]]);
        r.send(&[b"again", &[k as u8]]);
    }
    n.run();
    let mut got = Vec::new();
    loop {
        let peeked = match n.socket.peek() {
            Ok(m) => frames(&m),
            Err(e) => {
                assert_eq!(e, SocketRecvError::WouldBlock);
                break;
            }
        };
        // Peeking twice changes nothing.
        assert_eq!(frames(&n.socket.peek().unwrap()), peeked);
        let taken = frames(&n.socket.recv().unwrap());
        assert_eq!(taken, peeked);
        got.push(taken);
    }
    assert_eq!(got.len(), 6, "every message once: {got:?}");
    // Fair queueing is what recv alone does: one from each peer, then the second ones.
    let firsts: Vec<&[u8]> = got.iter().take(3).map(|m| &m[0][..]).collect();
    assert_eq!(firsts, [&b"from"[..]; 3]);
}

#[test]
fn router_peek_shows_the_routing_id() {
    let mut n = net(SocketType::Router);
    n.connect(SocketType::Dealer, b"peer-a");
    n.run();
    n.remotes[0].send(&[b"hello"]);
    n.run();
    let peeked = frames(&n.socket.peek().unwrap());
    assert_eq!(peeked, [b"peer-a".to_vec(), b"hello".to_vec()]);
    assert_eq!(frames(&n.socket.recv().unwrap()), peeked);
    assert_eq!(n.socket.peek().err(), Some(SocketRecvError::WouldBlock));
}

#[test]
fn rep_peek_does_not_start_serving() {
    let mut n = net(SocketType::Rep);
    n.connect(SocketType::Req, b"");
    n.run();
    n.remotes[0].send(&[b"", b"question"]);
    n.run();
    assert_eq!(frames(&n.socket.peek().unwrap()), [b"question".to_vec()]);
    // Not serving yet: a reply is not allowed until recv takes the request.
    assert!(n.socket.send(&[b"answer"]).is_err());
    assert_eq!(frames(&n.socket.recv().unwrap()), [b"question".to_vec()]);
    n.socket.send(&[b"answer"]).unwrap();
    n.run();
    assert_eq!(
        n.remotes[0].messages,
        [vec![b"".to_vec(), b"answer".to_vec()]]
    );
}
