//! Chapter 2 of the Guide: the request-reply broker (`rrbroker`) and the built-in proxy
//! (`msgqueue`), with our workers and with libzmq ones; the pipeline with a kill signal
//! ("Handling Errors and ETERM": `taskwork2`, `tasksink2`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use zmtp_guide::proxy::{proxy_steerable, ProxyStats};
use zmtp_guide::{pipeline, rrbroker, wait_for, Stop, ANY_LOCAL};
use zmtp_std::{Context, Socket, SocketType};

mod common;

const CLIENTS: usize = 4;
const REQUESTS: usize = 5;
const WORKERS: usize = 3;

/// Clients and workers around a broker whose frontend and backend endpoints are given;
/// returns the replies by client and the answers per worker.
fn clients_and_workers(
    ctx: &Context,
    front_ep: &str,
    back_ep: &str,
    libzmq_workers: bool,
    until_done: impl FnOnce(),
) -> (Vec<Vec<Vec<u8>>>, BTreeMap<String, usize>) {
    let stop = Stop::new();
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            let (ctx, ep, stop) = (ctx.clone(), back_ep.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let name = format!("w{n}");
                if libzmq_workers {
                    let zctx = zmq::Context::new();
                    let s = zctx.socket(zmq::REP).unwrap();
                    s.set_rcvtimeo(20).unwrap();
                    s.connect(&ep).unwrap();
                    let mut answered = 0;
                    while !stop.is_stopped() {
                        if s.recv_bytes(0).is_ok() {
                            s.send(format!("World from {name}").as_bytes(), 0).unwrap();
                            answered += 1;
                        }
                    }
                    return (name, answered);
                }
                let s = ctx.socket(SocketType::Rep).unwrap();
                s.connect(&ep).unwrap();
                let n = rrbroker::rrworker(&s, &name, Duration::from_millis(1), &stop).unwrap();
                (name, n)
            })
        })
        .collect();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (ctx, ep) = (ctx.clone(), front_ep.to_owned());
            std::thread::spawn(move || {
                let s = ctx.socket(SocketType::Req).unwrap();
                s.connect(&ep).unwrap();
                rrbroker::rrclient(&s, REQUESTS).unwrap()
            })
        })
        .collect();
    let replies: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    until_done();
    stop.stop();
    let per_worker = workers.into_iter().map(|w| w.join().unwrap()).collect();
    (replies, per_worker)
}

fn check(replies: &[Vec<Vec<u8>>], per_worker: &BTreeMap<String, usize>) {
    assert_eq!(replies.len(), CLIENTS);
    for r in replies.iter().flatten() {
        let r = String::from_utf8(r.clone()).unwrap();
        let worker = r.strip_prefix("World from ").unwrap();
        assert!(per_worker.contains_key(worker), "{r}");
    }
    assert!(replies.iter().all(|r| r.len() == REQUESTS));
    assert_eq!(per_worker.values().sum::<usize>(), CLIENTS * REQUESTS);
}

fn broker_sockets(ctx: &Context) -> (Socket, Socket, String, String) {
    common::bound_pair(ctx, SocketType::Router, SocketType::Dealer)
}

fn rrbroker_with(libzmq_workers: bool) {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = broker_sockets(&ctx);
    let stop = Stop::new();
    let broker = {
        let stop = stop.clone();
        std::thread::spawn(move || rrbroker::rrbroker(&frontend, &backend, &stop).unwrap())
    };
    let (replies, per_worker) = clients_and_workers(&ctx, &f, &b, libzmq_workers, || stop.stop());
    check(&replies, &per_worker);
    assert_eq!(broker.join().unwrap(), (CLIENTS * REQUESTS) as u64);
}

#[test]
fn rrbroker_our_workers() {
    rrbroker_with(false);
}

#[test]
fn rrbroker_libzmq_workers() {
    rrbroker_with(true);
}

/// The proxy with a capture socket and a REP control socket: every request and reply is
/// captured, STATISTICS counts them, TERMINATE ends it.
#[test]
fn msgqueue_proxy_capture_and_control() {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = broker_sockets(&ctx);
    let capture_in = ctx.socket(SocketType::Pull).unwrap();
    let capture = ctx.socket(SocketType::Push).unwrap();
    capture
        .connect(&capture_in.bind(ANY_LOCAL).unwrap())
        .unwrap();
    let control = ctx.socket(SocketType::Rep).unwrap();
    let control_ep = control.bind(ANY_LOCAL).unwrap();
    let proxy = std::thread::spawn(move || {
        proxy_steerable(&frontend, &backend, Some(&capture), Some(&control)).unwrap()
    });
    let steer = ctx.socket(SocketType::Req).unwrap();
    steer.connect(&control_ep).unwrap();
    let (replies, per_worker) = clients_and_workers(&ctx, &f, &b, false, || {});
    check(&replies, &per_worker);

    steer.send("STATISTICS").unwrap();
    let stats = steer.recv_multipart().unwrap();
    assert_eq!(stats.len(), 8);
    let n: Vec<u64> = stats
        .iter()
        .map(|f| u64::from_ne_bytes(f.as_slice().try_into().unwrap()))
        .collect();
    let total = (CLIENTS * REQUESTS) as u64;
    // Requests in from the frontend, out to the backend; replies the other way. As libzmq
    // 4.3.5, the counters count frames: [client id, "", body] each way.
    let frames = 3 * total;
    assert_eq!((n[0], n[2], n[4], n[6]), (frames, frames, frames, frames));
    // A REP control socket gets an empty answer to the other commands (libzmq 4.3.5).
    steer.send("PAUSE").unwrap();
    assert_eq!(steer.recv().unwrap(), b"");
    steer.send("TERMINATE").unwrap();
    assert_eq!(steer.recv().unwrap(), b"");
    let end: ProxyStats = proxy.join().unwrap();
    assert_eq!(end.frontend_in_msgs, frames);
    assert_eq!(end.frontend_out_msgs, frames);
    // Each request (3 frames: client id, "", "Hello") and reply was captured.
    let mut captured = 0;
    while captured < 2 * total {
        capture_in
            .recv_multipart_timeout(Duration::from_secs(5))
            .unwrap();
        captured += 1;
    }
    // and nothing else.
    assert!(capture_in
        .recv_multipart_timeout(Duration::from_millis(50))
        .is_err());
}

/// Our proxy between libzmq clients and workers.
#[test]
fn msgqueue_proxy_libzmq_peers() {
    let ctx = Context::new().unwrap();
    let (frontend, backend, f, b) = broker_sockets(&ctx);
    let control = ctx.socket(SocketType::Pair).unwrap();
    let control_ep = control.bind(ANY_LOCAL).unwrap();
    let proxy =
        std::thread::spawn(move || rrbroker::msgqueue(&frontend, &backend, &control).unwrap());
    let zctx = zmq::Context::new();
    let (replies, per_worker) = clients_and_workers(&ctx, &f, &b, true, || {});
    check(&replies, &per_worker);
    let steer = zctx.socket(zmq::PAIR).unwrap();
    steer.connect(&control_ep).unwrap();
    steer.send("TERMINATE", 0).unwrap();
    let stats = proxy.join().unwrap();
    // Frames: [client id, "", reply] for each reply.
    assert_eq!(stats.backend_in_msgs, 3 * (CLIENTS * REQUESTS) as u64);
}

/// A pipeline worker in libzmq with the kill switch (`taskwork2`): PULL tasks, SUB for the
/// kill signal, `zmq_poll` on both; returns the tasks it did.
fn libzmq_taskwork2(zctx: &zmq::Context, vent: &str, sink: &str, control: &str) -> usize {
    let receiver = zctx.socket(zmq::PULL).unwrap();
    receiver.connect(vent).unwrap();
    let sender = zctx.socket(zmq::PUSH).unwrap();
    sender.connect(sink).unwrap();
    let controller = zctx.socket(zmq::SUB).unwrap();
    controller.set_subscribe(b"").unwrap();
    controller.connect(control).unwrap();
    let mut done = 0;
    loop {
        let mut items = [
            receiver.as_poll_item(zmq::POLLIN),
            controller.as_poll_item(zmq::POLLIN),
        ];
        zmq::poll(&mut items, -1).unwrap();
        if items[0].is_readable() {
            let task = String::from_utf8(receiver.recv_bytes(0).unwrap()).unwrap();
            let id = task.split_once(' ').unwrap().0;
            sender.send(format!("libzmq {id}").as_bytes(), 0).unwrap();
            done += 1;
        }
        if items[1].is_readable() {
            assert_eq!(controller.recv_bytes(0).unwrap(), pipeline::KILL);
            return done;
        }
    }
}

/// The pipeline with the kill signal (`taskwork2`, `tasksink2`): every task is done once,
/// then the sink's KILL ends every worker, ours and (if `libzmq_worker`) a libzmq one.
fn pipeline_kill(libzmq_worker: bool) {
    const TASKS: usize = 60;
    const OURS: usize = 3;
    let workers = OURS + usize::from(libzmq_worker);
    let ctx = Context::new().unwrap();
    // Room for the peers the test has (a bound socket allocates its peer slots up front;
    // the default 64 costs time for nothing here).
    let bound = |ty, peers| {
        let s = ctx.socket(ty).unwrap();
        s.set_max_peers(peers).unwrap();
        let ep = s.bind(ANY_LOCAL).unwrap();
        (s, ep)
    };
    let (sink, sink_ep) = bound(SocketType::Pull, workers + 1);
    let (controller, control_ep) = bound(SocketType::Pub, workers);
    let (sender, vent_ep) = bound(SocketType::Push, workers);
    let mut threads: Vec<_> = (1..=OURS)
        .map(|n| {
            let ctx = ctx.clone();
            let (vent, sink, control) = (vent_ep.clone(), sink_ep.clone(), control_ep.clone());
            std::thread::spawn(move || {
                let receiver = ctx.socket(SocketType::Pull).unwrap();
                receiver.connect(&vent).unwrap();
                let sender = ctx.socket(SocketType::Push).unwrap();
                sender.connect(&sink).unwrap();
                let controller = ctx.socket(SocketType::Sub).unwrap();
                controller.subscribe("").unwrap();
                controller.connect(&control).unwrap();
                let name = format!("worker-{n}");
                let unit = Duration::from_micros(20);
                pipeline::taskwork2(&name, &receiver, &controller, &sender, unit).unwrap()
            })
        })
        .collect();
    if libzmq_worker {
        let (vent, sink, control) = (vent_ep.clone(), sink_ep.clone(), control_ep.clone());
        threads.push(std::thread::spawn(move || {
            libzmq_taskwork2(&zmq::Context::new(), &vent, &sink, &control)
        }));
    }
    let to_sink = ctx.socket(SocketType::Push).unwrap();
    to_sink.connect(&sink_ep).unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        sender.connected_peers() == workers
            && controller.connected_peers() == workers
            && to_sink.connected_peers() == 1
    }));
    let collector = std::thread::spawn(move || {
        let batch = pipeline::tasksink2(&sink, &controller, TASKS, Duration::from_secs(10));
        (batch, controller.connected_peers())
    });
    pipeline::taskvent(&sender, &to_sink, TASKS, 5).unwrap();
    let (batch, subscribers_left) = collector.join().unwrap();
    let batch = batch.unwrap();
    assert_eq!(subscribers_left, 0);
    let ids: BTreeSet<usize> = batch.results.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, (0..TASKS).collect::<BTreeSet<_>>());
    // The KILL ended every worker: each thread finishes on its own, no flag raised.
    assert!(
        wait_for(Duration::from_secs(10), || threads
            .iter()
            .all(|t| t.is_finished())),
        "a worker is still running after KILL"
    );
    let done: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(done.iter().sum::<usize>(), TASKS);
    // PUSH dealt round robin over the workers connected before the first task.
    assert!(done.iter().all(|&n| n == TASKS / workers), "{done:?}");
}

#[test]
fn pipeline_kill_ends_every_worker() {
    pipeline_kill(false);
}

#[test]
fn pipeline_kill_ends_a_libzmq_worker_too() {
    pipeline_kill(true);
}
