//! Socket monitors: the events of listeners and connections, with typed close reasons, and
//! a reader that never holds the I/O thread back.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use zmtp_core::wire::GreetingError;
use zmtp_core::ProtocolError;
use zmtp_std::{CloseReason, Context, MonitorEvent, SocketType};

mod common;
use common::{temp_path, zsocket, STEP};

/// The next event for which `f` says `Some`, skipping others; fails after `STEP`.
fn expect<T>(
    events: &Receiver<MonitorEvent>,
    what: &str,
    f: impl Fn(&MonitorEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) => {
                if let Some(t) = f(&ev) {
                    return t;
                }
            }
            Err(e) => panic!("no {what}: {e:?}"),
        }
    }
}

#[test]
fn a_bound_socket_reports_its_listener_and_connections_in_order() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    let events = rep.monitor().unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let req = zsocket(&zctx, zmq::REQ);
    req.connect(&ep).unwrap();
    req.send("hi", 0).unwrap();
    assert_eq!(rep.recv_timeout(STEP).unwrap(), b"hi");

    let next = || events.recv_timeout(STEP).unwrap();
    assert_eq!(
        next(),
        MonitorEvent::Listening {
            endpoint: ep.clone()
        }
    );
    match next() {
        MonitorEvent::Accepted { endpoint, peer } => {
            assert_eq!(endpoint, ep);
            assert!(peer.starts_with("127.0.0.1:"), "{peer}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        next(),
        MonitorEvent::HandshakeSucceeded {
            endpoint: ep.clone(),
            peer_type: Some(SocketType::Req)
        }
    );
    // libzmq's REQ goes: its end of stream is the reason.
    drop(req);
    assert_eq!(
        next(),
        MonitorEvent::Disconnected {
            endpoint: ep.clone(),
            reason: CloseReason::Eof
        }
    );
    rep.unbind(&ep).unwrap();
    assert_eq!(
        next(),
        MonitorEvent::Closed {
            endpoint: ep.clone()
        }
    );
    // A failed bind is reported as well as returned.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_ep = format!("tcp://{}", taken.local_addr().unwrap());
    assert!(rep.bind(&taken_ep).is_err());
    assert!(matches!(next(), MonitorEvent::BindFailed { endpoint, .. } if endpoint == taken_ep));

    // Closing the socket ends the channel.
    drop(rep);
    let deadline = Instant::now() + STEP;
    loop {
        match events.recv_timeout(STEP) {
            Ok(_) => assert!(Instant::now() < deadline, "the channel never ends"),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the channel never ends"),
        }
    }
}

#[test]
fn a_connecting_socket_reports_failures_backoff_and_success() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let path = temp_path("later");
    let ep = format!("ipc://{}", path.display());
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer
        .set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    dealer
        .set_reconnect_interval_max(Some(Duration::from_millis(40)))
        .unwrap();
    let events = dealer.monitor().unwrap();
    dealer.connect(&ep).unwrap();

    // Nobody there yet: failures, each followed by a longer wait up to the cap.
    let mut afters = Vec::new();
    while afters.len() < 4 {
        match events.recv_timeout(STEP).unwrap() {
            MonitorEvent::ConnectFailed { endpoint, .. } => assert_eq!(endpoint, ep),
            MonitorEvent::ReconnectScheduled { endpoint, after } => {
                assert_eq!(endpoint, ep);
                afters.push(after.as_millis());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(afters, [10, 20, 40, 40]);

    // libzmq binds: connected, handshake done with the peer's type.
    let router = zsocket(&zctx, zmq::ROUTER);
    router.bind(&ep).unwrap();
    expect(&events, "Connected", |ev| {
        matches!(ev, MonitorEvent::Connected { endpoint } if *endpoint == ep).then_some(())
    });
    let ev = events.recv_timeout(STEP).unwrap();
    assert_eq!(
        ev,
        MonitorEvent::HandshakeSucceeded {
            endpoint: ep.clone(),
            peer_type: Some(SocketType::Router)
        }
    );
    // It goes away: disconnected, and a reconnect at the base interval (the backoff was
    // reset by the successful handshake).
    drop(router);
    assert_eq!(
        expect(&events, "Disconnected", |ev| match ev {
            MonitorEvent::Disconnected { reason, .. } => Some(*reason),
            _ => None,
        }),
        CloseReason::Eof
    );
    assert_eq!(
        expect(&events, "ReconnectScheduled", |ev| match ev {
            MonitorEvent::ReconnectScheduled { after, .. } => Some(*after),
            _ => None,
        }),
        Duration::from_millis(10)
    );
}

#[test]
fn handshake_failures_carry_a_typed_reason() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    rep.set_handshake_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let events = rep.monitor().unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let addr = ep.trim_start_matches("tcp://");
    let failure = |what| {
        expect(&events, what, |ev| match ev {
            MonitorEvent::HandshakeFailed { reason, .. } => Some(*reason),
            MonitorEvent::Disconnected { .. } | MonitorEvent::HandshakeSucceeded { .. } => {
                panic!("{what}: {ev:?}")
            }
            _ => None,
        })
    };

    // Not ZMTP at all.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(
        failure("a bad greeting"),
        CloseReason::Protocol(ProtocolError::Greeting(GreetingError::BadSignature))
    );

    // A PUB cannot talk to a REP.
    let publisher = zsocket(&zctx, zmq::PUB);
    publisher.connect(&ep).unwrap();
    assert_eq!(
        failure("an incompatible type"),
        CloseReason::Protocol(ProtocolError::IncompatibleSocketType(SocketType::Pub))
    );
    drop(publisher);

    // Silence.
    let _silent = TcpStream::connect(addr).unwrap();
    assert_eq!(failure("silence"), CloseReason::HandshakeTimeout);
    drop(raw);
}

#[test]
fn an_unread_monitor_never_holds_the_socket_back() {
    let ctx = Context::new().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    // Eight events per millisecond: connects to paths where nobody listens.
    push.set_reconnect_interval(Some(Duration::from_millis(1)))
        .unwrap();
    let events = push.monitor().unwrap();
    let nowhere: Vec<String> = (0..4)
        .map(|k| format!("ipc://{}", temp_path(&format!("nowhere-{k}")).display()))
        .collect();
    for ep in &nowhere {
        push.connect(ep).unwrap();
    }
    push.connect(&pull.bind("tcp://127.0.0.1:0").unwrap())
        .unwrap();
    // Far more events than the channel holds pile up while messages keep flowing.
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed() < Duration::from_millis(1500) {
        push.send(i.to_be_bytes()).unwrap();
        // Round robin skips the endpoint that never connects.
        assert_eq!(pull.recv_timeout(STEP).unwrap(), i.to_be_bytes());
        i += 1;
        thread::sleep(Duration::from_millis(5));
    }
    // Stop the flow of events; the channel is full, and what could not fit was counted.
    for ep in &nowhere {
        push.disconnect(ep).unwrap();
    }
    assert_eq!(events.try_iter().count(), zmtp_std::MONITOR_CAPACITY);
    // The count comes with the first event after the reader made room.
    push.connect(&nowhere[0]).unwrap();
    match events.recv_timeout(STEP).unwrap() {
        MonitorEvent::Lagged { missed } => assert!(missed > 0),
        other => panic!("{other:?}"),
    }
}

/// A ROUTER that sees `HandshakeSucceeded` can address the peer at once: the peer is counted
/// and its routing id known before the event is sent (`router_mandatory` would fail the send
/// otherwise).
#[test]
fn a_peer_is_ready_when_its_handshake_event_arrives() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    for round in 0..20 {
        let router = ctx.socket(SocketType::Router).unwrap();
        router.set_router_mandatory(true).unwrap();
        router.set_linger(Some(Duration::ZERO));
        let events = router.monitor().unwrap();
        let ep = router.bind("tcp://127.0.0.1:0").unwrap();
        let dealer = zsocket(&zctx, zmq::DEALER);
        let id = format!("peer-{round}");
        dealer.set_identity(id.as_bytes()).unwrap();
        dealer.connect(&ep).unwrap();
        expect(&events, "HandshakeSucceeded", |e| {
            matches!(e, MonitorEvent::HandshakeSucceeded { .. }).then_some(())
        });
        assert!(
            router.connected_peers() >= 1,
            "round {round}: not counted yet"
        );
        router
            .send_multipart([id.as_bytes(), b"now"])
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(dealer.recv_bytes(0).unwrap(), b"now");
    }
}
