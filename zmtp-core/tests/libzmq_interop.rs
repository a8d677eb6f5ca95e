//! Interoperability with real libzmq (4.3.4, built from source by the `zmq` crate).
//!
//! A zmtp-core [`Session`] is driven over a real `std::net::TcpStream` against libzmq
//! sockets, in both directions of connection: DEALER/ROUTER with identities, PUSH/PULL with
//! ordering and a 1 MiB frame streamed through a 4 KiB receive buffer, PUB/SUB with
//! subscriptions both ways, and heartbeats (libzmq's PINGs answered, our PINGs answered, a
//! peer's TTL and our heartbeat timeout enforced when a relay silences libzmq).
//!
//! Layout: the blocking [`Driver`], a wire [`Scanner`] (to count commands that crossed the
//! wire), a TCP [`Relay`] that can silence libzmq, libzmq helpers, then the tests.
//!
//! Everything listens on 127.0.0.1 port 0, each test has its own `zmq::Context`, and every
//! wait is a condition polled against a deadline.

mod common;

use std::io::ErrorKind;
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use common::driver::*;
use common::Ev;
use zmtp_core::{CloseReason, Config, SocketType};

const MIB: usize = 1 << 20;

// ================================================================================ tests: DEALER / ROUTER

/// libzmq DEALER <-> our ROUTER, after the handshake: both directions, multipart with empty
/// frames and a long frame, plus a message that is one empty frame.
fn exchange_libzmq_dealer_our_router(d: &mut Driver, dealer: &zmq::Socket) {
    let msg = sample_message();
    zsend(d, dealer, &msg);
    assert_eq!(d.recv_message(), msg);
    assert!(
        has_long_300(&d.rx_log),
        "libzmq sent the 300-byte frame with a long size"
    );

    d.send(&msg);
    assert_eq!(zrecv(d, dealer), msg);
    assert!(
        has_long_300(&d.tx_log),
        "we sent the 300-byte frame with a long size"
    );

    zsend(d, dealer, &[b""]);
    assert_eq!(d.recv_message(), vec![Vec::<u8>::new()]);
    d.send(&[b""]);
    assert_eq!(zrecv(d, dealer), vec![Vec::<u8>::new()]);
}

#[test]
fn libzmq_dealer_connects_to_our_router_with_routing_id_and_multipart() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_identity(b"zdealer-7").unwrap();
    dealer.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Router));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(peer.identity, b"zdealer-7");
    assert_eq!(peer.minor, 1, "libzmq 4.3 speaks ZMTP 3.1");
    exchange_libzmq_dealer_our_router(&mut d, &dealer);
}

#[test]
fn our_router_connects_to_libzmq_dealer_with_routing_id_and_multipart() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_identity(b"zdealer-8").unwrap();
    let addr = zbind(&dealer);

    let mut d = Driver::connect(addr, &Config::new(SocketType::Router));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Dealer);
    assert_eq!(peer.identity, b"zdealer-8");
    assert_eq!(peer.minor, 1);
    exchange_libzmq_dealer_our_router(&mut d, &dealer);
}

/// Our DEALER "dev-1" <-> libzmq ROUTER, after the handshake: the ROUTER sees "dev-1" as the
/// routing id and routes its reply back by it.
fn exchange_our_dealer_libzmq_router(d: &mut Driver, router: &zmq::Socket) {
    let msg = sample_message();
    d.send(&msg);
    let got = zrecv(d, router);
    assert_eq!(
        got[0], b"dev-1",
        "libzmq ROUTER's routing id for our DEALER"
    );
    assert_eq!(got[1..], msg[..]);
    assert!(has_long_300(&d.tx_log));

    let mut reply = vec![b"dev-1".to_vec()];
    reply.extend(msg.iter().cloned());
    zsend(d, router, &reply);
    assert_eq!(d.recv_message(), msg);
    assert!(has_long_300(&d.rx_log));

    d.send(&[b""]);
    assert_eq!(zrecv(d, router), vec![b"dev-1".to_vec(), Vec::new()]);
    zsend(d, router, &[&b"dev-1"[..], b""]);
    assert_eq!(d.recv_message(), vec![Vec::<u8>::new()]);
}

#[test]
fn our_dealer_connects_to_libzmq_router_which_sees_our_routing_id() {
    let ctx = zmq::Context::new();
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    let addr = zbind(&router);

    let cfg = Config::new(SocketType::Dealer).with_identity(b"dev-1");
    let mut d = Driver::connect(addr, &cfg);
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Router);
    assert_eq!(
        peer.identity, b"",
        "libzmq ROUTER without a routing id sends an empty one"
    );
    exchange_our_dealer_libzmq_router(&mut d, &router);
}

#[test]
fn libzmq_router_connects_to_our_dealer_which_it_sees_by_routing_id() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let router = zsocket(&ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    router.connect(&ep).unwrap();

    let cfg = Config::new(SocketType::Dealer).with_identity(b"dev-1");
    let mut d = Driver::accept(&listener, &cfg);
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Router);
    exchange_our_dealer_libzmq_router(&mut d, &router);
}

// ================================================================================ tests: PUSH / PULL

const ORDERED: usize = 1000;

/// libzmq PUSH (in a thread) sends 1000 numbered messages then 1 MiB; our PULL with a 4 KiB
/// receive buffer gets them in order, the big one as a chunk stream, byte-exact.
fn libzmq_push_to_our_pull(push: zmq::Socket, d: &mut Driver) {
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Push);
    let big = pattern(MIB, 42);
    let big2 = big.clone();
    let sender = thread::spawn(move || {
        for i in 0..ORDERED {
            push.send(format!("msg-{i}").as_bytes(), 0).unwrap();
        }
        push.send(&big2[..], 0).unwrap();
        push
    });
    for i in 0..ORDERED {
        let m = d.recv_message();
        assert_eq!(m, vec![format!("msg-{i}").into_bytes()], "message {i}");
    }
    assert_eq!(d.chunks_taken, 0, "small frames are delivered whole");
    let m = d.recv_message();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].len(), MIB);
    assert!(m[0] == big, "1 MiB frame reassembled byte-exact");
    assert!(
        d.chunks_taken >= MIB / 4096,
        "1 MiB through a 4 KiB buffer arrives as FrameChunks (saw {})",
        d.chunks_taken
    );
    drop(sender.join().unwrap());
}

#[test]
fn libzmq_push_connects_to_our_pull_1000_ordered_and_1mib_chunked() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let push = zsocket(&ctx, zmq::PUSH);
    push.connect(&ep).unwrap();
    let mut d = Driver::accept_with(&listener, &Config::new(SocketType::Pull), 4096, 4096);
    libzmq_push_to_our_pull(push, &mut d);
}

#[test]
fn our_pull_connects_to_libzmq_push_1000_ordered_and_1mib_chunked() {
    let ctx = zmq::Context::new();
    let push = zsocket(&ctx, zmq::PUSH);
    let addr = zbind(&push);
    let mut d = Driver::connect_with(addr, &Config::new(SocketType::Pull), 4096, 4096);
    libzmq_push_to_our_pull(push, &mut d);
}

/// Our PUSH with a 4 KiB transmit buffer sends 1000 numbered messages then 1 MiB (streamed);
/// libzmq PULL (in a thread) gets them in order, byte-exact.
fn our_push_to_libzmq_pull(pull: zmq::Socket, d: &mut Driver) {
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Pull);
    let receiver = thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..=ORDERED {
            got.push(
                pull.recv_multipart(0)
                    .expect("libzmq PULL receives in time"),
            );
        }
        // Hand the socket back: closing it here would close the connection under us.
        (got, pull)
    });
    for i in 0..ORDERED {
        d.send(&[format!("msg-{i}")]);
    }
    let big = pattern(MIB, 43);
    d.send(&[&big]);
    d.wait_for("libzmq PULL to receive everything", |_| {
        receiver.is_finished().then_some(())
    });
    let (got, _pull) = receiver.join().unwrap();
    for (i, m) in got[..ORDERED].iter().enumerate() {
        assert_eq!(m, &vec![format!("msg-{i}").into_bytes()], "message {i}");
    }
    assert_eq!(got[ORDERED].len(), 1);
    assert!(got[ORDERED][0] == big, "1 MiB frame arrived byte-exact");
    assert!(scan(&d.tx_log).contains(&Wire::Data {
        len: MIB as u64,
        long: true,
        more: false
    }));
}

#[test]
fn our_push_connects_to_libzmq_pull_1000_ordered_and_1mib() {
    let ctx = zmq::Context::new();
    let pull = zsocket(&ctx, zmq::PULL);
    let addr = zbind(&pull);
    let mut d = Driver::connect_with(addr, &Config::new(SocketType::Push), 4096, 4096);
    our_push_to_libzmq_pull(pull, &mut d);
}

#[test]
fn libzmq_pull_connects_to_our_push_1000_ordered_and_1mib() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let pull = zsocket(&ctx, zmq::PULL);
    pull.connect(&ep).unwrap();
    let mut d = Driver::accept_with(&listener, &Config::new(SocketType::Push), 4096, 4096);
    our_push_to_libzmq_pull(pull, &mut d);
}

// ================================================================================ tests: PUB / SUB

#[test]
fn libzmq_pub_sends_our_sub_only_the_topic_we_subscribed() {
    let ctx = zmq::Context::new();
    let publisher = zsocket(&ctx, zmq::PUB);
    let addr = zbind(&publisher);
    let mut d = Driver::connect(addr, &Config::new(SocketType::Sub));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Pub);
    d.subscribe(b"A");
    assert_eq!(
        commands(&d.tx_log, b"SUBSCRIBE"),
        vec![b"\x09SUBSCRIBEA".to_vec()],
        "to a 3.1 peer the subscription is a SUBSCRIBE command"
    );

    // libzmq applies the subscription asynchronously: publish until a match arrives.
    let mut received: Vec<Vec<Vec<u8>>> = Vec::new();
    let deadline = StdInstant::now() + STEP;
    while received.is_empty() {
        assert!(
            StdInstant::now() < deadline,
            "no matching message: {}",
            d.summary()
        );
        publisher.send(&b"B-sync"[..], 0).unwrap();
        publisher.send(&b"A-sync"[..], 0).unwrap();
        let soon = StdInstant::now() + Duration::from_millis(20);
        received.extend(d.pump_until(soon, |d| d.try_take_message()));
    }
    // Subscribed now: a known sequence, ended by a matching marker.
    for m in [&b"B1"[..], b"A1", b"C", b"AB", b"", b"B2"] {
        publisher.send(m, 0).unwrap();
    }
    publisher
        .send_multipart([&b"A-multi"[..], b"payload"], 0)
        .unwrap();
    publisher.send(&b"A-end"[..], 0).unwrap();
    loop {
        let m = d.recv_message();
        let end = m == [b"A-end".to_vec()];
        received.push(m);
        if end {
            break;
        }
    }
    // Sync messages still in flight come first; B-sync must never have arrived.
    let after: Vec<Vec<Vec<u8>>> = received
        .into_iter()
        .filter(|m| {
            assert_ne!(
                m[0], b"B-sync",
                "libzmq PUB sent a topic we did not subscribe to"
            );
            m[..] != [b"A-sync".to_vec()]
        })
        .collect();
    assert_eq!(
        after,
        vec![
            vec![b"A1".to_vec()],
            vec![b"AB".to_vec()],
            vec![b"A-multi".to_vec(), b"payload".to_vec()],
            vec![b"A-end".to_vec()],
        ]
    );
}

#[test]
fn libzmq_sub_subscribes_and_cancels_at_our_pub() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let sub = zsocket(&ctx, zmq::SUB);
    sub.set_subscribe(b"topic").unwrap();
    sub.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Pub));
    let peer = d.handshake();
    assert_eq!(peer.socket_type, SocketType::Sub);
    assert_eq!(d.next_event(), Ev::Subscribe(b"topic".to_vec()));

    // libzmq's SUB filters what it receives too: only the match comes out.
    d.send(&[b"other"]);
    d.send(&[&b"topic-1"[..], b"body"]);
    assert_eq!(
        zrecv(&mut d, &sub),
        vec![b"topic-1".to_vec(), b"body".to_vec()]
    );

    sub.set_unsubscribe(b"topic").unwrap();
    assert_eq!(d.next_event(), Ev::Cancel(b"topic".to_vec()));
    assert!(d.closed.is_none());
}

// ================================================================================ tests: heartbeats

#[test]
fn libzmq_heartbeats_against_our_session_keep_the_connection_up_for_2s() {
    let ctx = zmq::Context::new();
    let (listener, ep) = listen();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_heartbeat_ivl(100).unwrap();
    dealer.set_heartbeat_timeout(300).unwrap();
    dealer.connect(&ep).unwrap();

    let mut d = Driver::accept(&listener, &Config::new(SocketType::Router));
    d.handshake();

    // libzmq sends every 100 ms; we send every 400 ms, longer than libzmq's 300 ms heartbeat
    // timeout, so only our PONGs keep libzmq from dropping the connection in between.
    let start = StdInstant::now();
    let end = start + Duration::from_secs(2);
    let (mut z_sent, mut z_got, mut r_sent, mut r_got) = (0usize, 0usize, 0usize, 0usize);
    let (mut next_z, mut next_r) = (start, start);
    while StdInstant::now() < end {
        let now = StdInstant::now();
        if now >= next_z {
            dealer
                .send(format!("z-{z_sent}").as_bytes(), zmq::DONTWAIT)
                .unwrap();
            z_sent += 1;
            next_z += Duration::from_millis(100);
        }
        if now >= next_r {
            d.send(&[format!("r-{r_sent}")]);
            r_sent += 1;
            next_r += Duration::from_millis(400);
        }
        while let Some(m) = d.try_take_message() {
            assert_eq!(m, vec![format!("z-{z_got}").into_bytes()]);
            z_got += 1;
        }
        while let Ok(m) = dealer.recv_multipart(zmq::DONTWAIT) {
            assert_eq!(m, vec![format!("r-{r_got}").into_bytes()]);
            r_got += 1;
        }
        assert!(
            d.closed.is_none(),
            "closed during heartbeats: {}",
            d.summary()
        );
        d.pump();
    }

    // Still up: a message each way, no close, and libzmq never reconnected.
    zsend(&mut d, &dealer, &[b"final"]);
    while z_got < z_sent {
        assert_eq!(d.recv_message(), vec![format!("z-{z_got}").into_bytes()]);
        z_got += 1;
    }
    assert_eq!(d.recv_message(), vec![b"final".to_vec()]);
    d.send(&[b"final-back"]);
    loop {
        let m = zrecv(&mut d, &dealer);
        if m == [b"final-back".to_vec()] {
            break;
        }
        assert_eq!(m, vec![format!("r-{r_got}").into_bytes()]);
        r_got += 1;
    }
    assert!(d.closed.is_none());
    assert!(
        z_got >= 15 && r_got >= 4,
        "traffic flowed: z {z_got}, r {r_got}"
    );
    let pings = commands(&d.rx_log, b"PING");
    let pongs = commands(&d.tx_log, b"PONG");
    assert!(
        pings.len() >= 10,
        "libzmq pinged us every 100 ms: {} PINGs",
        pings.len()
    );
    assert!(pongs.len() >= 10, "we answered: {} PONGs", pongs.len());
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "libzmq reconnected: the first connection was dropped"
    );
}

#[test]
fn libzmq_ping_ttl_is_enforced_when_relay_silences_libzmq() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    dealer.set_heartbeat_ivl(100).unwrap();
    dealer.set_heartbeat_ttl(500).unwrap();
    // libzmq itself should not give up on us during the test.
    dealer.set_heartbeat_timeout(5000).unwrap();
    let relay = Relay::start(zbind(&dealer), b"PING");

    let mut d = Driver::connect(relay.addr, &Config::new(SocketType::Router));
    d.handshake();
    zsend(&mut d, &dealer, &[b"before"]);
    assert_eq!(d.recv_message(), vec![b"before".to_vec()]);
    d.send(&[b"ack"]);
    assert_eq!(zrecv(&mut d, &dealer), vec![b"ack".to_vec()]);

    relay.arm();
    let closed = d.pump_until(StdInstant::now() + STEP, |d| d.closed);
    let silenced = relay
        .silenced_at()
        .expect("the relay went silent after a PING");
    let (reason, at) = closed.unwrap_or_else(|| panic!("still open: {}", d.summary()));
    assert_eq!(reason, CloseReason::TtlExpired, "{}", d.summary());
    let after = at.saturating_duration_since(silenced);
    assert!(
        after >= Duration::from_millis(400) && after <= Duration::from_secs(2),
        "closed {after:?} after libzmq went silent (TTL 500 ms)"
    );
    // The PING that set the TTL: `04 PING` + TTL 5 deciseconds (+ context, empty from libzmq).
    let pings = commands(&d.rx_log, b"PING");
    let last = pings.last().expect("a PING reached us");
    assert_eq!(last[5..7], [0x00, 0x05], "PING {}", hex(last));
}

#[test]
fn our_heartbeat_times_out_when_relay_silences_libzmq_pongs() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let relay = Relay::start(zbind(&dealer), b"PONG");

    let mut cfg = Config::new(SocketType::Router);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Some(Duration::from_millis(300));
    let mut d = Driver::connect(relay.addr, &cfg);
    d.handshake();
    zsend(&mut d, &dealer, &[b"before"]);
    assert_eq!(d.recv_message(), vec![b"before".to_vec()]);
    d.wait_for("libzmq's first PONG", |d| {
        (!commands(&d.rx_log, b"PONG").is_empty()).then_some(())
    });
    assert!(d.closed.is_none());

    relay.arm();
    let closed = d.pump_until(StdInstant::now() + STEP, |d| d.closed);
    let silenced = relay
        .silenced_at()
        .expect("the relay went silent after a PONG");
    let (reason, at) = closed.unwrap_or_else(|| panic!("still open: {}", d.summary()));
    assert_eq!(reason, CloseReason::HeartbeatTimeout, "{}", d.summary());
    let after = at.saturating_duration_since(silenced);
    assert!(
        after >= Duration::from_millis(250) && after <= Duration::from_secs(2),
        "closed {after:?} after libzmq went silent (interval 100 ms, timeout 300 ms)"
    );
    assert!(commands(&d.tx_log, b"PING").len() >= 2);
}

#[test]
fn libzmq_without_heartbeat_options_answers_our_pings_for_1s() {
    let ctx = zmq::Context::new();
    let dealer = zsocket(&ctx, zmq::DEALER);
    let addr = zbind(&dealer);

    let mut cfg = Config::new(SocketType::Router);
    cfg.heartbeat_interval = Some(Duration::from_millis(100));
    cfg.heartbeat_timeout = Some(Duration::from_millis(300));
    let mut d = Driver::connect(addr, &cfg);
    d.handshake();
    zsend(&mut d, &dealer, &[b"hi"]);
    assert_eq!(d.recv_message(), vec![b"hi".to_vec()]);

    // No data for 1 s: only libzmq's PONGs keep our session alive.
    let pongs_before = commands(&d.rx_log, b"PONG").len();
    d.pump_for(Duration::from_secs(1));
    let pings = commands(&d.tx_log, b"PING");
    let pongs = commands(&d.rx_log, b"PONG").len() - pongs_before;
    assert!(
        pings.len() >= 5,
        "we pinged every 100 ms: {} PINGs",
        pings.len()
    );
    assert!(
        pongs >= 5,
        "libzmq answered: {pongs} PONGs in the silent second"
    );
    assert!(
        pings.iter().all(|p| p == b"\x04PING\x00\x00"),
        "our PINGs: TTL 0, no context"
    );

    d.send(&[b"still-here"]);
    assert_eq!(zrecv(&mut d, &dealer), vec![b"still-here".to_vec()]);
    zsend(&mut d, &dealer, &[b"me-too"]);
    assert_eq!(d.recv_message(), vec![b"me-too".to_vec()]);
    assert!(d.closed.is_none());
}
