//! Sockets whose type is fixed at compile time (`Socket::typed`, `socket::kind`) behave
//! exactly like the same sockets typed at run time: each scenario runs on both and must give
//! the same, expected, result.

mod common;

use common::net::Net;
use common::Ev;
use zmtp_core::socket::kind::{self, Kind};
use zmtp_core::socket::{SocketConfig, SocketRecvError, SocketSendError};
use zmtp_core::{Config, SocketType};

/// Slots, (rx, tx, queue) bytes, trie and notification bytes of every socket here.
const SLOTS: usize = 4;
const MEMORY: (usize, usize, usize) = (1024, 1024, 8192);
const TRIE: usize = 4096;
const NOTES: usize = 4096;

fn cfg(ty: SocketType) -> SocketConfig<'static> {
    SocketConfig::new(Config::new(ty))
}

/// The same socket both ways: typed at run time from `ty`, and fixed at compile time as `k`.
fn both<K: Kind>(ty: SocketType, k: K) -> (Net, Net<K>) {
    let dynamic = Net::with_subscriptions(cfg(ty), SLOTS, MEMORY, TRIE, NOTES);
    // The configuration's type is replaced by the marker's: give the wrong one on purpose.
    let other = if ty == SocketType::Pair {
        SocketType::Push
    } else {
        SocketType::Pair
    };
    let typed = Net::typed(k, cfg(other), SLOTS, MEMORY, TRIE, NOTES);
    assert_eq!(typed.ty(), ty);
    (dynamic, typed)
}

fn msg(frames: &[&[u8]]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| f.to_vec()).collect()
}

type Received = Vec<(usize, Vec<Vec<u8>>)>;
/// Per remote peer, the messages it got from the socket.
type Delivered = Vec<Vec<Vec<Vec<u8>>>>;

/// DEALER: round robin out, fair queueing in, READY says DEALER.
fn dealer<K: Kind>(mut n: Net<K>) -> (Delivered, Received, Vec<SocketType>) {
    for _ in 0..3 {
        n.connect(SocketType::Router, b"");
    }
    for i in 0..6u8 {
        n.socket.send(&[b"m", &[i]]).unwrap();
    }
    n.run();
    for (k, r) in n.remotes.iter_mut().enumerate() {
        r.send(&[b"from", &[k as u8]]);
    }
    let got = n.recv_all();
    let seen = n
        .remotes
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| match e {
            Ev::Ready { socket_type, .. } => Some(*socket_type),
            _ => None,
        })
        .collect();
    (
        n.remotes.iter().map(|r| r.messages.clone()).collect(),
        got,
        seen,
    )
}

#[test]
fn typed_dealer_behaves_like_a_dealer() {
    let (a, b) = both(SocketType::Dealer, kind::Dealer);
    let (ra, rb) = (dealer(a), dealer(b));
    assert_eq!(ra, rb);
    let (sent, got, seen) = ra;
    assert_eq!(sent[0], [msg(&[b"m", &[0]]), msg(&[b"m", &[3]])]);
    assert_eq!(sent[2], [msg(&[b"m", &[2]]), msg(&[b"m", &[5]])]);
    assert_eq!(got.len(), 3);
    assert!(got.contains(&(1, msg(&[b"from", &[1]]))));
    assert_eq!(seen, [SocketType::Dealer; 3], "our READY says DEALER");
}

/// ROUTER: routing ids first in, first frame routes out, unknown ids dropped.
fn router<K: Kind>(mut n: Net<K>) -> (Received, Delivered, Result<(), SocketSendError>) {
    n.connect(SocketType::Dealer, b"alpha");
    n.connect(SocketType::Dealer, b"");
    n.remotes[0].send(&[b"hi"]);
    n.remotes[1].send(&[b"yo"]);
    let got = n.recv_all();
    n.socket.send(&[b"alpha", b"to alpha"]).unwrap();
    n.socket.send(&[&[0, 0, 0, 0, 1], b"to anonymous"]).unwrap();
    let unknown = n.socket.send(&[b"nobody", b"lost"]);
    n.run();
    (
        got,
        n.remotes.iter().map(|r| r.messages.clone()).collect(),
        unknown,
    )
}

#[test]
fn typed_router_behaves_like_a_router() {
    let (a, b) = both(SocketType::Router, kind::Router);
    let (ra, rb) = (router(a), router(b));
    assert_eq!(ra, rb);
    let (got, sent, unknown) = ra;
    assert_eq!(
        got,
        [
            (0, msg(&[b"alpha", b"hi"])),
            (1, msg(&[&[0, 0, 0, 0, 1], b"yo"]))
        ]
    );
    assert_eq!(
        sent,
        [vec![msg(&[b"to alpha"])], vec![msg(&[b"to anonymous"])]]
    );
    assert_eq!(unknown, Ok(()), "dropped silently");
}

/// REQ and REP: envelopes added and removed, strict alternation.
fn req<K: Kind>(mut n: Net<K>) -> Vec<String> {
    let mut log = Vec::new();
    n.connect(SocketType::Rep, b"");
    log.push(format!("{:?}", n.socket.recv().err()));
    n.socket.send(&[b"q"]).unwrap();
    log.push(format!("{:?}", n.socket.send(&[b"again"])));
    n.run();
    log.push(format!("{:?}", n.remotes[0].messages));
    n.remotes[0].send(&[b"", b"a"]);
    log.push(format!("{:?}", n.recv_all()));
    log
}

fn rep<K: Kind>(mut n: Net<K>) -> Vec<String> {
    let mut log = Vec::new();
    n.connect(SocketType::Req, b"");
    log.push(format!("{:?}", n.socket.send(&[b"unasked"])));
    n.remotes[0].send(&[b"env", b"", b"question"]);
    n.run();
    log.push(format!("{:?}", n.recv_all()));
    n.socket.send(&[b"answer"]).unwrap();
    n.run();
    log.push(format!("{:?}", n.remotes[0].messages));
    log
}

#[test]
fn typed_req_and_rep_behave_like_req_and_rep() {
    let (a, b) = both(SocketType::Req, kind::Req);
    let (ra, rb) = (req(a), req(b));
    assert_eq!(ra, rb);
    assert_eq!(ra[0], format!("{:?}", Some(SocketRecvError::NotAllowed)));
    assert_eq!(
        ra[1],
        format!("{:?}", Err::<(), _>(SocketSendError::NotAllowed))
    );
    assert_eq!(ra[2], format!("{:?}", [msg(&[b"", b"q"])]));
    assert_eq!(ra[3], format!("{:?}", [(0, msg(&[b"a"]))]));

    let (a, b) = both(SocketType::Rep, kind::Rep);
    let (ra, rb) = (rep(a), rep(b));
    assert_eq!(ra, rb);
    assert_eq!(
        ra[0],
        format!("{:?}", Err::<(), _>(SocketSendError::NotAllowed))
    );
    assert_eq!(ra[1], format!("{:?}", [(0, msg(&[b"question"]))]));
    assert_eq!(ra[2], format!("{:?}", [msg(&[b"env", b"", b"answer"])]));
}

/// SUB: subscriptions go out (also to a late peer) and filter what comes in.
fn sub<K: Kind>(mut n: Net<K>) -> (Vec<Vec<Ev>>, Received) {
    n.connect(SocketType::Pub, b"");
    n.socket.subscribe(b"a").unwrap();
    n.run();
    n.connect(SocketType::Pub, b"");
    n.run();
    n.remotes[0].send(&[b"a1"]);
    n.remotes[0].send(&[b"b1"]);
    n.remotes[1].send(&[b"a2"]);
    let got = n.recv_all();
    let subs = n
        .remotes
        .iter()
        .map(|r| {
            r.events
                .iter()
                .filter(|e| matches!(e, Ev::Subscribe(_) | Ev::Cancel(_)))
                .cloned()
                .collect()
        })
        .collect();
    (subs, got)
}

#[test]
fn typed_sub_behaves_like_a_sub() {
    let (a, b) = both(SocketType::Sub, kind::Sub);
    let (ra, rb) = (sub(a), sub(b));
    assert_eq!(ra, rb);
    let (subs, got) = ra;
    let want = vec![Ev::Subscribe(b"a".to_vec())];
    assert_eq!(
        subs,
        [want.clone(), want],
        "the late peer gets the topic too"
    );
    assert_eq!(got, [(0, msg(&[b"a1"])), (1, msg(&[b"a2"]))]);
}

/// XPUB: subscriptions shown to the application, messages go where subscribed.
fn xpub<K: Kind>(mut n: Net<K>) -> (Received, Delivered) {
    n.connect(SocketType::Sub, b"");
    n.connect(SocketType::Sub, b"");
    n.remotes[0].session.send_subscribe(b"x").unwrap();
    n.remotes[1].session.send_subscribe(b"y").unwrap();
    n.run();
    let notes = n.recv_all();
    n.socket.send(&[b"x1"]).unwrap();
    n.socket.send(&[b"y1"]).unwrap();
    n.socket.send(&[b"z1"]).unwrap();
    n.run();
    (
        notes,
        n.remotes.iter().map(|r| r.messages.clone()).collect(),
    )
}

#[test]
fn typed_xpub_behaves_like_an_xpub() {
    let (a, b) = both(SocketType::XPub, kind::XPub);
    let (ra, rb) = (xpub(a), xpub(b));
    assert_eq!(ra, rb);
    let (notes, sent) = ra;
    assert_eq!(notes, [(0, msg(&[b"\x01x"])), (1, msg(&[b"\x01y"]))]);
    assert_eq!(sent, [vec![msg(&[b"x1"])], vec![msg(&[b"y1"])]]);
}

#[test]
fn typed_push_cannot_receive_and_pull_cannot_send() {
    let (mut a, mut b) = both(SocketType::Push, kind::Push);
    assert_eq!(a.socket.recv().err(), Some(SocketRecvError::NotAllowed));
    assert_eq!(b.socket.recv().err(), Some(SocketRecvError::NotAllowed));
    let (mut a, mut b) = both(SocketType::Pull, kind::Pull);
    assert_eq!(a.socket.send(&[b"x"]), Err(SocketSendError::NotAllowed));
    assert_eq!(b.socket.send(&[b"x"]), Err(SocketSendError::NotAllowed));
}
