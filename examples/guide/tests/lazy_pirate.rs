//! Lazy Pirate (Guide chapter 4): the server crashes mid-run and is restarted; the client
//! times out, reconnects and carries on. Timeouts are short so the tests are quick.

use std::time::Duration;

use zmtp_guide::lazy_pirate::{self, bind_retry, ClientConfig, ServerFaults};
use zmtp_guide::ANY_LOCAL;
use zmtp_std::{Context, SocketType};

const CFG: ClientConfig = ClientConfig {
    request_timeout: Duration::from_millis(300),
    request_retries: 3,
};

#[test]
fn recovers_from_server_crash() {
    let ctx = Context::new().unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    let endpoint = server.bind(ANY_LOCAL).unwrap();
    let supervisor = {
        let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
        std::thread::spawn(move || {
            let faults = ServerFaults {
                crash_after: Some(3),
                stall: None,
            };
            let first = lazy_pirate::lpserver(&server, usize::MAX, faults).unwrap();
            drop(server); // the crash
            let server = ctx.socket(SocketType::Rep).unwrap();
            bind_retry(&server, &endpoint, Duration::from_secs(5)).unwrap();
            let second = lazy_pirate::lpserver(&server, 5, ServerFaults::default()).unwrap();
            (first, second)
        })
    };
    let report = lazy_pirate::lpclient(&ctx, &endpoint, 8, CFG, |_| {}).unwrap();
    let (first, second) = supervisor.join().unwrap();
    assert_eq!(report.confirmed, (1..=8).collect::<Vec<u64>>());
    assert_eq!(report.abandoned, None);
    assert!(report.reconnects >= 1, "{report:?}");
    assert_eq!(first, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    // Request 4 went to the crashed server and was resent to the new one.
    let s: Vec<String> = second
        .iter()
        .map(|r| String::from_utf8(r.clone()).unwrap())
        .collect();
    assert_eq!(s, ["4", "5", "6", "7", "8"]);
}

/// A server that stalls past the client's timeout: the client resends on a new socket,
/// and the late reply to the old one never confuses it.
#[test]
fn recovers_from_stalled_server() {
    let ctx = Context::new().unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    let endpoint = server.bind(ANY_LOCAL).unwrap();
    let t = std::thread::spawn(move || {
        let faults = ServerFaults {
            crash_after: None,
            stall: Some((3, CFG.request_timeout + Duration::from_millis(100))),
        };
        // Requests 1, 2, 3 (stalled, answered to a closed socket), 3 again.
        lazy_pirate::lpserver(&server, 4, faults).unwrap()
    });
    let report = lazy_pirate::lpclient(&ctx, &endpoint, 3, CFG, |_| {}).unwrap();
    let answered = t.join().unwrap();
    assert_eq!(report.confirmed, [1, 2, 3]);
    assert!(report.malformed.is_empty());
    assert_eq!(report.reconnects, 1);
    assert_eq!(answered.len(), 4);
}

/// No server ever comes back: the client gives up after its retries.
#[test]
fn abandons_when_server_stays_down() {
    let ctx = Context::new().unwrap();
    let server = ctx.socket(SocketType::Rep).unwrap();
    let endpoint = server.bind(ANY_LOCAL).unwrap();
    let t = std::thread::spawn(move || {
        let faults = ServerFaults {
            crash_after: Some(2),
            stall: None,
        };
        lazy_pirate::lpserver(&server, usize::MAX, faults).unwrap()
    });
    let report = lazy_pirate::lpclient(&ctx, &endpoint, 5, CFG, |_| {}).unwrap();
    assert_eq!(t.join().unwrap().len(), 2);
    assert_eq!(report.confirmed, [1, 2]);
    assert_eq!(report.abandoned, Some(3));
    assert_eq!(report.reconnects, CFG.request_retries - 1);
}

/// The lazy pirate client against a libzmq REP that crashes and comes back.
#[test]
fn recovers_with_libzmq_server() {
    let zctx = zmq::Context::new();
    let server = zctx.socket(zmq::REP).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let t = {
        let endpoint = endpoint.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let r = server.recv_bytes(0).unwrap();
                server.send(r, 0).unwrap();
            }
            server.recv_bytes(0).unwrap(); // and crash
            server.set_linger(0).unwrap();
            drop(server);
            let server = zctx.socket(zmq::REP).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while server.bind(&endpoint).is_err() {
                assert!(std::time::Instant::now() < deadline, "rebind");
                std::thread::sleep(Duration::from_millis(5));
            }
            for _ in 0..2 {
                let r = server.recv_bytes(0).unwrap();
                server.send(r, 0).unwrap();
            }
        })
    };
    let ctx = Context::new().unwrap();
    let report = lazy_pirate::lpclient(&ctx, &endpoint, 4, CFG, |_| {}).unwrap();
    t.join().unwrap();
    assert_eq!(report.confirmed, [1, 2, 3, 4]);
    assert!(report.reconnects >= 1);
}
