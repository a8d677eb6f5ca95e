//! Endpoints beyond `bind` and `connect`: `unbind` and `disconnect` against libzmq, and the
//! `ipc://` transport (interop with libzmq both ways, stale and live socket files).

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use zmtp_std::{Context, Error, SocketType};

mod common;
use common::{closed_by_peer, temp_path, wait_until, zsocket, STEP};

fn ipc(path: &Path) -> String {
    format!("ipc://{}", path.display())
}

// ================================================================================ unbind

#[test]
fn unbind_closes_the_listener_and_its_connections_then_rebinds() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let other = pull.bind("tcp://127.0.0.1:0").unwrap();
    let push = zsocket(&zctx, zmq::PUSH);
    push.set_reconnect_ivl(10).unwrap();
    push.connect(&ep).unwrap();
    push.send("before", 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"before");
    // A raw connection to the same listener (accepted, or still in its backlog: closed
    // either way).
    let mut raw = TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();

    // The wildcard it was bound with names no listener (as in libzmq); unknown endpoints
    // neither.
    assert!(matches!(
        pull.unbind("tcp://127.0.0.1:0"),
        Err(Error::EndpointNotFound(_))
    ));
    assert!(matches!(
        pull.unbind("tcp://127.0.0.1:1"),
        Err(Error::EndpointNotFound(_))
    ));
    pull.unbind(&ep).unwrap();
    assert!(matches!(pull.unbind(&ep), Err(Error::EndpointNotFound(_))));
    // Its accepted connections are closed, the port refuses connections...
    assert!(
        closed_by_peer(&mut raw),
        "the accepted connection stays open"
    );
    assert!(TcpStream::connect(ep.trim_start_matches("tcp://")).is_err());
    assert_eq!(pull.connected_peers(), 0);
    // ...and the other endpoint still works.
    let push2 = zsocket(&zctx, zmq::PUSH);
    push2.connect(&other).unwrap();
    push2.send("other", 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"other");

    // The same endpoint can be bound again, and libzmq's PUSH reconnects to it.
    assert_eq!(pull.bind(&ep).unwrap(), ep);
    push.send("after", 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"after");
}

#[test]
fn unbind_or_disconnect_before_start_is_not_found() {
    let ctx = Context::new().unwrap();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    assert!(matches!(
        s.unbind("tcp://127.0.0.1:5555"),
        Err(Error::EndpointNotFound(_))
    ));
    assert!(matches!(
        s.disconnect("tcp://127.0.0.1:5555"),
        Err(Error::EndpointNotFound(_))
    ));
    assert!(matches!(
        s.unbind("not an endpoint"),
        Err(Error::EndpointNotFound(_))
    ));
}

// ================================================================================ disconnect

#[test]
fn disconnect_drops_one_peer_and_the_rest_keep_flowing() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let a = zsocket(&zctx, zmq::PULL);
    let b = zsocket(&zctx, zmq::PULL);
    a.bind("tcp://127.0.0.1:*").unwrap();
    b.bind("tcp://127.0.0.1:*").unwrap();
    let (ep_a, ep_b) = (
        a.get_last_endpoint().unwrap().unwrap(),
        b.get_last_endpoint().unwrap().unwrap(),
    );
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    push.connect(&ep_a).unwrap();
    push.connect(&ep_b).unwrap();
    wait_until("both connections", || push.connected_peers() == 2);

    push.disconnect(&ep_a).unwrap();
    assert!(matches!(
        push.disconnect(&ep_a),
        Err(Error::EndpointNotFound(_))
    ));
    assert_eq!(push.connected_peers(), 1);
    for i in 0..20u32 {
        push.send(i.to_be_bytes()).unwrap();
    }
    for i in 0..20u32 {
        assert_eq!(b.recv_bytes(0).unwrap(), i.to_be_bytes());
    }
    a.set_rcvtimeo(100).unwrap();
    assert!(
        a.recv_bytes(0).is_err(),
        "the disconnected peer got a message"
    );
}

#[test]
fn disconnect_stops_reconnecting() {
    let ctx = Context::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer
        .set_reconnect_interval(Some(Duration::from_millis(5)))
        .unwrap();
    dealer.connect(&ep).unwrap();
    let (mut first, _) = listener.accept().unwrap();
    // A connect still in its retry loop (nobody listens) can be disconnected as well.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_ep = format!("tcp://{}", dead.local_addr().unwrap());
    drop(dead);
    dealer.connect(&dead_ep).unwrap();
    dealer.disconnect(&dead_ep).unwrap();

    dealer.disconnect(&ep).unwrap();
    assert!(closed_by_peer(&mut first), "the connection stays open");
    // With a 5 ms reconnect interval, a forgotten connect would be back many times over.
    listener.set_nonblocking(true).unwrap();
    thread::sleep(Duration::from_millis(200));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("reconnected after disconnect: {other:?}"),
    }
}

#[test]
fn we_disconnect_from_libzmq_router_and_connect_again() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let router = zsocket(&zctx, zmq::ROUTER);
    // Our new connection may reach libzmq before it has noticed the old one is gone; without
    // handover it would refuse the newcomer's routing id (and the message with it).
    router.set_router_handover(true).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let ep = router.get_last_endpoint().unwrap().unwrap();
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.set_routing_id(b"d1").unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send("one").unwrap();
    assert_eq!(
        router.recv_multipart(0).unwrap(),
        [b"d1".to_vec(), b"one".to_vec()]
    );
    dealer.disconnect(&ep).unwrap();
    dealer.connect(&ep).unwrap();
    dealer.send("two").unwrap();
    assert_eq!(
        router.recv_multipart(0).unwrap(),
        [b"d1".to_vec(), b"two".to_vec()]
    );
}

// ================================================================================ ipc

#[test]
fn ipc_req_rep_with_libzmq_both_ways() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    // We bind, libzmq connects.
    let path = temp_path("rep");
    let rep = ctx.socket(SocketType::Rep).unwrap();
    assert_eq!(rep.bind(&ipc(&path)).unwrap(), ipc(&path));
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
    let req = zsocket(&zctx, zmq::REQ);
    req.connect(&ipc(&path)).unwrap();
    for i in 0..50u32 {
        let big = vec![i as u8; 70_000 * (i as usize % 3)];
        req.send_multipart([&i.to_be_bytes()[..], b"", &big], 0)
            .unwrap();
        let got = rep.recv_multipart_timeout(STEP).unwrap();
        assert_eq!(got, [i.to_be_bytes().to_vec(), vec![], big]);
        rep.send(b"ok").unwrap();
        assert_eq!(req.recv_bytes(0).unwrap(), b"ok");
    }
    drop(req);

    // libzmq binds, we connect.
    let zpath = temp_path("zrep");
    let zrep = zsocket(&zctx, zmq::REP);
    zrep.bind(&ipc(&zpath)).unwrap();
    let ours = ctx.socket(SocketType::Req).unwrap();
    ours.connect(&ipc(&zpath)).unwrap();
    for i in 0..50u32 {
        ours.send(i.to_be_bytes()).unwrap();
        assert_eq!(zrep.recv_bytes(0).unwrap(), i.to_be_bytes());
        zrep.send(&b"re"[..], 0).unwrap();
        assert_eq!(ours.recv_timeout(STEP).unwrap(), b"re");
    }

    // Unbind removes our socket file.
    rep.unbind(&ipc(&path)).unwrap();
    assert!(!path.exists());
}

#[test]
fn ipc_connect_before_bind_waits_and_a_closed_socket_removes_its_file() {
    let ctx = Context::new().unwrap();
    let path = temp_path("late");
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_reconnect_interval(Some(Duration::from_millis(10)))
        .unwrap();
    push.connect(&ipc(&path)).unwrap();
    push.send("early").unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind(&ipc(&path)).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"early");
    drop(pull);
    wait_until("the socket file's removal", || !path.exists());

    // ipc://* makes up a path.
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let ep = pull.bind("ipc://*").unwrap();
    assert!(ep.starts_with("ipc://") && ep != "ipc://*", "{ep}");
    let made = PathBuf::from(ep.trim_start_matches("ipc://"));
    assert!(made.exists());
    push.connect(&ep).unwrap();
    push.send("late").unwrap();
    // Round robin between the path with no listener and this one: it gets there.
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"late");
    pull.unbind(&ep).unwrap();
    assert!(!made.exists());
}

#[test]
fn ipc_stale_socket_file_is_replaced_but_live_ones_and_other_files_are_not() {
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();

    // Stale: a socket file whose listener is gone (a crashed process).
    let stale = temp_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind(&ipc(&stale)).unwrap();
    let push = zsocket(&zctx, zmq::PUSH);
    push.connect(&ipc(&stale)).unwrap();
    push.send("via a replaced file", 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"via a replaced file");

    // Live: another socket accepts on it (here our own PULL): refused, left alone.
    let other = ctx.socket(SocketType::Pull).unwrap();
    match other.bind(&ipc(&stale)) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}"),
        r => panic!("binding a live socket file: {r:?}"),
    }
    push.send("still there", 0).unwrap();
    assert_eq!(pull.recv_timeout(STEP).unwrap(), b"still there");

    // Live, libzmq's.
    let zlive = temp_path("zlive");
    let zpull = zsocket(&zctx, zmq::PULL);
    zpull.bind(&ipc(&zlive)).unwrap();
    assert!(matches!(other.bind(&ipc(&zlive)), Err(Error::Io(_))));
    let zpush = zsocket(&zctx, zmq::PUSH);
    zpush.connect(&ipc(&zlive)).unwrap();
    zpush.send("libzmq's still works", 0).unwrap();
    assert_eq!(zpull.recv_bytes(0).unwrap(), b"libzmq's still works");

    // Not a socket: an error, and the file is untouched.
    let plain = temp_path("plain");
    std::fs::write(&plain, b"precious").unwrap();
    assert!(matches!(
        other.bind(&ipc(&plain)),
        Err(Error::InvalidEndpoint { .. })
    ));
    assert_eq!(std::fs::read(&plain).unwrap(), b"precious");
    std::fs::remove_file(&plain).unwrap();
    let dir = temp_path("dir");
    std::fs::create_dir(&dir).unwrap();
    assert!(matches!(
        other.bind(&ipc(&dir)),
        Err(Error::InvalidEndpoint { .. })
    ));
    assert!(dir.is_dir());
    std::fs::remove_dir(&dir).unwrap();
}
