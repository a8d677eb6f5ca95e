//! Application threads running the I/O loop in the I/O thread's place (after the I/O
//! thread hands a message to a waiting `recv`, it steps aside for the spin time and the
//! application's next `send`/`recv` run the loop themselves). These tests make that happen
//! with request-reply exchanges whose `recv` waits, then check that nothing the I/O thread
//! does on its own stops: heartbeats while the application sleeps, other threads' sockets,
//! commands, timeouts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zmtp_std::{Context, Error, SocketType};

const STEP: Duration = Duration::from_secs(5);

/// An echo on `rep` (another context: its own I/O thread) for `n` requests; the socket
/// comes back with the join (so the connection stays up until the test drops it).
fn echo(rep: zmtp_std::Socket, n: usize) -> thread::JoinHandle<zmtp_std::Socket> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        for _ in 0..n {
            rep.recv_into(&mut buf).unwrap();
            rep.send(&buf).unwrap();
        }
        rep
    })
}

/// Round trips whose `recv` waits for the reply: the pattern after which the application
/// thread runs the loop.
fn exchange(req: &zmtp_std::Socket, n: usize) {
    let mut buf = Vec::new();
    for i in 0..n {
        let body = (i as u32).to_be_bytes();
        req.send(body).unwrap();
        assert_eq!(req.recv_into_timeout(&mut buf, STEP).unwrap(), 4);
        assert_eq!(buf, body);
    }
}

#[test]
fn libzmq_heartbeats_keep_the_connection_after_the_application_ran_the_loop() {
    // libzmq pings every 100 ms and drops us after 300 ms of silence. Our application runs
    // the loop for 300 exchanges, then does not call into the socket for 1.5 s: the I/O
    // thread must take the loop back and answer the pings.
    let ctx = Context::new().unwrap();
    let zctx = zmq::Context::new();
    let router = zctx.socket(zmq::ROUTER).unwrap();
    router.set_linger(0).unwrap();
    router.set_heartbeat_ivl(100).unwrap();
    router.set_heartbeat_timeout(300).unwrap();
    router.set_heartbeat_ttl(300).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let ep = router.get_last_endpoint().unwrap().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    // libzmq's sockets are not `Sync`: the echo thread owns the router; it also counts
    // reconnects (a new routing id) to tell a dropped connection.
    let echo = thread::spawn(move || {
        let mut ids = std::collections::HashSet::new();
        router.set_rcvtimeo(50).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            if let Ok(m) = router.recv_multipart(0) {
                ids.insert(m[0].clone());
                router.send_multipart(m, 0).unwrap();
            }
        }
        ids.len()
    });
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.set_linger(Some(Duration::ZERO));
    dealer.connect(&ep).unwrap();
    exchange(&dealer, 300);
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(dealer.connected_peers(), 1, "still connected");
    exchange(&dealer, 10);
    stop.store(true, Ordering::SeqCst);
    assert_eq!(echo.join().unwrap(), 1, "one connection all along");
}

#[test]
fn our_heartbeats_go_on_after_the_application_ran_the_loop() {
    // Our side pings every 50 ms with a 200 ms timeout, and asks the peer (another
    // context) to drop us after 300 ms without a ping. Then our application sleeps: pings
    // and pongs must keep going, or one side would drop the connection.
    let ctx = Context::new().unwrap();
    let peer_ctx = Context::new().unwrap();
    let rep = peer_ctx.socket(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let events_rep = rep.monitor().unwrap();
    let server = echo(rep, 310);
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_heartbeat_interval(Some(Duration::from_millis(50)))
        .unwrap();
    req.set_heartbeat_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    req.set_heartbeat_ttl(Some(Duration::from_millis(300)))
        .unwrap();
    req.set_linger(Some(Duration::ZERO));
    let events = req.monitor().unwrap();
    req.connect(&ep).unwrap();
    exchange(&req, 300);
    thread::sleep(Duration::from_millis(1000));
    exchange(&req, 10);
    let _rep = server.join().unwrap();
    let ours: Vec<_> = events.try_iter().collect();
    assert!(
        !ours
            .iter()
            .any(|e| matches!(e, zmtp_std::MonitorEvent::Disconnected { .. })),
        "no disconnect: {ours:?}"
    );
    let theirs: Vec<_> = events_rep.try_iter().collect();
    assert_eq!(
        theirs
            .iter()
            .filter(|e| matches!(e, zmtp_std::MonitorEvent::Accepted { .. }))
            .count(),
        1,
        "one connection: {theirs:?}"
    );
}

#[test]
fn a_thread_waiting_on_a_quiet_socket_does_not_hold_up_the_others() {
    let ctx = Context::new().unwrap();
    let peer_ctx = Context::new().unwrap();
    // Thread A: a PULL nobody sends to yet; it waits in `recv` (and may run the loop).
    let pull = ctx.socket(SocketType::Pull).unwrap();
    let pull_ep = pull.bind("tcp://127.0.0.1:0").unwrap();
    let a = thread::spawn(move || {
        let mut buf = Vec::new();
        pull.recv_into(&mut buf).unwrap();
        buf
    });
    // Main thread: exchanges on another socket of the same context, in both of the
    // patterns that hand the loop to the application.
    let rep = peer_ctx.socket(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let server = echo(rep, 400);
    let req = ctx.socket(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    exchange(&req, 200);
    // Commands while a thread may run the loop: a new socket binds, connects and talks.
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&pull_ep).unwrap();
    exchange(&req, 200);
    push.send("for a").unwrap();
    assert_eq!(a.join().unwrap(), b"for a");
    server.join().unwrap();
}

#[test]
fn timeouts_hold_while_the_application_runs_the_loop() {
    let ctx = Context::new().unwrap();
    let peer_ctx = Context::new().unwrap();
    let router = peer_ctx.socket(SocketType::Router).unwrap();
    let ep = router.bind("tcp://127.0.0.1:0").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let server = thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if let Ok(m) = router.recv_multipart_timeout(Duration::from_millis(20)) {
                router.send_multipart(m).unwrap();
            }
        }
    });
    let dealer = ctx.socket(SocketType::Dealer).unwrap();
    dealer.connect(&ep).unwrap();
    exchange(&dealer, 200);
    for wait in [Duration::from_millis(30), Duration::from_millis(120)] {
        let t = Instant::now();
        let mut buf = Vec::new();
        assert!(matches!(
            dealer.recv_into_timeout(&mut buf, wait),
            Err(Error::Timeout)
        ));
        let took = t.elapsed();
        assert!(took >= wait && took < STEP, "{took:?} for {wait:?}");
        assert!(matches!(dealer.try_recv(), Err(Error::WouldBlock)));
        exchange(&dealer, 50);
    }
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
}

#[test]
fn closing_and_dropping_the_context_after_the_application_ran_the_loop() {
    let peer_ctx = Context::new().unwrap();
    let rep = peer_ctx.socket(SocketType::Rep).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:0").unwrap();
    let server = echo(rep, 101);
    let ctx = Context::new().unwrap();
    let req = ctx.socket(SocketType::Req).unwrap();
    req.connect(&ep).unwrap();
    exchange(&req, 100);
    // The last request is delivered by the lingering close, then the context stops.
    req.send("last").unwrap();
    let t = Instant::now();
    drop(req);
    drop(ctx);
    assert!(t.elapsed() < STEP, "the context stopped");
    server.join().unwrap();
}
