//! Chapter 3 of the Guide: identities, ROUTER-to-REQ and ROUTER-to-DEALER.

use std::time::Duration;

use zmtp_guide::{identity, rtdealer, rtreq, ANY_LOCAL};
use zmtp_std::{Context, SocketType};

#[test]
fn identities_generated_and_chosen() {
    let ctx = Context::new().unwrap();
    let sink = ctx.socket(SocketType::Router).unwrap();
    let endpoint = sink.bind(ANY_LOCAL).unwrap();
    let seen = identity::identity(&ctx, &sink, &endpoint).unwrap();
    let anon = &seen.anonymous;
    assert_eq!(anon.len(), 3);
    assert_eq!(anon[0].len(), 5, "libzmq-style generated id: {:?}", anon[0]);
    assert_eq!(anon[0][0], 0, "generated ids start with a zero byte");
    assert!(anon[1].is_empty());
    assert_eq!(anon[2], b"ROUTER uses a generated 5 byte identity");
    assert_eq!(
        seen.named,
        [
            b"PEER2".to_vec(),
            vec![],
            b"ROUTER socket uses REQ's socket identity".to_vec()
        ]
    );
    assert!(identity::dump(&seen.named).contains("[005] PEER2"));
}

/// Our REQ's routing id as a libzmq ROUTER sees it.
#[test]
fn identity_seen_by_libzmq_router() {
    let zctx = zmq::Context::new();
    let sink = zctx.socket(zmq::ROUTER).unwrap();
    sink.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = sink.get_last_endpoint().unwrap().unwrap();
    let ctx = Context::new().unwrap();
    let named = ctx.socket(SocketType::Req).unwrap();
    named.set_routing_id(b"PEER2").unwrap();
    named.connect(&endpoint).unwrap();
    named.send("hi").unwrap();
    let msg = sink.recv_multipart(0).unwrap();
    assert_eq!(msg, [b"PEER2".to_vec(), vec![], b"hi".to_vec()]);
}

fn run_workers(dealer: bool, workers: usize, tasks: usize, libzmq_workers: bool) {
    let ctx = Context::new().unwrap();
    let broker = ctx.socket(SocketType::Router).unwrap();
    let endpoint = broker.bind(ANY_LOCAL).unwrap();
    let threads: Vec<_> = (0..workers)
        .map(|n| {
            let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
            std::thread::spawn(move || {
                let name = format!("W{n}");
                if libzmq_workers {
                    return (name.clone(), zmq_worker(dealer, &name, &endpoint));
                }
                let ty = if dealer {
                    SocketType::Dealer
                } else {
                    SocketType::Req
                };
                let s = ctx.socket(ty).unwrap();
                s.set_routing_id(name.as_bytes()).unwrap();
                s.connect(&endpoint).unwrap();
                let unit = Duration::from_micros(10);
                let done = if dealer {
                    rtdealer::worker(&s, unit, n as u64 + 1)
                } else {
                    rtreq::worker(&s, unit, n as u64 + 1)
                };
                (name, done.unwrap())
            })
        })
        .collect();
    let given = rtreq::broker(&broker, tasks, workers).unwrap();
    let mut total = 0;
    for t in threads {
        let (name, done) = t.join().unwrap();
        // Each worker did exactly what the broker gave it.
        assert_eq!(given.get(name.as_bytes()).copied().unwrap_or(0), done);
        total += done;
    }
    assert_eq!(total, tasks);
    assert_eq!(given.values().sum::<usize>(), tasks);
}

/// A libzmq REQ or DEALER worker, the Guide's loop.
fn zmq_worker(dealer: bool, name: &str, endpoint: &str) -> usize {
    let zctx = zmq::Context::new();
    let s = zctx
        .socket(if dealer { zmq::DEALER } else { zmq::REQ })
        .unwrap();
    s.set_identity(name.as_bytes()).unwrap();
    s.connect(endpoint).unwrap();
    let mut total = 0;
    loop {
        if dealer {
            s.send_multipart([&b""[..], b"Hi Boss"], 0).unwrap();
        } else {
            s.send("Hi Boss", 0).unwrap();
        }
        let msg = s.recv_multipart(0).unwrap();
        if msg.last().unwrap() == b"Fired!" {
            return total;
        }
        total += 1;
    }
}

#[test]
fn router_to_req() {
    run_workers(false, 5, 50, false);
}

#[test]
fn router_to_dealer() {
    run_workers(true, 5, 50, false);
}

#[test]
fn router_to_libzmq_req_and_dealer() {
    run_workers(false, 3, 30, true);
    run_workers(true, 3, 30, true);
}
