//! `zmtp_std::proxy` and `proxy_steerable` between libzmq peers (the `zmq` crate), steered
//! from a libzmq control socket: a ROUTER-DEALER queue with capture, PAUSE/RESUME,
//! STATISTICS and TERMINATE; an XSUB-XPUB forwarder whose sockets connect to libzmq's
//! (subscriptions up, messages down); a message a ROUTER cannot route dropped without
//! stopping the proxy; the `stop_when` condition; a PAIR control socket.

use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::{proxy, proxy_steerable, Context, Proxy, ProxyStats, SocketType};

mod common;
use common::{zbind, zsocket, STEP};

fn stats_of(frames: Vec<Vec<u8>>) -> ProxyStats {
    ProxyStats::from_frames(&frames).expect("STATISTICS: eight 8-byte frames")
}

/// A libzmq REQ client's round trip through the proxy to a libzmq REP worker.
fn round_trip(client: &zmq::Socket, body: &str) -> String {
    client.send(body, 0).unwrap();
    String::from_utf8(client.recv_bytes(0).expect("reply through the proxy")).unwrap()
}

/// libzmq REP workers that answer `re: <request>` until told `stop`.
fn zworker(zctx: &zmq::Context, ep: &str) -> thread::JoinHandle<usize> {
    let w = zsocket(zctx, zmq::REP);
    w.set_rcvtimeo(-1).unwrap();
    w.connect(ep).unwrap();
    thread::spawn(move || {
        let mut n = 0;
        loop {
            let req = w.recv_bytes(0).unwrap();
            if req == b"stop" {
                w.send("stopped", 0).unwrap();
                return n;
            }
            n += 1;
            let mut reply = b"re: ".to_vec();
            reply.extend_from_slice(&req);
            w.send(reply, 0).unwrap();
        }
    })
}

/// The Guide's shared queue (ROUTER frontend, DEALER backend, both bound by us) between
/// libzmq REQ clients and REP workers, with a PUB capture and a REP control socket that a
/// libzmq REQ steers.
#[test]
fn queue_with_capture_steered_by_libzmq() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let frontend = ctx.socket(SocketType::Router).unwrap();
    let backend = ctx.socket(SocketType::Dealer).unwrap();
    let capture = ctx.socket(SocketType::Pub).unwrap();
    let control = ctx.socket(SocketType::Rep).unwrap();
    let front_ep = frontend.bind("tcp://127.0.0.1:0").unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:0").unwrap();
    let cap_ep = capture.bind("tcp://127.0.0.1:0").unwrap();
    let control_ep = control.bind("tcp://127.0.0.1:0").unwrap();
    let proxy =
        thread::spawn(move || proxy_steerable(&frontend, &backend, Some(&capture), Some(&control)));

    let tap = zsocket(&zctx, zmq::SUB);
    tap.set_subscribe(b"").unwrap();
    tap.connect(&cap_ep).unwrap();
    let worker = zworker(&zctx, &back_ep);
    let client = zsocket(&zctx, zmq::REQ);
    client.connect(&front_ep).unwrap();
    let steer = zsocket(&zctx, zmq::REQ);
    steer.connect(&control_ep).unwrap();

    // The capture's subscription takes a moment: go round until a copy shows up.
    tap.set_rcvtimeo(50).unwrap();
    let deadline = Instant::now() + STEP;
    let mut trips = 0u64;
    loop {
        assert_eq!(round_trip(&client, "warm-up"), "re: warm-up");
        trips += 1;
        if tap.recv_multipart(0).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the capture never got a copy");
    }
    while tap.recv_multipart(0).is_ok() {}
    tap.set_rcvtimeo(STEP.as_millis() as i32).unwrap();

    // A request and its reply, both captured as the proxy read them.
    assert_eq!(round_trip(&client, "hello"), "re: hello");
    trips += 1;
    let request = tap.recv_multipart(0).unwrap();
    assert_eq!(
        request.len(),
        3,
        "routing id, empty delimiter, body: {request:?}"
    );
    assert_eq!(&request[1..], [b"".to_vec(), b"hello".to_vec()]);
    let reply = tap.recv_multipart(0).unwrap();
    assert_eq!(
        reply,
        [request[0].clone(), b"".to_vec(), b"re: hello".to_vec()]
    );

    // STATISTICS: the 8 counters, frames as libzmq 4.3.5 counts them: a request is
    // [client id, "", body] from the frontend to the backend, and its reply the same
    // envelope back.
    steer.send("STATISTICS", 0).unwrap();
    let s = stats_of(steer.recv_multipart(0).unwrap());
    for frames in [
        s.frontend_in_msgs,
        s.backend_out_msgs,
        s.backend_in_msgs,
        s.frontend_out_msgs,
    ] {
        assert_eq!(frames, 3 * trips, "{s:?}");
    }
    assert_eq!(s.frontend_in_bytes, s.backend_out_bytes);
    assert_eq!(s.backend_in_bytes, s.frontend_out_bytes);
    let id = request[0].len() as u64;
    let bodies = (trips - 1) * "warm-up".len() as u64 + "hello".len() as u64;
    assert_eq!(s.frontend_in_bytes, trips * id + bodies);
    assert_eq!(
        s.backend_in_bytes,
        trips * id + bodies + trips * "re: ".len() as u64
    );

    // PAUSE: a request waits in the queues; RESUME lets it through. A REP control socket
    // answers every command with an empty frame (libzmq 4.3.5).
    steer.send("PAUSE", 0).unwrap();
    assert_eq!(steer.recv_bytes(0).unwrap(), b"");
    client.set_rcvtimeo(300).unwrap();
    client.send("while paused", 0).unwrap();
    assert!(client.recv_bytes(0).is_err(), "a paused proxy forwarded");
    steer.send("RESUME", 0).unwrap();
    assert_eq!(steer.recv_bytes(0).unwrap(), b"");
    // The REQ gave up on its request; a fresh one gets the reply that is now on its way.
    let client = zsocket(&zctx, zmq::REQ);
    client.connect(&front_ep).unwrap();
    assert_eq!(round_trip(&client, "after"), "re: after");

    // An unknown command is answered and ignored.
    steer.send("BOGUS", 0).unwrap();
    assert_eq!(steer.recv_bytes(0).unwrap(), b"");

    assert_eq!(round_trip(&client, "stop"), "stopped");
    assert_eq!(worker.join().unwrap() as u64, trips + 2);

    steer.send("TERMINATE", 0).unwrap();
    assert_eq!(steer.recv_bytes(0).unwrap(), b"");
    let end = proxy.join().unwrap().unwrap();
    // The paused request, "after" and "stop" went through, with their replies (the
    // paused request's to the client that had given up waiting).
    assert_eq!(end.frontend_in_msgs, 3 * (trips + 3));
    assert_eq!(end.frontend_out_msgs, 3 * (trips + 3));
}

/// A forwarder whose sockets connect to libzmq's: XSUB to a libzmq PUB, XPUB to a libzmq
/// SUB. The subscription travels up through the proxy, the messages down; STATISTICS on a
/// PAIR control socket (no answers to the other commands).
#[test]
fn forwarder_connecting_to_libzmq_with_pair_control() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let publisher = zsocket(&zctx, zmq::PUB);
    let pub_ep = zbind(&publisher);
    let subscriber = zsocket(&zctx, zmq::SUB);
    subscriber.set_subscribe(b"weather").unwrap();
    let sub_ep = zbind(&subscriber);
    let steer = zsocket(&zctx, zmq::PAIR);
    let steer_ep = zbind(&steer);

    let xsub = ctx.socket(SocketType::XSub).unwrap();
    let xpub = ctx.socket(SocketType::XPub).unwrap();
    let control = ctx.socket(SocketType::Pair).unwrap();
    xsub.connect(&pub_ep).unwrap();
    xpub.connect(&sub_ep).unwrap();
    control.connect(&steer_ep).unwrap();
    let proxy = thread::spawn(move || proxy_steerable(&xsub, &xpub, None, Some(&control)));

    // Until the subscription has gone up, what is published is lost (slow joiner).
    subscriber.set_rcvtimeo(20).unwrap();
    let deadline = Instant::now() + STEP;
    let got = loop {
        publisher.send_multipart(["sports", "0:0"], 0).unwrap();
        publisher.send_multipart(["weather", "sunny"], 0).unwrap();
        if let Ok(m) = subscriber.recv_multipart(0) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "nothing came through the forwarder"
        );
    };
    assert_eq!(got, [b"weather".to_vec(), b"sunny".to_vec()]);

    steer.send("PAUSE", 0).unwrap();
    steer.send("STATISTICS", 0).unwrap();
    let s = stats_of(steer.recv_multipart(0).unwrap());
    // Up: the XPUB received the subscription ("\x01weather", one frame) and the XSUB sent
    // it on. Down: the publisher filtered "sports"; only weather reached the XSUB.
    assert_eq!(s.backend_in_msgs, 1, "{s:?}");
    assert_eq!(s.backend_in_bytes, 1 + "weather".len() as u64);
    assert_eq!((s.frontend_out_msgs, s.frontend_out_bytes), (1, 8));
    assert!(
        s.frontend_in_msgs >= 2 && s.frontend_in_msgs.is_multiple_of(2),
        "{s:?}"
    );
    assert_eq!(s.backend_out_msgs, s.frontend_in_msgs);

    steer.send("TERMINATE", 0).unwrap();
    let end = proxy.join().unwrap().unwrap();
    assert_eq!(end, s, "paused: nothing moved after STATISTICS");
}

/// `proxy` (no control) as a streamer: our PULL connects to a libzmq PUSH, our PUSH is
/// bound for a libzmq PULL; a multipart message arrives whole and in order.
#[test]
fn streamer_between_libzmq_push_and_pull() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let producer = zsocket(&zctx, zmq::PUSH);
    let producer_ep = zbind(&producer);
    let frontend = ctx.socket(SocketType::Pull).unwrap();
    let backend = ctx.socket(SocketType::Push).unwrap();
    frontend.connect(&producer_ep).unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:0").unwrap();
    // Runs until the process ends: `proxy` returns only with an error.
    thread::spawn(move || proxy(&frontend, &backend, None));

    let consumer = zsocket(&zctx, zmq::PULL);
    consumer.connect(&back_ep).unwrap();
    for n in 0..100 {
        producer
            .send_multipart([format!("job {n}").into_bytes(), vec![], vec![b'x'; n]], 0)
            .unwrap();
    }
    for n in 0..100 {
        let m = consumer
            .recv_multipart(0)
            .expect("a job through the streamer");
        assert_eq!(m, [format!("job {n}").into_bytes(), vec![], vec![b'x'; n]]);
    }
}

/// A message the frontend ROUTER cannot send (a one-frame message from a libzmq DEALER
/// worker: no routing id and body) is dropped, and the proxy goes on serving the others.
#[test]
fn message_a_router_cannot_route_is_dropped() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let frontend = ctx.socket(SocketType::Router).unwrap();
    let backend = ctx.socket(SocketType::Dealer).unwrap();
    let control = ctx.socket(SocketType::Rep).unwrap();
    let front_ep = frontend.bind("tcp://127.0.0.1:0").unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:0").unwrap();
    let control_ep = control.bind("tcp://127.0.0.1:0").unwrap();
    let proxy = thread::spawn(move || proxy_steerable(&frontend, &backend, None, Some(&control)));
    let rogue = zsocket(&zctx, zmq::DEALER);
    rogue.connect(&back_ep).unwrap();
    rogue.send("junk", 0).unwrap();
    let steer = zsocket(&zctx, zmq::REQ);
    steer.connect(&control_ep).unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        steer.send("STATISTICS", 0).unwrap();
        let s = stats_of(steer.recv_multipart(0).unwrap());
        if s.backend_in_msgs == 1 {
            assert_eq!(s.frontend_out_msgs, 0, "dropped, not sent: {s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the proxy never read the junk");
    }
    drop(rogue);
    let worker = zworker(&zctx, &back_ep);
    let client = zsocket(&zctx, zmq::REQ);
    client.connect(&front_ep).unwrap();
    assert_eq!(round_trip(&client, "still there?"), "re: still there?");
    assert_eq!(round_trip(&client, "stop"), "stopped");
    worker.join().unwrap();
    steer.send("TERMINATE", 0).unwrap();
    steer.recv_bytes(0).unwrap();
    proxy.join().unwrap().unwrap();
}

/// `Proxy::stop_when`: the condition ends the proxy with its counters, without a control
/// socket; a DEALER capture that has no peer does not hold the proxy up.
#[test]
fn stop_when_ends_the_proxy_and_capture_never_blocks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let frontend = ctx.socket(SocketType::Pull).unwrap();
    let backend = ctx.socket(SocketType::Push).unwrap();
    let capture = ctx.socket(SocketType::Dealer).unwrap();
    capture.set_send_hwm(1).unwrap();
    let front_ep = frontend.bind("tcp://127.0.0.1:0").unwrap();
    let back_ep = backend.bind("tcp://127.0.0.1:0").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let proxy = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            Proxy::new(&frontend, &backend)
                .capture(&capture)
                .stop_when(Duration::from_millis(20), move || {
                    stop.load(Ordering::Relaxed)
                })
                .run()
        })
    };
    let producer = zsocket(&zctx, zmq::PUSH);
    producer.connect(&front_ep).unwrap();
    let consumer = zsocket(&zctx, zmq::PULL);
    consumer.connect(&back_ep).unwrap();
    for n in 0..50 {
        producer.send(format!("{n}").as_str(), 0).unwrap();
    }
    for n in 0..50 {
        assert_eq!(consumer.recv_bytes(0).unwrap(), format!("{n}").into_bytes());
    }
    stop.store(true, Ordering::Relaxed);
    let s = proxy.join().unwrap().unwrap();
    assert_eq!((s.frontend_in_msgs, s.backend_out_msgs), (50, 50));
    assert_eq!((s.backend_in_msgs, s.frontend_out_msgs), (0, 0));
}

/// `zmq_proxy(s, s, ...)`: one socket as both frontend and backend echoes what it gets
/// (libzmq's "frontend_equal_to_backend"); counted once, as the frontend's in and the
/// backend's out.
#[test]
fn one_socket_as_both_sides_echoes() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let echo = ctx.socket(SocketType::Dealer).unwrap();
    let control = ctx.socket(SocketType::Pair).unwrap();
    let ep = echo.bind("tcp://127.0.0.1:0").unwrap();
    let control_ep = control.bind("tcp://127.0.0.1:0").unwrap();
    let proxy = thread::spawn(move || proxy_steerable(&echo, &echo, None, Some(&control)));
    let peer = zsocket(&zctx, zmq::DEALER);
    peer.connect(&ep).unwrap();
    for n in 0..5 {
        peer.send_multipart([format!("hello {n}").as_str(), "x"], 0)
            .unwrap();
        assert_eq!(
            peer.recv_multipart(0).expect("the echo"),
            [format!("hello {n}").into_bytes(), b"x".to_vec()]
        );
    }
    let steer = zsocket(&zctx, zmq::PAIR);
    steer.connect(&control_ep).unwrap();
    steer.send("TERMINATE", 0).unwrap();
    let s = proxy.join().unwrap().unwrap();
    assert_eq!((s.frontend_in_msgs, s.backend_out_msgs), (10, 10));
    assert_eq!((s.backend_in_msgs, s.frontend_out_msgs), (0, 0));
}
