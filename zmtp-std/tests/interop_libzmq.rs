//! zmtp-std against real libzmq (the `zmq` crate): every supported pattern with our socket on
//! either side, binding and connecting; message sizes across the frame-length boundaries up
//! to 1 MiB; long ordered streams; a peer restarted mid-stream; heartbeats while the
//! application is busy.
//!
//! Every compatible pair: REQ-REP, REQ-ROUTER, DEALER-REP, DEALER-ROUTER, DEALER-DEALER,
//! ROUTER-ROUTER, PUSH-PULL, PAIR-PAIR here over tcp:// in all four arrangements and over
//! ipc:// in two; the publish-subscribe pairs in `pubsub_libzmq.rs`.
//!
//! TCP runs on 127.0.0.1 with ports chosen by the system. Waits are polling loops
//! with deadlines, never sleeps standing in for a condition.

use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::{Context, Socket, SocketType};

mod common;
use common::{wait_until, zbind, zmq_type, zsocket, STEP};

// ================================================================================ helpers

/// One end of a connection: ours or libzmq's.
trait End {
    fn send(&self, msg: &[Vec<u8>]);
    fn recv(&self) -> Vec<Vec<u8>>;
    /// A ROUTER with `router_mandatory` sending to a peer it may not know yet: whether it
    /// went.
    fn try_route(&self, msg: &[Vec<u8>]) -> bool;
}

impl End for Socket {
    fn send(&self, msg: &[Vec<u8>]) {
        self.send_multipart_timeout(msg, STEP).unwrap();
    }
    fn recv(&self) -> Vec<Vec<u8>> {
        self.recv_multipart_timeout(STEP).unwrap()
    }
    fn try_route(&self, msg: &[Vec<u8>]) -> bool {
        match self.try_send_multipart(msg) {
            Ok(()) => true,
            Err(zmtp_std::Error::HostUnreachable) => false,
            Err(e) => panic!("{e}"),
        }
    }
}

impl End for zmq::Socket {
    fn send(&self, msg: &[Vec<u8>]) {
        self.send_multipart(msg.iter().map(Vec::as_slice), 0)
            .unwrap();
    }
    fn recv(&self) -> Vec<Vec<u8>> {
        self.recv_multipart(0).unwrap()
    }
    fn try_route(&self, msg: &[Vec<u8>]) -> bool {
        match self.send_multipart(msg.iter().map(Vec::as_slice), zmq::DONTWAIT) {
            Ok(()) => true,
            Err(zmq::Error::EHOSTUNREACH) => false,
            Err(e) => panic!("{e}"),
        }
    }
}

/// `len` bytes that differ with `len` and `seed`, so a misplaced byte shows.
fn payload(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(len as u32) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The messages every pattern test exchanges: one frame of each boundary size (a frame's
/// length switches from one byte to eight at 256), then multipart messages with empty
/// frames.
fn messages() -> Vec<Vec<Vec<u8>>> {
    let mut m: Vec<Vec<Vec<u8>>> = [0usize, 1, 255, 256, 65_536, 1_048_576]
        .iter()
        .enumerate()
        .map(|(k, &n)| vec![payload(n, k as u32)])
        .collect();
    m.push(vec![vec![], b"a".to_vec(), vec![], payload(300, 9), vec![]]);
    m.push(vec![b"x".to_vec(), vec![], vec![]]);
    m.push(vec![vec![]; 5]);
    m
}

/// The answer to `msg`: every byte plus one, so an echo is told from a reply.
fn reply_to(msg: &[Vec<u8>]) -> Vec<Vec<u8>> {
    msg.iter()
        .map(|f| f.iter().map(|b| b.wrapping_add(1)).collect())
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Pattern {
    ReqRep,
    ReqRouter,
    DealerRep,
    DealerRouter,
    DealerDealer,
    RouterRouter,
    PushPull,
    PairPair,
}

impl Pattern {
    /// (client, server): the client speaks first.
    fn types(self) -> (SocketType, SocketType) {
        match self {
            Pattern::ReqRep => (SocketType::Req, SocketType::Rep),
            Pattern::ReqRouter => (SocketType::Req, SocketType::Router),
            Pattern::DealerRep => (SocketType::Dealer, SocketType::Rep),
            Pattern::DealerRouter => (SocketType::Dealer, SocketType::Router),
            Pattern::DealerDealer => (SocketType::Dealer, SocketType::Dealer),
            Pattern::RouterRouter => (SocketType::Router, SocketType::Router),
            Pattern::PushPull => (SocketType::Push, SocketType::Pull),
            Pattern::PairPair => (SocketType::Pair, SocketType::Pair),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ours {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Ipc,
}

/// Our socket on the side `ours`, libzmq's on the other; the side `we_bind` says binds.
fn run_pattern(pattern: Pattern, ours: Ours, we_bind: bool) {
    run_pattern_on(pattern, ours, we_bind, Transport::Tcp);
}

/// A fresh `ipc://` endpoint in the temporary directory.
fn ipc_endpoint(name: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "zmtp-interop-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    format!("ipc://{}", path.display())
}

fn run_pattern_on(pattern: Pattern, ours: Ours, we_bind: bool, transport: Transport) {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let (client_ty, server_ty) = pattern.types();
    let (our_ty, their_ty) = match ours {
        Ours::Client => (client_ty, server_ty),
        Ours::Server => (server_ty, client_ty),
    };
    let us = ctx.socket(our_ty).unwrap();
    us.set_linger(Some(Duration::ZERO));
    let them = zsocket(&zctx, zmq_type(their_ty));
    if let Pattern::RouterRouter = pattern {
        // A ROUTER talks to a ROUTER by routing ids known in advance.
        let (our_id, their_id): (&[u8], &[u8]) = match ours {
            Ours::Client => (b"client", b"server"),
            Ours::Server => (b"server", b"client"),
        };
        us.set_routing_id(our_id).unwrap();
        us.set_router_mandatory(true).unwrap();
        them.set_identity(their_id).unwrap();
        them.set_router_mandatory(true).unwrap();
    }
    let ep = match (transport, we_bind) {
        (Transport::Tcp, true) => us.bind("tcp://127.0.0.1:0").unwrap(),
        (Transport::Tcp, false) => zbind(&them),
        (Transport::Ipc, true) => us.bind(&ipc_endpoint("ours")).unwrap(),
        (Transport::Ipc, false) => {
            let ep = ipc_endpoint("libzmq");
            them.bind(&ep).unwrap();
            ep
        }
    };
    if we_bind {
        them.connect(&ep).unwrap();
    } else {
        us.connect(&ep).unwrap();
    }
    wait_until("the handshake", || us.connected_peers() == 1);

    let (client, server): (&dyn End, &dyn End) = match ours {
        Ours::Client => (&us, &them),
        Ours::Server => (&them, &us),
    };
    let with = |head: &[u8], msg: &[Vec<u8>]| -> Vec<Vec<u8>> {
        let mut m = vec![head.to_vec()];
        m.extend(msg.iter().cloned());
        m
    };
    for msg in messages() {
        let sizes: Vec<usize> = msg.iter().map(Vec::len).collect();
        let reply = reply_to(&msg);
        match pattern {
            // The DEALER adds the empty delimiter a REP expects (and gets it back).
            Pattern::DealerRep => client.send(&with(b"", &msg)),
            Pattern::RouterRouter => {
                // Until the server's routing id is known here (its handshake is done on
                // both sides), mandatory routing refuses.
                let addressed = with(b"server", &msg);
                let deadline = Instant::now() + STEP;
                while !client.try_route(&addressed) {
                    assert!(Instant::now() < deadline, "the server's id never came");
                    thread::sleep(Duration::from_millis(1));
                }
            }
            _ => client.send(&msg),
        }
        let got = server.recv();
        match pattern {
            Pattern::ReqRep | Pattern::PairPair | Pattern::DealerDealer => {
                assert!(got == msg, "request of sizes {sizes:?}");
                server.send(&reply);
            }
            Pattern::DealerRep => {
                assert!(got == msg, "request of sizes {sizes:?}");
                server.send(&reply);
                assert!(
                    client.recv() == with(b"", &reply),
                    "reply of sizes {sizes:?}"
                );
                continue;
            }
            Pattern::ReqRouter => {
                // The ROUTER sees the REQ's envelope: its routing id, the empty delimiter.
                assert!(
                    got[1].is_empty() && got[2..] == msg[..],
                    "request {sizes:?}"
                );
                let mut addressed = got[..2].to_vec();
                addressed.extend(reply.iter().cloned());
                server.send(&addressed);
            }
            Pattern::RouterRouter => {
                assert!(got == with(b"client", &msg), "request of sizes {sizes:?}");
                server.send(&with(b"client", &reply));
                assert!(client.recv() == with(b"server", &reply), "reply {sizes:?}");
                continue;
            }
            Pattern::DealerRouter => {
                // The ROUTER sees the DEALER's routing id first and addresses it with it.
                assert!(got[1..] == msg[..], "request of sizes {sizes:?}");
                let mut addressed = vec![got[0].clone()];
                addressed.extend(reply.iter().cloned());
                server.send(&addressed);
            }
            Pattern::PushPull => {
                assert!(got == msg, "message of sizes {sizes:?}");
                continue;
            }
        }
        assert!(client.recv() == reply, "reply of sizes {sizes:?}");
    }
}

macro_rules! pattern_tests {
    ($($name:ident: $pattern:ident, $ours:ident, we_bind = $bind:expr;)*) => {$(
        #[test]
        fn $name() {
            run_pattern(Pattern::$pattern, Ours::$ours, $bind);
        }
    )*};
}

macro_rules! ipc_pattern_tests {
    ($($name:ident: $pattern:ident, $ours:ident, we_bind = $bind:expr;)*) => {$(
        #[test]
        fn $name() {
            run_pattern_on(Pattern::$pattern, Ours::$ours, $bind, Transport::Ipc);
        }
    )*};
}

pattern_tests! {
    req_ours_rep_libzmq_we_bind: ReqRep, Client, we_bind = true;
    req_ours_rep_libzmq_we_connect: ReqRep, Client, we_bind = false;
    rep_ours_req_libzmq_we_bind: ReqRep, Server, we_bind = true;
    rep_ours_req_libzmq_we_connect: ReqRep, Server, we_bind = false;
    dealer_ours_router_libzmq_we_bind: DealerRouter, Client, we_bind = true;
    dealer_ours_router_libzmq_we_connect: DealerRouter, Client, we_bind = false;
    router_ours_dealer_libzmq_we_bind: DealerRouter, Server, we_bind = true;
    router_ours_dealer_libzmq_we_connect: DealerRouter, Server, we_bind = false;
    push_ours_pull_libzmq_we_bind: PushPull, Client, we_bind = true;
    push_ours_pull_libzmq_we_connect: PushPull, Client, we_bind = false;
    pull_ours_push_libzmq_we_bind: PushPull, Server, we_bind = true;
    pull_ours_push_libzmq_we_connect: PushPull, Server, we_bind = false;
    pair_ours_connects_to_libzmq_pair: PairPair, Client, we_bind = false;
    pair_ours_binds_for_libzmq_pair: PairPair, Client, we_bind = true;
    pair_ours_answers_libzmq_pair_we_bind: PairPair, Server, we_bind = true;
    pair_ours_answers_libzmq_pair_we_connect: PairPair, Server, we_bind = false;
    req_ours_router_libzmq_we_bind: ReqRouter, Client, we_bind = true;
    req_ours_router_libzmq_we_connect: ReqRouter, Client, we_bind = false;
    router_ours_req_libzmq_we_bind: ReqRouter, Server, we_bind = true;
    router_ours_req_libzmq_we_connect: ReqRouter, Server, we_bind = false;
    dealer_ours_rep_libzmq_we_bind: DealerRep, Client, we_bind = true;
    dealer_ours_rep_libzmq_we_connect: DealerRep, Client, we_bind = false;
    rep_ours_dealer_libzmq_we_bind: DealerRep, Server, we_bind = true;
    rep_ours_dealer_libzmq_we_connect: DealerRep, Server, we_bind = false;
    dealer_ours_speaks_first_to_libzmq_dealer_we_bind: DealerDealer, Client, we_bind = true;
    dealer_ours_speaks_first_to_libzmq_dealer_we_connect: DealerDealer, Client, we_bind = false;
    dealer_ours_answers_libzmq_dealer_we_bind: DealerDealer, Server, we_bind = true;
    dealer_ours_answers_libzmq_dealer_we_connect: DealerDealer, Server, we_bind = false;
    router_ours_speaks_first_to_libzmq_router_we_bind: RouterRouter, Client, we_bind = true;
    router_ours_speaks_first_to_libzmq_router_we_connect: RouterRouter, Client, we_bind = false;
    router_ours_answers_libzmq_router_we_bind: RouterRouter, Server, we_bind = true;
    router_ours_answers_libzmq_router_we_connect: RouterRouter, Server, we_bind = false;
}

// Every pattern over ipc://, our socket on each side, each side binding once.
ipc_pattern_tests! {
    ipc_req_ours_rep_libzmq_we_bind: ReqRep, Client, we_bind = true;
    ipc_rep_ours_req_libzmq_we_connect: ReqRep, Server, we_bind = false;
    ipc_req_ours_router_libzmq_we_connect: ReqRouter, Client, we_bind = false;
    ipc_router_ours_req_libzmq_we_bind: ReqRouter, Server, we_bind = true;
    ipc_dealer_ours_rep_libzmq_we_bind: DealerRep, Client, we_bind = true;
    ipc_rep_ours_dealer_libzmq_we_connect: DealerRep, Server, we_bind = false;
    ipc_dealer_ours_router_libzmq_we_connect: DealerRouter, Client, we_bind = false;
    ipc_router_ours_dealer_libzmq_we_bind: DealerRouter, Server, we_bind = true;
    ipc_dealer_ours_dealer_libzmq_we_bind: DealerDealer, Client, we_bind = true;
    ipc_dealer_ours_answers_dealer_libzmq_we_connect: DealerDealer, Server, we_bind = false;
    ipc_router_ours_router_libzmq_we_connect: RouterRouter, Client, we_bind = false;
    ipc_router_ours_answers_router_libzmq_we_bind: RouterRouter, Server, we_bind = true;
    ipc_push_ours_pull_libzmq_we_bind: PushPull, Client, we_bind = true;
    ipc_pull_ours_push_libzmq_we_connect: PushPull, Server, we_bind = false;
    ipc_pair_ours_pair_libzmq_we_connect: PairPair, Client, we_bind = false;
    ipc_pair_ours_answers_pair_libzmq_we_bind: PairPair, Server, we_bind = true;
}

// ================================================================================ streams

/// Message `seq` of a stream: the sequence number, then a body derived from it.
fn numbered(seq: u64, body: usize) -> Vec<Vec<u8>> {
    vec![seq.to_be_bytes().to_vec(), payload(body, seq as u32)]
}

/// The sequence number of a message made by [`numbered`], after checking it is whole.
fn check_numbered(msg: &[Vec<u8>], body: usize) -> u64 {
    assert_eq!(msg.len(), 2, "a message has two frames");
    let seq = u64::from_be_bytes(msg[0].as_slice().try_into().expect("8-byte number"));
    assert!(
        msg[1] == payload(body, seq as u32),
        "body of message {seq} intact"
    );
    seq
}

const STREAM: u64 = 10_000;

#[test]
fn ten_thousand_messages_in_order_from_our_push_to_libzmq_pull() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let pull = zsocket(&zctx, zmq::PULL);
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&zbind(&pull)).unwrap();
    // Sent from another thread: the sender blocks whenever the high-water marks are hit.
    let sender = thread::spawn(move || {
        for seq in 0..STREAM {
            push.send_multipart(numbered(seq, 64)).unwrap();
        }
        push // closing it here could drop the tail: linger is the default, but be plain
    });
    for want in 0..STREAM {
        assert_eq!(check_numbered(&pull.recv_multipart(0).unwrap(), 64), want);
    }
    drop(sender.join().unwrap());
}

#[test]
fn ten_thousand_messages_in_order_from_libzmq_push_to_our_pull() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = zsocket(&zctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    let sender = thread::spawn(move || {
        for seq in 0..STREAM {
            push.send_multipart(numbered(seq, 64), 0).unwrap();
        }
        push
    });
    for want in 0..STREAM {
        let msg = pull.recv_multipart_timeout(STEP).unwrap();
        assert_eq!(check_numbered(&msg, 64), want);
    }
    drop(sender.join().unwrap());
}

/// 10 000 messages from our `our_ty` to libzmq's `their_ty`, then 10 000 back, each
/// stream in order (a ROUTER addresses the other side's routing id `peer`).
fn streams_both_ways(our_ty: SocketType, their_ty: SocketType) {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let us = ctx.socket(our_ty).unwrap();
    us.set_linger(Some(Duration::ZERO));
    let them = zsocket(&zctx, zmq_type(their_ty));
    if our_ty == SocketType::Dealer {
        us.set_routing_id(b"peer").unwrap();
    }
    if their_ty == SocketType::Dealer {
        them.set_identity(b"peer").unwrap();
    }
    // A ROUTER drops messages for a peer at its high-water mark; mandatory routing makes
    // it wait instead.
    if our_ty == SocketType::Router {
        us.set_router_mandatory(true).unwrap();
    }
    if their_ty == SocketType::Router {
        them.set_router_mandatory(true).unwrap();
    }
    us.connect(&zbind(&them)).unwrap();
    wait_until("the handshake", || us.connected_peers() == 1);
    let envelope = |router: bool, msg: Vec<Vec<u8>>| {
        if router {
            let mut m = vec![b"peer".to_vec()];
            m.extend(msg);
            m
        } else {
            msg
        }
    };
    let strip = |router: bool, mut msg: Vec<Vec<u8>>| {
        if router {
            assert_eq!(msg.remove(0), b"peer");
        }
        msg
    };
    let (we_route, they_route) = (our_ty == SocketType::Router, their_ty == SocketType::Router);
    // Ours to theirs.
    thread::scope(|scope| {
        scope.spawn(|| {
            for seq in 0..STREAM {
                us.send_multipart(envelope(we_route, numbered(seq, 32)))
                    .unwrap();
            }
        });
        for want in 0..STREAM {
            let msg = strip(they_route, them.recv_multipart(0).unwrap());
            assert_eq!(check_numbered(&msg, 32), want);
        }
    });
    // Theirs to ours.
    let sender = thread::spawn(move || {
        for seq in 0..STREAM {
            let msg = envelope(they_route, numbered(seq, 32));
            them.send_multipart(msg.iter().map(Vec::as_slice), 0)
                .unwrap();
        }
        them
    });
    for want in 0..STREAM {
        let msg = strip(we_route, us.recv_multipart_timeout(STEP).unwrap());
        assert_eq!(check_numbered(&msg, 32), want);
    }
    drop(sender.join().unwrap());
}

#[test]
fn ten_thousand_messages_each_way_our_dealer_libzmq_router() {
    streams_both_ways(SocketType::Dealer, SocketType::Router);
}

#[test]
fn ten_thousand_messages_each_way_our_router_libzmq_dealer() {
    streams_both_ways(SocketType::Router, SocketType::Dealer);
}

#[test]
fn ten_thousand_messages_each_way_pair() {
    streams_both_ways(SocketType::Pair, SocketType::Pair);
}

// ================================================================================ restarts

/// Binds `s` to `ep` again, retrying while the previous owner's port is being released.
fn zrebind(s: &zmq::Socket, ep: &str) {
    let deadline = Instant::now() + STEP;
    while let Err(e) = s.bind(ep) {
        assert!(Instant::now() < deadline, "rebinding {ep}: {e}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Big messages, so that the peer's death almost surely cuts one in half on the wire.
const BIG: usize = 100_000;

#[test]
fn our_pull_reconnects_when_libzmq_push_restarts_and_never_sees_half_a_message() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_recv_hwm(2).unwrap(); // keep libzmq's side full, so the cut is mid-stream
    pull.set_reconnect_interval(Some(Duration::from_millis(20)))
        .unwrap();

    // First life: sends far more than can be in flight, and dies while sending.
    let zctx = zmq::Context::new();
    let push = zsocket(&zctx, zmq::PUSH);
    push.set_sndhwm(10_000).unwrap();
    let ep = zbind(&push);
    pull.connect(&ep).unwrap();
    for seq in 0..200 {
        push.send_multipart(numbered(seq, BIG), 0).unwrap();
    }
    let mut next = 0;
    for _ in 0..5 {
        assert_eq!(
            check_numbered(&pull.recv_multipart_timeout(STEP).unwrap(), BIG),
            next
        );
        next += 1;
    }
    drop(push);
    drop(zctx); // closes the connection at once (linger 0), mid-message
                // We only notice once we read on: our side is full (receive HWM 2), so the stream is
                // not being read, as libzmq would not read it either.

    // Second life on the same port, numbered from 1000. Its sends wait until we have read
    // what is left of the first life and reconnected.
    let second = thread::spawn(move || {
        let zctx = zmq::Context::new();
        let push = zsocket(&zctx, zmq::PUSH);
        zrebind(&push, &ep);
        for seq in 1000..1010 {
            push.send_multipart(numbered(seq, BIG), 0).unwrap();
        }
        (zctx, push)
    });
    // What arrives: whole messages of the first life in order, then all of the second.
    loop {
        let seq = check_numbered(&pull.recv_multipart_timeout(STEP).unwrap(), BIG);
        if seq >= 1000 {
            assert_eq!(seq, 1000, "the second life starts at its beginning");
            break;
        }
        assert_eq!(seq, next, "first life in order");
        next += 1;
    }
    assert!(next < 200, "the first life was cut short");
    for want in 1001..1010 {
        assert_eq!(
            check_numbered(&pull.recv_multipart_timeout(STEP).unwrap(), BIG),
            want
        );
    }
    drop(second.join().unwrap());
}

#[test]
fn our_push_reconnects_when_libzmq_pull_restarts_and_it_never_sees_half_a_message() {
    const TOTAL: u64 = 400;
    let ctx = Context::new().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_send_hwm(4).unwrap();
    push.set_reconnect_interval(Some(Duration::from_millis(20)))
        .unwrap();

    let zctx = zmq::Context::new();
    let pull = zsocket(&zctx, zmq::PULL);
    pull.set_rcvhwm(4).unwrap();
    let ep = zbind(&pull);
    push.connect(&ep).unwrap();
    let sender = thread::spawn(move || {
        for seq in 0..TOTAL {
            push.send_multipart(numbered(seq, BIG)).unwrap();
        }
        push
    });
    let mut last = None;
    for _ in 0..10 {
        let seq = check_numbered(&pull.recv_multipart(0).unwrap(), BIG);
        assert!(last < Some(seq));
        last = Some(seq);
    }
    drop(pull);
    drop(zctx);

    let zctx = zmq::Context::new();
    let pull = zsocket(&zctx, zmq::PULL);
    zrebind(&pull, &ep);
    // Messages in flight when the first peer died are lost (as with libzmq); the rest
    // arrive whole and in order, up to the last.
    while last != Some(TOTAL - 1) {
        let seq = check_numbered(&pull.recv_multipart(0).unwrap(), BIG);
        assert!(last < Some(seq), "in order: {seq} after {last:?}");
        last = Some(seq);
    }
    drop(sender.join().unwrap());
}

// ================================================================================ heartbeats

/// libzmq's monitor events for `s`, read from the PAIR socket `mon` without waiting.
fn monitor_events(mon: &zmq::Socket) -> Vec<zmq::SocketEvent> {
    let mut evs = Vec::new();
    while let Ok(m) = mon.recv_multipart(zmq::DONTWAIT) {
        let code = u16::from_le_bytes([m[0][0], m[0][1]]);
        evs.push(zmq::SocketEvent::from_raw(code));
    }
    evs
}

fn monitor(zctx: &zmq::Context, s: &zmq::Socket, name: &str) -> zmq::Socket {
    let ep = format!("inproc://{name}");
    s.monitor(&ep, zmq::SocketEvent::ALL as i32).unwrap();
    let mon = zctx.socket(zmq::PAIR).unwrap();
    mon.connect(&ep).unwrap();
    mon
}

/// libzmq pings every 100 ms and drops a peer silent for 1 s; our application does not
/// touch its socket for 3 s. The I/O thread answers the pings, so the connection survives.
/// (A 1 s timeout, not libzmq's tightest, so that a loaded CI machine's scheduling delays
/// cannot pass for a missed PONG.)
fn heartbeats_while_the_application_sleeps(we_bind: bool) {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let router = zsocket(&zctx, zmq::ROUTER);
    router.set_heartbeat_ivl(100).unwrap();
    router.set_heartbeat_timeout(1000).unwrap();
    router.set_heartbeat_ttl(1000).unwrap();
    let mon = monitor(&zctx, &router, &format!("hb-{we_bind}"));
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.set_routing_id(b"sleepy").unwrap();
    dealer.set_linger(Some(Duration::ZERO));
    if we_bind {
        router
            .connect(&dealer.bind("tcp://127.0.0.1:0").unwrap())
            .unwrap();
    } else {
        dealer.connect(&zbind(&router)).unwrap();
    }
    wait_until("the handshake", || dealer.connected_peers() == 1);
    dealer.send("hello").unwrap();
    assert_eq!(
        router.recv_multipart(0).unwrap(),
        [b"sleepy".to_vec(), b"hello".to_vec()]
    );

    // The application is busy; the I/O thread is not.
    thread::sleep(Duration::from_secs(3));

    let evs = monitor_events(&mon);
    assert!(
        !evs.iter().any(|e| matches!(
            e,
            zmq::SocketEvent::DISCONNECTED | zmq::SocketEvent::CONNECT_RETRIED
        )),
        "libzmq never lost us: {evs:?}"
    );
    assert_eq!(dealer.connected_peers(), 1);
    router
        .send_multipart([&b"sleepy"[..], b"still there?"], 0)
        .unwrap();
    assert_eq!(dealer.recv_timeout(STEP).unwrap(), b"still there?");
}

#[test]
fn libzmq_heartbeats_keep_a_connection_it_made_while_we_sleep() {
    heartbeats_while_the_application_sleeps(true);
}

#[test]
fn libzmq_heartbeats_keep_a_connection_we_made_while_we_sleep() {
    heartbeats_while_the_application_sleeps(false);
}

#[test]
fn our_heartbeats_with_libzmq() {
    // Our side pings too (and asks libzmq for a TTL); libzmq answers; nothing drops in
    // 1.5 s, longer than our timeout and the TTL (1 s each: margin for a loaded machine).
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let rep = zsocket(&zctx, zmq::REP);
    let mon = monitor(&zctx, &rep, "hb-ours");
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_heartbeat_interval(Some(Duration::from_millis(50)))
        .unwrap();
    req.set_heartbeat_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    req.set_heartbeat_ttl(Some(Duration::from_millis(1000)))
        .unwrap();
    req.set_linger(Some(Duration::ZERO));
    req.connect(&zbind(&rep)).unwrap();
    wait_until("the handshake", || req.connected_peers() == 1);
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(req.connected_peers(), 1);
    let evs = monitor_events(&mon);
    assert!(
        !evs.contains(&zmq::SocketEvent::DISCONNECTED),
        "libzmq kept us: {evs:?}"
    );
    req.send("ping?").unwrap();
    assert_eq!(rep.recv_bytes(0).unwrap(), b"ping?");
    rep.send("pong", 0).unwrap();
    assert_eq!(req.recv_timeout(STEP).unwrap(), b"pong");
}

// ================================================================================ options

#[test]
fn our_max_message_size_drops_the_peer_and_we_reconnect() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let push = zsocket(&zctx, zmq::PUSH);
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_max_message_size(Some(1000)).unwrap();
    pull.set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    pull.connect(&zbind(&push)).unwrap();
    push.send(vec![7u8; 2000], 0).unwrap();
    // The big one costs the connection; small ones sent after we are back get through.
    let deadline = Instant::now() + STEP;
    let got = loop {
        assert!(Instant::now() < deadline, "no small message arrived");
        let _ = push.send("small", zmq::DONTWAIT);
        if let Ok(m) = pull.recv_multipart_timeout(Duration::from_millis(10)) {
            break m;
        }
    };
    assert_eq!(got, [b"small".to_vec()]);
}

#[test]
fn our_req_relaxed_and_correlated_takes_only_the_latest_reply_from_libzmq_rep() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let rep = zsocket(&zctx, zmq::REP);
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_req_relaxed(true).unwrap();
    req.set_req_correlate(true).unwrap();
    req.set_linger(Some(Duration::ZERO));
    req.connect(&zbind(&rep)).unwrap();
    req.send("first").unwrap();
    assert_eq!(rep.recv_bytes(0).unwrap(), b"first");
    req.send("second").unwrap(); // relaxed: no reply needed first
    rep.send("to first", 0).unwrap();
    assert_eq!(rep.recv_bytes(0).unwrap(), b"second");
    rep.send("to second", 0).unwrap();
    // Correlated: the stale reply is dropped, and the exchange is over.
    assert_eq!(req.recv_timeout(STEP).unwrap(), b"to second");
    assert!(matches!(req.try_recv(), Err(zmtp_std::Error::State)));
    req.send("third").unwrap();
    assert_eq!(rep.recv_bytes(0).unwrap(), b"third");
    rep.send("to third", 0).unwrap();
    assert_eq!(req.recv_timeout(STEP).unwrap(), b"to third");
}

#[test]
fn our_router_handover_gives_the_id_to_the_newcomer() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let router = ctx.socket(SocketType::Router).unwrap();
    router.set_router_handover(true).unwrap();
    router.set_linger(Some(Duration::ZERO));
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let old = zsocket(&zctx, zmq::DEALER);
    old.set_identity(b"worker").unwrap();
    old.connect(&ep).unwrap();
    old.send("old", 0).unwrap();
    assert_eq!(
        router.recv_multipart_timeout(STEP).unwrap(),
        [b"worker".to_vec(), b"old".to_vec()]
    );
    let new = zsocket(&zctx, zmq::DEALER);
    new.set_identity(b"worker").unwrap();
    new.connect(&ep).unwrap();
    new.send("new", 0).unwrap();
    assert_eq!(
        router.recv_multipart_timeout(STEP).unwrap(),
        [b"worker".to_vec(), b"new".to_vec()]
    );
    router.send_multipart(["worker", "hi"]).unwrap();
    assert_eq!(new.recv_bytes(0).unwrap(), b"hi");
}
