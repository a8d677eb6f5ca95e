//! Chapter 3 of the Guide: the asynchronous client/server (`asyncsrv`), with our sockets
//! throughout, with libzmq clients and workers around our server, and with our clients
//! against a server made of libzmq sockets and `zmq_proxy`.

use std::collections::BTreeMap;
use std::time::Duration;

use zmtp_guide::asyncsrv::{self, reply_count, request_text, ClientLog, Config, Server};
use zmtp_guide::{wait_for, Stop};
use zmtp_std::{Context, SocketType};

const SEED: u64 = 7;
const CLIENTS: usize = 3;
const REQUESTS: usize = 8;

/// Under SEED, the requests of the tests get every count of replies from 0 to 4 (so the
/// tests see requests answered with nothing and with several replies).
#[test]
fn seed_gives_every_reply_count() {
    let mut counts = BTreeMap::new();
    for c in 0..CLIENTS {
        for n in 1..=REQUESTS {
            let req = request_text(&format!("client-{c}"), n);
            *counts.entry(reply_count(SEED, req.as_bytes())).or_insert(0) += 1;
        }
    }
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (0..=asyncsrv::MAX_REPLIES).collect::<Vec<_>>(),
        "{counts:?}"
    );
}

/// Every client got exactly the replies owed for its own requests, one frame each.
fn check_clients(logs: &[ClientLog]) -> usize {
    assert_eq!(logs.len(), CLIENTS);
    for log in logs {
        assert_eq!(log.requests.len(), REQUESTS);
        log.check(SEED).unwrap();
        assert_eq!(log.replies.len(), log.expected);
    }
    logs.iter().map(|l| l.replies.len()).sum()
}

/// A worker saw each request under the routing id of the client that sent it.
fn check_envelopes(handled: &[asyncsrv::Handled]) {
    for h in handled {
        let req = String::from_utf8(h.request.clone()).unwrap();
        let sender = req.rsplit_once(" from ").unwrap().1;
        assert_eq!(h.client, sender.as_bytes(), "{req}");
        assert_eq!(h.replies, reply_count(SEED, &h.request));
    }
}

#[test]
fn asyncsrv_ours() {
    let report = asyncsrv::run(Config {
        clients: CLIENTS,
        workers: 5,
        requests_per_client: REQUESTS,
        interval: Duration::from_millis(2),
        max_pause: Duration::from_millis(1),
        seed: SEED,
    })
    .unwrap();
    let replies = check_clients(&report.clients);
    let handled: Vec<_> = report.server.workers.values().flatten().cloned().collect();
    check_envelopes(&handled);
    // Every request handled once, and every reply a worker sent reached its client.
    assert_eq!(handled.len(), CLIENTS * REQUESTS);
    assert_eq!(handled.iter().map(|h| h.replies).sum::<usize>(), replies);
    // The backend dealt the requests round robin over the five workers, all connected
    // before the first request.
    assert!(
        report.server.workers.values().all(|h| !h.is_empty()),
        "{:?}",
        report.server.workers
    );
    let p = report.server.proxy;
    // Frames, as libzmq 4.3.5 counts them: [client id, body] each way.
    assert_eq!(p.frontend_in_msgs, 2 * (CLIENTS * REQUESTS) as u64);
    assert_eq!(p.backend_out_msgs, 2 * (CLIENTS * REQUESTS) as u64);
    assert_eq!(p.backend_in_msgs, 2 * replies as u64);
    assert_eq!(p.frontend_out_msgs, 2 * replies as u64);
}

/// A libzmq DEALER client (the Guide's `client_task`): sends its requests, then takes
/// replies until it has all it is owed.
fn libzmq_client(zctx: &zmq::Context, name: &str, endpoint: &str) -> ClientLog {
    let s = zctx.socket(zmq::DEALER).unwrap();
    s.set_identity(name.as_bytes()).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s.connect(endpoint).unwrap();
    let mut log = ClientLog {
        name: name.to_owned(),
        ..ClientLog::default()
    };
    for n in 1..=REQUESTS {
        let req = request_text(name, n).into_bytes();
        s.send(&req, 0).unwrap();
        log.expected += reply_count(SEED, &req);
        log.requests.push(req);
    }
    while log.replies.len() < log.expected {
        log.replies.push(s.recv_multipart(0).unwrap());
    }
    log
}

/// A libzmq DEALER worker (the Guide's `server_worker`), until `stop`.
fn libzmq_worker(s: zmq::Socket, stop: &Stop) -> Vec<asyncsrv::Handled> {
    s.set_rcvtimeo(20).unwrap();
    let mut handled = Vec::new();
    while !stop.is_stopped() {
        let Ok(msg) = s.recv_multipart(0) else {
            continue;
        };
        let [client, request] = &msg[..] else {
            panic!("a message of {} frames", msg.len());
        };
        let replies = reply_count(SEED, request);
        for _ in 0..replies {
            s.send_multipart([client, request], 0).unwrap();
        }
        handled.push(asyncsrv::Handled {
            client: client.clone(),
            request: request.clone(),
            replies,
        });
    }
    handled
}

/// libzmq clients, and libzmq workers next to ours, around our ROUTER, DEALER and proxy.
#[test]
fn asyncsrv_libzmq_clients_and_workers_our_server() {
    let ctx = Context::new().unwrap();
    let server = Server::start(&ctx, 2, SEED, Duration::ZERO).unwrap();
    let zctx = zmq::Context::new();
    let stop = Stop::new();
    let zworkers: Vec<_> = (0..2)
        .map(|n| {
            let s = zctx.socket(zmq::DEALER).unwrap();
            s.set_identity(format!("zworker-{n}").as_bytes()).unwrap();
            s.connect(server.backend_endpoint()).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || libzmq_worker(s, &stop))
        })
        .collect();
    assert!(wait_for(Duration::from_secs(10), || server
        .workers_connected()
        == 4));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (zctx, ep) = (zctx.clone(), server.endpoint().to_owned());
            std::thread::spawn(move || libzmq_client(&zctx, &format!("client-{n}"), &ep))
        })
        .collect();
    let logs: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let replies = check_clients(&logs);
    stop.stop();
    let theirs: Vec<_> = zworkers.into_iter().map(|w| w.join().unwrap()).collect();
    let log = server.shutdown().unwrap();
    let ours: Vec<_> = log.workers.values().cloned().collect();
    // Four workers, all connected before the first request: each got some.
    assert!(theirs.iter().chain(&ours).all(|h| !h.is_empty()));
    let handled: Vec<_> = theirs.into_iter().chain(ours).flatten().collect();
    check_envelopes(&handled);
    assert_eq!(handled.len(), CLIENTS * REQUESTS);
    assert_eq!(handled.iter().map(|h| h.replies).sum::<usize>(), replies);
    assert_eq!(log.proxy.frontend_out_msgs, 2 * replies as u64);
}

/// Our clients against the Guide's server in libzmq: ROUTER frontend, DEALER backend on
/// inproc, DEALER workers, `zmq_proxy_steerable` between them.
#[test]
fn asyncsrv_our_clients_libzmq_server() {
    let zctx = zmq::Context::new();
    let mut frontend = zctx.socket(zmq::ROUTER).unwrap();
    frontend.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = frontend.get_last_endpoint().unwrap().unwrap();
    let mut backend = zctx.socket(zmq::DEALER).unwrap();
    backend.bind("inproc://backend").unwrap();
    let mut control = zctx.socket(zmq::PAIR).unwrap();
    control.bind("inproc://control").unwrap();
    let stop = Stop::new();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            // inproc connects at once: the backend knows every worker before the proxy
            // starts.
            let s = zctx.socket(zmq::DEALER).unwrap();
            s.connect("inproc://backend").unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || libzmq_worker(s, &stop))
        })
        .collect();
    let proxy =
        std::thread::spawn(move || zmq::proxy_steerable(&mut frontend, &mut backend, &mut control));

    let ctx = Context::new().unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (ctx, ep) = (ctx.clone(), endpoint.clone());
            std::thread::spawn(move || {
                let name = format!("client-{n}");
                let s = ctx.socket(SocketType::Dealer).unwrap();
                s.set_routing_id(name.as_bytes()).unwrap();
                s.connect(&ep).unwrap();
                asyncsrv::client(
                    &s,
                    &name,
                    REQUESTS,
                    Duration::from_millis(2),
                    SEED,
                    Duration::from_secs(10),
                )
                .unwrap()
            })
        })
        .collect();
    let logs: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let replies = check_clients(&logs);

    let steer = zctx.socket(zmq::PAIR).unwrap();
    steer.connect("inproc://control").unwrap();
    steer.send("TERMINATE", 0).unwrap();
    proxy.join().unwrap().unwrap();
    stop.stop();
    let handled: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    check_envelopes(&handled);
    assert_eq!(handled.len(), CLIENTS * REQUESTS);
    assert_eq!(handled.iter().map(|h| h.replies).sum::<usize>(), replies);
}
