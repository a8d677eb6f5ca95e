//! Simple and Paranoid Pirate (Guide chapter 4): a worker crashes mid-request and is
//! replaced, a queue restarts; the lazy pirate client recovers. Short timeouts.

use std::time::Duration;

use zmtp_guide::lazy_pirate::{self, bind_retry, ClientConfig};
use zmtp_guide::pirate::{self, PpConfig};
use zmtp_guide::Stop;
use zmtp_std::{Context, SocketType};

mod common;
use common::router_pair;

const CLIENT: ClientConfig = ClientConfig {
    request_timeout: Duration::from_millis(400),
    request_retries: 5,
};
const PP: PpConfig = PpConfig {
    heartbeat_interval: Duration::from_millis(50),
    liveness: 3,
    interval_init: Duration::from_millis(20),
    interval_max: Duration::from_millis(80),
};

fn seq(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

#[test]
fn simple_pirate_worker_crash() {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = router_pair(&ctx);
    let stop = Stop::new();
    let queue = {
        let stop = stop.clone();
        std::thread::spawn(move || pirate::spqueue(&frontend, &backend, &stop).unwrap())
    };
    let supervisor = {
        let (ctx, b, stop) = (ctx.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let w = ctx.socket(SocketType::Req).unwrap();
            w.connect(&b).unwrap();
            let first = pirate::spworker(&w, Some(3), &stop).unwrap();
            drop(w); // crashed holding request 4
            let w = ctx.socket(SocketType::Req).unwrap();
            w.connect(&b).unwrap();
            (first, pirate::spworker(&w, None, &stop).unwrap())
        })
    };
    let report = lazy_pirate::lpclient(&ctx, &f, 8, CLIENT, |_| {}).unwrap();
    stop.stop();
    let (first, second) = supervisor.join().unwrap();
    assert_eq!(report.confirmed, seq(8));
    assert!(report.reconnects >= 1);
    assert_eq!(first, 3);
    assert_eq!(second, 5);
    assert_eq!(queue.join().unwrap(), 8);
}

#[test]
fn paranoid_pirate_worker_crash_expires() {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = router_pair(&ctx);
    let stop = Stop::new();
    let queue = {
        let stop = stop.clone();
        std::thread::spawn(move || pirate::ppqueue(&frontend, &backend, PP, &stop).unwrap())
    };
    let supervisor = {
        let (ctx, b, stop) = (ctx.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let first = pirate::ppworker(&ctx, &b, PP, Some(2), &stop).unwrap();
            // The crashed worker's socket is gone; a new one starts.
            let second = pirate::ppworker(&ctx, &b, PP, None, &stop).unwrap();
            (first, second)
        })
    };
    let report = lazy_pirate::lpclient(&ctx, &f, 6, CLIENT, |_| {}).unwrap();
    stop.stop();
    let (first, second) = supervisor.join().unwrap();
    assert_eq!(report.confirmed, seq(6));
    assert_eq!(first.answered, 2);
    assert_eq!(second.answered, 4);
    let stats = queue.join().unwrap();
    assert_eq!(stats.replies, 6);
}

/// A worker whose queue is gone is forgotten by nobody: it notices the silence itself,
/// backs off, reconnects, and serves the restarted queue.
#[test]
fn paranoid_pirate_queue_restart_worker_backs_off() {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = router_pair(&ctx);
    let (qstop, wstop) = (Stop::new(), Stop::new());
    let queue = {
        let qstop = qstop.clone();
        std::thread::spawn(move || {
            pirate::ppqueue(&frontend, &backend, PP, &qstop).unwrap();
        })
    };
    let worker = {
        let (ctx, b, wstop) = (ctx.clone(), b.clone(), wstop.clone());
        std::thread::spawn(move || pirate::ppworker(&ctx, &b, PP, None, &wstop).unwrap())
    };
    let r = lazy_pirate::lpclient(&ctx, &f, 2, CLIENT, |_| {}).unwrap();
    assert_eq!(r.confirmed, seq(2));
    qstop.stop();
    queue.join().unwrap(); // the queue's sockets are dropped
                           // The worker needs liveness × interval of silence, then backs off 20, 40, 80, 80 ms...
                           // while the queue is down: give it time to fail at least twice.
    std::thread::sleep(PP.heartbeat_interval * (PP.liveness * 2) + Duration::from_millis(200));

    let frontend = ctx.socket(SocketType::Router).unwrap();
    let backend = ctx.socket(SocketType::Router).unwrap();
    bind_retry(&frontend, &f, Duration::from_secs(5)).unwrap();
    bind_retry(&backend, &b, Duration::from_secs(5)).unwrap();
    let qstop2 = Stop::new();
    let queue2 = {
        let qstop2 = qstop2.clone();
        std::thread::spawn(move || pirate::ppqueue(&frontend, &backend, PP, &qstop2).unwrap())
    };
    let r = lazy_pirate::lpclient(&ctx, &f, 3, CLIENT, |_| {}).unwrap();
    assert_eq!(r.confirmed, seq(3));
    wstop.stop();
    let stats = worker.join().unwrap();
    assert_eq!(stats.answered, 5);
    assert!(stats.reconnects >= 2, "{stats:?}");
    assert!(stats.longest_backoff >= PP.interval_init * 2, "{stats:?}");
    qstop2.stop();
    assert_eq!(queue2.join().unwrap().replies, 3);
}
