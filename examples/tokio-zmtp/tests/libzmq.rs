//! The tokio wrapper against real libzmq (the `zmq` crate builds libzmq 4.3 from source), both
//! directions: we connect to libzmq, libzmq connects to us.
//!
//! libzmq runs blocking on `spawn_blocking` threads with receive timeouts; every await on our
//! side has a deadline ([`within`]), so a broken wrapper fails the test instead of hanging it.

use std::future::Future;
use std::time::Duration;

use tokio::task::{spawn_blocking, JoinHandle};
use tokio::time::timeout;
use zmtp_tokio_example::{
    CloseReason, Config, Error, SocketConfig, SocketRecvError, SocketSendError, SocketType, ZSocket,
};

/// Deadline for any step that should happen.
const STEP: Duration = Duration::from_secs(10);

/// `f`, or a test failure after [`STEP`].
async fn within<T>(f: impl Future<Output = T>) -> T {
    timeout(STEP, f).await.expect("step timed out")
}

/// A libzmq socket that gives up after [`STEP`] rather than blocking a test forever.
fn zsock(ctx: &zmq::Context, ty: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(ty).unwrap();
    s.set_rcvtimeo(STEP.as_millis() as i32).unwrap();
    s.set_sndtimeo(STEP.as_millis() as i32).unwrap();
    s.set_linger(2000).unwrap(); // a dropped socket flushes what it was given, as ours does
    s
}

/// Binds `s` to a free port on loopback; returns `host:port`.
fn bind(s: &zmq::Socket) -> String {
    s.bind("tcp://127.0.0.1:0").unwrap();
    let endpoint = s.get_last_endpoint().unwrap().unwrap();
    endpoint.trim_start_matches("tcp://").to_owned()
}

/// Runs the libzmq side on a blocking thread.
fn libzmq<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    spawn_blocking(f)
}

fn frames(v: &[&[u8]]) -> Vec<Vec<u8>> {
    v.iter().map(|f| f.to_vec()).collect()
}

fn dealer(identity: &'static [u8]) -> SocketConfig<'static> {
    SocketConfig::new(Config::new(SocketType::Dealer).with_identity(identity))
}

#[tokio::test]
async fn dealer_connects_to_libzmq_router_multipart_with_empty_frames() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let peer = libzmq(move || {
        let msg = router.recv_multipart(0).unwrap();
        assert_eq!(msg, frames(&[b"tokio-dealer", b"", b"a", b"", b""]));
        router.send_multipart([&b"tokio-dealer"[..], b"", b"x", b""], 0).unwrap();
    });
    let ours = within(ZSocket::connect_with(addr, dealer(b"tokio-dealer"))).await.unwrap();
    within(ours.send([&b""[..], b"a", b"", b""])).await.unwrap();
    assert_eq!(within(ours.recv()).await.unwrap(), frames(&[b"", b"x", b""]));
    peer.await.unwrap();
}

#[tokio::test]
async fn libzmq_router_connects_to_our_dealer() {
    let ours = ZSocket::bind("127.0.0.1:0", SocketType::Dealer).await.unwrap();
    let addr = ours.local_addr().unwrap();
    let ctx = zmq::Context::new();
    let peer = libzmq(move || {
        let router = zsock(&ctx, zmq::ROUTER);
        router.connect(&format!("tcp://{addr}")).unwrap();
        let mut msg = router.recv_multipart(0).unwrap();
        assert_eq!(msg[1..], frames(&[b"hello", b"", b"from tokio"]));
        msg.push(b"and back".to_vec());
        router.send_multipart(msg, 0).unwrap();
    });
    // The send waits for the connection and its handshake: no sleep needed.
    within(ours.send([&b"hello"[..], b"", b"from tokio"])).await.unwrap();
    let back = within(ours.recv()).await.unwrap();
    assert_eq!(back, frames(&[b"hello", b"", b"from tokio", b"and back"]));
    peer.await.unwrap();
}

#[tokio::test]
async fn libzmq_dealers_connect_to_our_router_and_get_their_own_replies() {
    let ours = ZSocket::bind("127.0.0.1:0", SocketType::Router).await.unwrap();
    let addr = ours.local_addr().unwrap();
    let ctx = zmq::Context::new();
    let peers: Vec<_> = [&b"first"[..], b"second"]
        .into_iter()
        .map(|id| {
            let ctx = ctx.clone();
            libzmq(move || {
                let dealer = zsock(&ctx, zmq::DEALER);
                dealer.set_identity(id).unwrap();
                dealer.connect(&format!("tcp://{addr}")).unwrap();
                dealer.send_multipart([&b""[..], b"request", b""], 0).unwrap();
                let reply = dealer.recv_multipart(0).unwrap();
                assert_eq!(reply, [b"".to_vec(), [b"reply to ", id].concat()]);
            })
        })
        .collect();
    for _ in 0..2 {
        let msg = within(ours.recv()).await.unwrap();
        assert!(msg[0] == b"first" || msg[0] == b"second", "{msg:?}");
        assert_eq!(msg[1..], frames(&[b"", b"request", b""]));
        let reply = [b"reply to ".to_vec(), msg[0].clone()].concat();
        within(ours.send([msg[0].clone(), vec![], reply])).await.unwrap();
    }
    for p in peers {
        p.await.unwrap();
    }
}

#[tokio::test]
async fn an_ordered_stream_of_1000_messages_both_ways() {
    const N: u32 = 1000;
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let echo = libzmq(move || {
        for i in 0..N {
            let msg = router.recv_multipart(0).unwrap();
            assert_eq!(msg[1], i.to_be_bytes(), "libzmq received out of order");
            router.send_multipart(msg, 0).unwrap();
        }
    });
    let ours = within(ZSocket::connect(addr, SocketType::Dealer)).await.unwrap();
    // Sends and receives run at once, from two tasks sharing the socket.
    let sender = ours.clone();
    let sending = tokio::spawn(async move {
        for i in 0..N {
            within(sender.send([i.to_be_bytes().to_vec(), vec![b'x'; (i % 300) as usize]]))
                .await
                .unwrap();
        }
    });
    for i in 0..N {
        let msg = within(ours.recv()).await.unwrap();
        assert_eq!(msg, [i.to_be_bytes().to_vec(), vec![b'x'; (i % 300) as usize]]);
    }
    sending.await.unwrap();
    echo.await.unwrap();
}

#[tokio::test]
async fn messages_larger_than_the_session_buffers_stream_through() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let expected = big.clone();
    let echo = libzmq(move || {
        let msg = router.recv_multipart(0).unwrap();
        assert_eq!(msg[1], expected);
        router.send_multipart(msg, 0).unwrap();
    });
    let ours = within(ZSocket::connect(addr, SocketType::Dealer)).await.unwrap();
    within(ours.send([big.clone()])).await.unwrap();
    assert_eq!(within(ours.recv()).await.unwrap(), [big]);
    echo.await.unwrap();
}

#[tokio::test]
async fn heartbeats_keep_an_idle_connection_open() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    // libzmq PINGs every 100 ms and drops us if nothing comes back within 300 ms.
    router.set_heartbeat_ivl(100).unwrap();
    router.set_heartbeat_timeout(300).unwrap();
    router.monitor("inproc://monitor", zmq::SocketEvent::DISCONNECTED as i32).unwrap();
    let monitor = zsock(&ctx, zmq::PAIR);
    monitor.connect("inproc://monitor").unwrap();
    let addr = bind(&router);
    let peer = libzmq(move || {
        let first = router.recv_multipart(0).unwrap();
        let second = router.recv_multipart(0).unwrap();
        assert_eq!(first, frames(&[b"idle", b"before"]));
        assert_eq!(second, frames(&[b"idle", b"after a second"]));
        let disconnects = std::iter::from_fn(|| monitor.recv_multipart(zmq::DONTWAIT).ok());
        assert_eq!(disconnects.count(), 0, "libzmq dropped the connection");
    });
    // No heartbeats of ours: nothing wakes our task but libzmq's PINGs.
    let ours = within(ZSocket::connect_with(addr, dealer(b"idle"))).await.unwrap();
    within(ours.send([&b"before"[..]])).await.unwrap();
    // The application is idle: only the socket's task can answer libzmq's PINGs. Had it not,
    // libzmq would have closed the connection, and this socket (which does not reconnect)
    // would fail the send below with Error::Closed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    within(ours.send([&b"after a second"[..]])).await.unwrap();
    peer.await.unwrap();
}

#[tokio::test]
async fn req_talks_to_libzmq_rep() {
    let ctx = zmq::Context::new();
    let rep = zsock(&ctx, zmq::REP);
    let addr = bind(&rep);
    let server = libzmq(move || {
        for i in 0..3 {
            let request = rep.recv_multipart(0).unwrap();
            assert_eq!(request, [format!("request {i}").into_bytes()]);
            rep.send_multipart([format!("reply {i}").into_bytes(), vec![]], 0).unwrap();
        }
        rep // alive until the test is done: its going away is another test
    });
    let req = within(ZSocket::connect(addr, SocketType::Req)).await.unwrap();
    // RFC 28's REQ state machine, from the core: no reply before a request...
    assert!(matches!(req.recv().await, Err(Error::Recv(SocketRecvError::NotAllowed))));
    for i in 0..3 {
        within(req.send([format!("request {i}")])).await.unwrap();
        // ...and no second request before the reply.
        let twice = req.send([&b"again"[..]]).await;
        assert!(matches!(twice, Err(Error::Send(SocketSendError::NotAllowed))), "{twice:?}");
        let reply = within(req.recv()).await.unwrap();
        assert_eq!(reply, [format!("reply {i}").into_bytes(), vec![]]);
    }
    drop(server.await.unwrap());
}

#[tokio::test]
async fn libzmq_req_talks_to_our_rep() {
    let rep = ZSocket::bind("127.0.0.1:0", SocketType::Rep).await.unwrap();
    let addr = rep.local_addr().unwrap();
    let ctx = zmq::Context::new();
    let client = libzmq(move || {
        let req = zsock(&ctx, zmq::REQ);
        req.connect(&format!("tcp://{addr}")).unwrap();
        for i in 0..3 {
            req.send(format!("request {i}").as_bytes(), 0).unwrap();
            assert_eq!(req.recv_multipart(0).unwrap(), [format!("reply {i}").into_bytes()]);
        }
    });
    for i in 0..3 {
        let request = within(rep.recv()).await.unwrap();
        assert_eq!(request, [format!("request {i}").into_bytes()]);
        within(rep.send([format!("reply {i}")])).await.unwrap();
    }
    client.await.unwrap();
}

#[tokio::test]
async fn a_peer_that_goes_away_ends_a_connected_socket_with_the_reason() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let peer = libzmq(move || {
        router.recv_multipart(0).unwrap();
        drop(router); // nothing left to send: the connection closes at once
    });
    let ours = within(ZSocket::connect(addr, SocketType::Dealer)).await.unwrap();
    within(ours.send([&b"bye"[..]])).await.unwrap();
    peer.await.unwrap();
    let err = within(ours.recv()).await.unwrap_err();
    assert!(matches!(err, Error::Closed(Some(CloseReason::Eof))), "{err}");
    // Later calls say the same.
    let err = within(ours.send([&b"more"[..]])).await.unwrap_err();
    assert!(matches!(err, Error::Closed(Some(CloseReason::Eof))), "{err}");
}

#[tokio::test]
async fn what_a_peer_sent_before_it_left_is_still_received() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let ours = within(ZSocket::connect_with(addr, dealer(b"reader"))).await.unwrap();
    within(ours.send([&b"ready"[..]])).await.unwrap();
    // libzmq sends more than our socket's receive queue holds, closes, and (terminating its
    // context: linger) waits until every byte and the end of stream are on their way. Our
    // socket, whose application does not receive yet, stalls with the rest in the kernel: when
    // it reads again, the last messages and the end of stream arrive together.
    // (Frames no larger than the session's receive buffer: zmtp-core closes the connection when
    // a larger, chunked frame arrives while its receive queue is partly full.)
    let body = |i: u8| vec![i; 15 * 1024];
    libzmq(move || {
        router.recv_multipart(0).unwrap();
        for i in 0..20u8 {
            router.send_multipart([b"reader".to_vec(), body(i)], 0).unwrap();
        }
        drop(router);
        drop(ctx);
    })
    .await
    .unwrap();
    for i in 0..20u8 {
        assert_eq!(within(ours.recv()).await.unwrap(), [body(i)]);
    }
    let err = within(ours.recv()).await.unwrap_err();
    assert!(matches!(err, Error::Closed(Some(CloseReason::Eof))), "{err}");
    let err = within(ours.send([&b"anyone?"[..]])).await.unwrap_err();
    assert!(matches!(err, Error::Closed(Some(CloseReason::Eof))), "{err}");
}

#[tokio::test]
async fn an_incompatible_peer_is_refused_with_a_typed_reason() {
    let ctx = zmq::Context::new();
    let publisher = zsock(&ctx, zmq::PUB);
    let addr = bind(&publisher);
    let ours = within(ZSocket::connect(addr, SocketType::Dealer)).await.unwrap();
    let err = within(ours.recv()).await.unwrap_err();
    assert!(
        matches!(err, Error::Closed(Some(CloseReason::Protocol(_)))),
        "a DEALER must refuse a PUB (RFC 37, socket type compatibility): {err}"
    );
    drop(publisher);
}

#[tokio::test]
async fn a_dropped_socket_still_delivers_what_it_was_given() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let ours = within(ZSocket::connect(addr, SocketType::Dealer)).await.unwrap();
    for i in 0..100u32 {
        within(ours.send([i.to_be_bytes()])).await.unwrap();
    }
    drop(ours);
    let got = libzmq(move || {
        (0..100).map(|_| router.recv_multipart(0).unwrap()[1].clone()).collect::<Vec<_>>()
    });
    let got = got.await.unwrap();
    assert_eq!(got, (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_recv_cancelled_while_waiting_loses_no_message() {
    let ctx = zmq::Context::new();
    let router = zsock(&ctx, zmq::ROUTER);
    let addr = bind(&router);
    let ours = within(ZSocket::connect_with(addr, dealer(b"patient"))).await.unwrap();
    within(ours.send([&b"hello"[..]])).await.unwrap();
    let router = libzmq(move || {
        router.recv_multipart(0).unwrap();
        router
    })
    .await
    .unwrap();
    // Nothing has been sent to us yet: this recv gives up (its future is dropped).
    assert!(timeout(Duration::from_millis(50), ours.recv()).await.is_err());
    libzmq(move || router.send_multipart([&b"patient"[..], b"late"], 0).unwrap()).await.unwrap();
    assert_eq!(within(ours.recv()).await.unwrap(), frames(&[b"late"]));
}

#[tokio::test]
async fn our_timers_run_while_the_application_waits() {
    // A peer that accepts the connection and never says a word: the core's handshake timeout,
    // armed by the task from poll_timeout, ends the socket while the application sits in recv.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut cfg = dealer(b"waiting");
    cfg.session.handshake_timeout = Some(Duration::from_millis(200));
    let ours = within(ZSocket::connect_with(addr, cfg)).await.unwrap();
    let (_held, _) = silent.accept().unwrap();
    let err = within(ours.recv()).await.unwrap_err();
    assert!(matches!(err, Error::Closed(Some(CloseReason::HandshakeTimeout))), "{err}");
}
