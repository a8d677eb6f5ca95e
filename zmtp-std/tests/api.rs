//! The API between two of our own sockets: patterns, errors, options, close and linger.

use std::time::{Duration, Instant};

use zmtp_std::{Context, Error, SocketType};

mod common;
use common::{wait_until, STEP};

#[test]
fn req_rep_round_trip_and_state_errors() {
    let ctx = Context::new().unwrap();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    assert!(
        ep.starts_with("tcp://127.0.0.1:") && !ep.ends_with(":0"),
        "{ep}"
    );
    assert_eq!(rep.last_endpoint().as_deref(), Some(ep.as_str()));
    let req = ctx.socket(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();

    assert!(matches!(req.try_recv_multipart(), Err(Error::State)));
    assert!(matches!(rep.send("x"), Err(Error::State)));
    for i in 0..20u32 {
        req.send_multipart([&i.to_be_bytes()[..], b"", b"tail"])
            .unwrap();
        assert!(matches!(req.send("again"), Err(Error::State)));
        let got = rep.recv_multipart_timeout(STEP).unwrap();
        assert_eq!(got, [i.to_be_bytes().to_vec(), vec![], b"tail".to_vec()]);
        assert!(matches!(rep.try_recv_multipart(), Err(Error::State)));
        rep.send(b"ok").unwrap();
        assert_eq!(req.recv_timeout(STEP).unwrap(), b"ok");
        assert!(!req.has_more());
    }
}

#[test]
fn pubsub_types_and_bad_endpoints() {
    let ctx = Context::new().unwrap();
    for ty in [
        SocketType::Pub,
        SocketType::Sub,
        SocketType::XPub,
        SocketType::XSub,
    ] {
        let s = ctx.socket(ty).unwrap();
        let subscribes = matches!(ty, SocketType::Sub | SocketType::XSub);
        // Before start (kept for later), and after.
        assert_eq!(s.subscribe(b"a").is_ok(), subscribes, "{ty}");
        s.bind("tcp://127.0.0.1:0").unwrap();
        assert_eq!(s.subscribe(b"b").is_ok(), subscribes, "{ty}");
        assert_eq!(s.unsubscribe(b"b").is_ok(), subscribes, "{ty}");
        assert!(matches!(
            s.set_xpub_verbose(true),
            Err(Error::InvalidOption { .. })
        ));
    }
    // A full subscription tree refuses the next topic; unsubscribing makes room.
    let sub = ctx.socket(SocketType::Sub).unwrap();
    sub.set_subscription_nodes(1).unwrap();
    assert!(matches!(
        sub.bind("tcp://127.0.0.1:0"),
        Err(Error::InvalidOption {
            option: "subscription_nodes",
            ..
        })
    ));
    sub.set_subscription_nodes(2).unwrap();
    sub.bind("tcp://127.0.0.1:0").unwrap();
    sub.subscribe("a").unwrap();
    sub.subscribe("a").unwrap();
    assert!(matches!(sub.subscribe("b"), Err(Error::SubscriptionsFull)));
    sub.unsubscribe("a").unwrap();
    assert!(matches!(sub.subscribe("b"), Err(Error::SubscriptionsFull)));
    sub.unsubscribe("a").unwrap();
    sub.subscribe("b").unwrap();
    assert!(matches!(
        sub.subscribe(vec![0u8; 2 << 20]),
        Err(Error::MessageTooLarge)
    ));
    let s = ctx.socket(SocketType::Pair).unwrap();
    for bad in [
        "ipc:///tmp/x",
        "tcp://127.0.0.1",
        "tcp://*:70000",
        "inproc://a",
    ] {
        assert!(
            matches!(s.bind(bad), Err(Error::InvalidEndpoint { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        s.connect("tcp://*:5555"),
        Err(Error::InvalidEndpoint { .. })
    ));
}

#[test]
fn bind_conflict_is_an_io_error() {
    let ctx = Context::new().unwrap();
    let a = ctx.socket(SocketType::Pull).unwrap();
    let ep = a.bind("tcp://127.0.0.1:0").unwrap();
    let b = ctx.socket(SocketType::Pull).unwrap();
    assert!(matches!(b.bind(&ep), Err(Error::Io(_))));
}

#[test]
fn options_are_checked_and_fixed_after_start() {
    let ctx = Context::new().unwrap();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    assert!(matches!(
        s.set_routing_id(b"\0bad"),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        s.set_routing_id(&[1u8; 256]),
        Err(Error::InvalidOption { .. })
    ));
    s.set_routing_id(b"me").unwrap();
    s.set_queue_size(1000).unwrap();
    s.set_buffer_size(4096).unwrap();
    assert!(
        matches!(s.bind("tcp://127.0.0.1:0"), Err(Error::InvalidOption { option, .. }) if option == "queue_size")
    );
    s.set_queue_size(8192).unwrap();
    s.bind("tcp://127.0.0.1:0").unwrap();
    assert!(matches!(
        s.set_send_hwm(5),
        Err(Error::InvalidOption { .. })
    ));
    s.set_linger(Some(Duration::ZERO));
    assert_eq!(s.options().routing_id, b"me");
    assert_eq!(s.options().linger, Some(Duration::ZERO));
    // Larger than the queue and the buffer: never sendable.
    assert!(matches!(
        s.try_send(vec![0u8; 10_000]),
        Err(Error::MessageTooLarge)
    ));
}

#[test]
fn non_blocking_and_timeouts() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("tcp://127.0.0.1:0").unwrap();
    assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
    let t = Instant::now();
    assert!(matches!(
        pull.recv_multipart_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(matches!(pull.send("x"), Err(Error::State)));

    // A PUSH with nowhere to send: its queue (the HWM) fills, then it would block.
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_send_hwm(3).unwrap();
    push.set_linger(Some(Duration::ZERO));
    push.connect("tcp://127.0.0.1:1").unwrap();
    for _ in 0..3 {
        push.try_send("m").unwrap();
    }
    assert!(matches!(push.try_send("m"), Err(Error::WouldBlock)));
    assert!(matches!(
        push.send_timeout("m", Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert!(matches!(push.try_recv(), Err(Error::State)));
}

#[test]
fn router_mandatory_and_routing_ids() {
    let ctx = Context::new().unwrap();
    let router = ctx.socket(SocketType::Router).unwrap();
    router.set_router_mandatory(true).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    assert!(matches!(
        router.send_multipart(["nobody", "hi"]),
        Err(Error::HostUnreachable)
    ));
    assert!(matches!(router.send("only-id"), Err(Error::EmptyMessage)));
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.set_identity(b"d1").unwrap();
    dealer.connect(&ep).unwrap();
    wait_until("the dealer", || router.connected_peers() == 1);
    router.send_multipart(["d1", "hello"]).unwrap();
    assert_eq!(dealer.recv_timeout(STEP).unwrap(), b"hello");
    dealer.send_multipart(["a", "", "b"]).unwrap();
    assert_eq!(
        router.recv_multipart_timeout(STEP).unwrap(),
        [b"d1".to_vec(), b"a".to_vec(), vec![], b"b".to_vec()]
    );
    // Frame by frame, like pyzmq's recv().
    dealer.send_multipart(["x", "y"]).unwrap();
    assert_eq!(router.recv_timeout(STEP).unwrap(), b"d1");
    assert!(router.has_more());
    assert_eq!(router.recv().unwrap(), b"x");
    assert_eq!(router.recv_multipart().unwrap(), [b"y".to_vec()]);
    assert!(!router.has_more());
}

#[test]
fn linger_delivers_after_close() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    {
        let push = ctx.socket(SocketType::Push).unwrap();
        push.connect(&ep).unwrap();
        for i in 0..100u32 {
            push.send(i.to_be_bytes()).unwrap();
        }
        push.close(); // at once, most messages still queued
    }
    for i in 0..100u32 {
        assert_eq!(pull.recv_timeout(STEP).unwrap(), i.to_be_bytes());
    }
}

#[test]
fn dropping_the_context_waits_for_linger_then_stops() {
    let ctx = Context::new().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(Some(Duration::from_millis(200)));
    push.connect("tcp://127.0.0.1:1").unwrap();
    push.send("never delivered").unwrap();
    let t = Instant::now();
    drop(push);
    drop(ctx);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[test]
fn reconnects_with_backoff_after_the_peer_restarts() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    push.set_reconnect_interval_max(Some(Duration::from_millis(80)))
        .unwrap();
    push.connect(&ep).unwrap();
    push.send("one").unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"one");
    pull.set_linger(Some(Duration::ZERO));
    drop(pull);
    wait_until("the push to notice", || push.connected_peers() == 0);
    // Rebind the same port (the old listener is closed by now: the peer noticed).
    let ctx2 = Context::new().unwrap();
    let pull = ctx2.socket(SocketType::Pull).unwrap();
    let deadline = Instant::now() + STEP;
    while let Err(e) = pull.bind(&ep) {
        assert!(Instant::now() < deadline, "rebind: {e}");
        std::thread::sleep(Duration::from_millis(5));
    }
    push.send("two").unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"two");
}

#[test]
fn a_reply_sent_just_before_the_rep_closes_still_arrives() {
    // The reply and the end of the stream arrive together; the reply must win.
    let ctx = Context::new().unwrap();
    for round in 0..20u8 {
        let rep = ctx.socket(SocketType::Rep).unwrap();
        let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
        let server = std::thread::spawn(move || {
            let req = rep.recv_multipart().unwrap();
            rep.send_multipart(&req).unwrap();
            // Dropped here: closes while the reply is on its way.
        });
        let req = ctx.socket(SocketType::Req).unwrap();
        req.set_linger(Some(Duration::ZERO));
        req.connect(&ep).unwrap();
        req.send([round]).unwrap();
        assert_eq!(req.recv_timeout(STEP).unwrap(), [round], "round {round}");
        server.join().unwrap();
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Context>();
    check::<zmtp_std::Socket>();
    check::<Error>();
}

#[test]
fn several_binds_and_connects_per_socket() {
    let ctx = Context::new().unwrap();
    // One PULL on two ports, a PUSH connected to each.
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let a = pull.bind("tcp://127.0.0.1:0").unwrap();
    let b = pull.bind("tcp://*:0").unwrap();
    assert!(b.starts_with("tcp://0.0.0.0:"), "{b}");
    assert_eq!(pull.last_endpoint().as_deref(), Some(b.as_str()));
    let b = b.replace("0.0.0.0", "127.0.0.1");
    let pushes: Vec<_> = [&a, &b]
        .iter()
        .map(|ep| {
            let p = ctx.socket(SocketType::Push).unwrap();
            p.connect(ep).unwrap();
            p
        })
        .collect();
    for (k, p) in pushes.iter().enumerate() {
        p.send([k as u8]).unwrap();
    }
    let mut got = vec![
        pull.recv_timeout(STEP).unwrap(),
        pull.recv_timeout(STEP).unwrap(),
    ];
    got.sort();
    assert_eq!(got, [[0], [1]]);

    // One PUSH connected to two PULLs: round robin once both are up.
    let pulls: Vec<_> = (0..2)
        .map(|_| ctx.socket(SocketType::Pull).unwrap())
        .collect();
    let push = ctx.socket(SocketType::Push).unwrap();
    for p in &pulls {
        push.connect(&p.bind("tcp://127.0.0.1:0").unwrap()).unwrap();
    }
    wait_until("both pulls", || push.connected_peers() == 2);
    for i in 0..10u8 {
        push.send([i]).unwrap();
    }
    for p in &pulls {
        for _ in 0..5 {
            p.recv_timeout(STEP).unwrap();
        }
        assert!(matches!(
            p.recv_timeout(Duration::from_millis(50)),
            Err(Error::Timeout)
        ));
    }
}

#[test]
fn ipv6_loopback_when_available() {
    let ctx = Context::new().unwrap();
    let pair = ctx.socket(SocketType::Pair).unwrap();
    let ep = match pair.bind("tcp://[::1]:0") {
        Ok(ep) => ep,
        Err(Error::Io(e)) => {
            eprintln!("no IPv6 loopback here ({e}); skipped");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(ep.starts_with("tcp://[::1]:"), "{ep}");
    let other = ctx.socket(SocketType::Pair).unwrap();
    other.connect(&ep).unwrap();
    other.send("over v6").unwrap();
    assert_eq!(pair.recv_timeout(STEP).unwrap(), b"over v6");
}

#[test]
fn a_silent_peer_hits_the_handshake_timeout_and_we_reconnect() {
    // A TCP server that accepts and never speaks ZMTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let ctx = Context::new().unwrap();
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer
        .set_handshake_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    dealer
        .set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    dealer.connect(&ep).unwrap();
    let t = Instant::now();
    let mut held = Vec::new();
    for _ in 0..3 {
        // Each accept is a new attempt; the previous one was given up after 50 ms.
        let (s, _) = listener.accept().unwrap();
        held.push(s);
    }
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(t.elapsed() < STEP);
    assert_eq!(dealer.connected_peers(), 0);
}

#[test]
fn recv_into_reuses_the_callers_buffers() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();

    // Nothing yet: the buffer is left alone.
    let mut buf = b"untouched".to_vec();
    assert!(matches!(
        pull.try_recv_into(&mut buf),
        Err(Error::WouldBlock)
    ));
    assert!(matches!(
        pull.recv_into_timeout(&mut buf, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert_eq!(buf, b"untouched");
    let mut msg = vec![b"untouched".to_vec()];
    assert!(matches!(
        pull.try_recv_multipart_into(&mut msg),
        Err(Error::WouldBlock)
    ));
    assert!(matches!(
        pull.recv_multipart_into_timeout(&mut msg, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    assert_eq!(msg, [b"untouched".to_vec()]);

    let long = vec![9u8; 100_000]; // past the batch's inline frames
    push.send("short").unwrap();
    push.send(&long).unwrap();
    push.send_multipart([&b"a"[..], b"", b"ccc"]).unwrap();
    push.send_multipart([&b"one"[..], b"two"]).unwrap();
    push.send_multipart([&b"x"[..], b"yy", b"zzz"]).unwrap();
    push.send("").unwrap();

    let mut buf = Vec::with_capacity(1024);
    let ptr = buf.as_ptr();
    assert_eq!(pull.recv_into_timeout(&mut buf, STEP).unwrap(), 5);
    assert_eq!(buf, b"short");
    assert_eq!(buf.as_ptr(), ptr, "the allocation is reused");
    assert_eq!(pull.recv_into(&mut buf).unwrap(), long.len());
    assert_eq!(buf, long);
    // Frame by frame, with `has_more`.
    let mut frames = Vec::new();
    loop {
        pull.recv_into(&mut buf).unwrap();
        frames.push(buf.clone());
        if !pull.has_more() {
            break;
        }
    }
    assert_eq!(frames, [b"a".to_vec(), vec![], b"ccc".to_vec()]);
    // Whole messages: the frames present are reused, extra ones go, missing ones come.
    let mut msg: Vec<Vec<u8>> = (0..5).map(|_| Vec::with_capacity(64)).collect();
    let first = msg[0].as_ptr();
    pull.recv_multipart_into(&mut msg).unwrap();
    assert_eq!(msg, [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(
        msg[0].as_ptr(),
        first,
        "the first frame's allocation is reused"
    );
    // The rest of a message partly read with `recv_into`.
    assert_eq!(pull.recv_into(&mut buf).unwrap(), 1);
    assert!(pull.has_more());
    pull.recv_multipart_into(&mut msg).unwrap();
    assert_eq!(msg, [b"yy".to_vec(), b"zzz".to_vec()]);
    assert!(!pull.has_more());
    assert_eq!(
        pull.try_recv_into(&mut buf).map_err(|e| e.to_string()),
        Ok(0)
    );
    assert!(buf.is_empty());
}

#[test]
fn recv_into_keeps_req_rep_turns() {
    let ctx = Context::new().unwrap();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    let req = ctx.socket(SocketType::Req).unwrap();
    req.connect(&rep.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    let mut buf = Vec::new();
    let mut msg = Vec::new();
    assert!(matches!(req.try_recv_into(&mut buf), Err(Error::State)));
    assert!(matches!(
        req.recv_multipart_into(&mut msg),
        Err(Error::State)
    ));
    for i in 0..50u32 {
        req.send(i.to_be_bytes()).unwrap();
        if i % 2 == 0 {
            assert_eq!(rep.recv_into_timeout(&mut buf, STEP).unwrap(), 4);
        } else {
            rep.recv_multipart_into_timeout(&mut msg, STEP).unwrap();
            buf.clone_from(&msg[0]);
        }
        assert_eq!(buf, i.to_be_bytes());
        assert!(matches!(rep.try_recv_into(&mut buf), Err(Error::State)));
        rep.send(&buf).unwrap();
        assert_eq!(req.recv_into_timeout(&mut buf, STEP).unwrap(), 4);
        assert_eq!(buf, i.to_be_bytes());
    }
}
