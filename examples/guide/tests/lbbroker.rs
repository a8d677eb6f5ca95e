//! The load-balancing broker (Guide chapter 3): ours end to end, our broker with libzmq
//! workers, and a libzmq broker with our clients and workers.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use zmtp_guide::lbbroker::{self, Config};
use zmtp_guide::Stop;
use zmtp_std::{Context, SocketType};

mod common;
use common::router_pair;

/// `clients` REQ clients named `client-N` on threads, each making `requests` requests
/// through the broker at `ep`; each returns its replies.
fn start_clients(
    ctx: &Context,
    ep: &str,
    clients: usize,
    requests: usize,
) -> Vec<std::thread::JoinHandle<Vec<Vec<u8>>>> {
    (0..clients)
        .map(|n| {
            let (ctx, ep) = (ctx.clone(), ep.to_owned());
            std::thread::spawn(move || {
                let s = ctx.socket(SocketType::Req).unwrap();
                s.set_routing_id(format!("client-{n}").as_bytes()).unwrap();
                s.connect(&ep).unwrap();
                lbbroker::client(&s, requests).unwrap()
            })
        })
        .collect()
}

fn check(report: &lbbroker::Report, cfg: Config) {
    let total = cfg.clients * cfg.requests_per_client;
    assert_eq!(report.served.len(), total);
    assert_eq!(report.client_replies.len(), cfg.clients);
    for (client, replies) in &report.client_replies {
        assert_eq!(
            replies,
            &vec![b"OK".to_vec(); cfg.requests_per_client],
            "{client}"
        );
    }
    assert_eq!(report.per_worker.values().sum::<usize>(), total);
    // The broker's log agrees with what each worker counted and each client got.
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_client: BTreeMap<String, usize> = BTreeMap::new();
    for s in &report.served {
        assert_eq!(s.reply, "OK");
        *by_worker.entry(s.worker.clone()).or_default() += 1;
        *by_client.entry(s.client.clone()).or_default() += 1;
    }
    for (w, n) in &report.per_worker {
        assert_eq!(by_worker.get(w).copied().unwrap_or(0), *n, "{w}");
    }
    assert!(by_client.values().all(|&n| n == cfg.requests_per_client));
}

#[test]
fn guide_shape_ten_clients_three_workers() {
    let cfg = Config::default();
    let report = lbbroker::run(cfg).unwrap();
    check(&report, cfg);
}

/// Workers that take time: load balancing spreads the requests over every worker.
#[test]
fn busy_workers_all_get_work() {
    let cfg = Config {
        clients: 6,
        workers: 3,
        requests_per_client: 5,
        work: Duration::from_millis(2),
    };
    let report = lbbroker::run(cfg).unwrap();
    check(&report, cfg);
    assert_eq!(report.per_worker.len(), 3);
    assert!(report.per_worker.values().all(|&n| n > 0), "{report:?}");
}

/// A libzmq REQ worker with the Guide's loop, stopping when `stop` is raised.
fn zmq_worker(name: &str, endpoint: &str, stop: &Stop) -> usize {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::REQ).unwrap();
    s.set_identity(name.as_bytes()).unwrap();
    s.set_rcvtimeo(20).unwrap();
    s.connect(endpoint).unwrap();
    s.send("READY", 0).unwrap();
    let mut answered = 0;
    while !stop.is_stopped() {
        let Ok(msg) = s.recv_multipart(0) else {
            continue;
        };
        s.send_multipart([&msg[0][..], b"", b"OK"], 0).unwrap();
        answered += 1;
    }
    answered
}

#[test]
fn our_broker_libzmq_workers() {
    const CLIENTS: usize = 5;
    const REQUESTS: usize = 4;
    let ctx = Context::new().unwrap();
    let (frontend, backend, front_ep, back_ep) = router_pair(&ctx);
    let stop = Stop::new();
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let (ep, stop) = (back_ep.clone(), stop.clone());
            std::thread::spawn(move || {
                let name = format!("zmq-worker-{n}");
                (name.clone(), zmq_worker(&name, &ep, &stop))
            })
        })
        .collect();
    let clients = start_clients(&ctx, &front_ep, CLIENTS, REQUESTS);
    let served = lbbroker::broker(&frontend, &backend, CLIENTS * REQUESTS).unwrap();
    stop.stop();
    for c in clients {
        assert_eq!(c.join().unwrap(), vec![b"OK".to_vec(); REQUESTS]);
    }
    let mut total = 0;
    for w in workers {
        let (name, n) = w.join().unwrap();
        assert_eq!(served.iter().filter(|s| s.worker == name).count(), n);
        total += n;
    }
    assert_eq!(total, CLIENTS * REQUESTS);
}

/// The Guide's lbbroker written with libzmq, serving `requests` requests.
fn zmq_broker(frontend: zmq::Socket, backend: zmq::Socket, requests: usize) -> Vec<String> {
    let mut idle: VecDeque<Vec<u8>> = VecDeque::new();
    let mut served_by = Vec::new();
    while served_by.len() < requests {
        let mut items = [
            backend.as_poll_item(zmq::POLLIN),
            frontend.as_poll_item(if idle.is_empty() {
                zmq::PollEvents::empty()
            } else {
                zmq::POLLIN
            }),
        ];
        zmq::poll(&mut items, -1).unwrap();
        let (back, front) = (items[0].is_readable(), items[1].is_readable());
        if back {
            let msg = backend.recv_multipart(0).unwrap();
            idle.push_back(msg[0].clone());
            if msg[2] != b"READY" {
                frontend
                    .send_multipart([&msg[2][..], b"", &msg[4][..]], 0)
                    .unwrap();
                served_by.push(String::from_utf8(msg[0].clone()).unwrap());
            }
        }
        if front {
            let msg = frontend.recv_multipart(0).unwrap();
            let worker = idle.pop_front().unwrap();
            backend
                .send_multipart([&worker[..], b"", &msg[0][..], b"", &msg[2][..]], 0)
                .unwrap();
        }
    }
    served_by
}

#[test]
fn libzmq_broker_our_clients_and_workers() {
    const CLIENTS: usize = 5;
    const REQUESTS: usize = 4;
    let zctx = zmq::Context::new();
    let frontend = zctx.socket(zmq::ROUTER).unwrap();
    let backend = zctx.socket(zmq::ROUTER).unwrap();
    frontend.bind("tcp://127.0.0.1:*").unwrap();
    backend.bind("tcp://127.0.0.1:*").unwrap();
    let front_ep = frontend.get_last_endpoint().unwrap().unwrap();
    let back_ep = backend.get_last_endpoint().unwrap().unwrap();
    let broker = std::thread::spawn(move || zmq_broker(frontend, backend, CLIENTS * REQUESTS));

    let ctx = Context::new().unwrap();
    let stop = Stop::new();
    let workers: Vec<_> = (0..3)
        .map(|n| {
            let (ctx, ep, stop) = (ctx.clone(), back_ep.clone(), stop.clone());
            std::thread::spawn(move || {
                let name = format!("worker-{n}");
                let s = ctx.socket(SocketType::Req).unwrap();
                s.set_routing_id(name.as_bytes()).unwrap();
                s.connect(&ep).unwrap();
                (name, lbbroker::worker(&s, Duration::ZERO, &stop).unwrap())
            })
        })
        .collect();
    let clients = start_clients(&ctx, &front_ep, CLIENTS, REQUESTS);
    for c in clients {
        assert_eq!(c.join().unwrap(), vec![b"OK".to_vec(); REQUESTS]);
    }
    let served_by = broker.join().unwrap();
    stop.stop();
    let mut total = 0;
    for w in workers {
        let (name, n) = w.join().unwrap();
        assert_eq!(served_by.iter().filter(|s| **s == name).count(), n);
        total += n;
    }
    assert_eq!(total, CLIENTS * REQUESTS);
}
