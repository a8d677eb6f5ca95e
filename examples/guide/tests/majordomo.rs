//! Majordomo (MDP 0.2, Guide chapter 4): echo service, partial replies, service
//! discovery, a worker that dies holding a request, a broker restart, heartbeat expiry,
//! and libzmq on either side of the broker. Heartbeats are 50 ms so the tests are quick.

use std::time::Duration;

use zmtp_guide::lazy_pirate::bind_retry;
use zmtp_guide::mdp::{
    self, worker_cmd, Broker, BrokerStats, Client, ClientConfig, Heartbeat, MsgSocket, Worker,
    WorkerConfig, MDPW,
};
use zmtp_guide::{wait_for, Msg, Stop, ANY_LOCAL};
use zmtp_std::{Context, Result, SocketType};

const HB: Heartbeat = Heartbeat {
    interval: Duration::from_millis(50),
    liveness: 3,
};
const WCFG: WorkerConfig = WorkerConfig {
    heartbeat: HB,
    reconnect: Duration::from_millis(50),
};
const CCFG: ClientConfig = ClientConfig {
    timeout: Duration::from_millis(500),
    retries: 4,
};

fn frames(parts: &[&str]) -> Msg {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// A broker on its own thread, stopped and joined by the returned closure.
fn start_broker(ctx: &Context) -> (String, Stop, std::thread::JoinHandle<BrokerStats>) {
    let (mut broker, endpoint) = mdp::bind_broker(ctx, ANY_LOCAL, HB).unwrap();
    let stop = Stop::new();
    let s = stop.clone();
    let t = std::thread::spawn(move || broker.run(&s).unwrap());
    (endpoint, stop, t)
}

fn start_echo(ctx: &Context, endpoint: &str, stop: &Stop) -> std::thread::JoinHandle<usize> {
    let (ctx, endpoint, stop) = (ctx.clone(), endpoint.to_owned(), stop.clone());
    std::thread::spawn(move || {
        let mut w = Worker::new(&ctx, &endpoint, "echo", WCFG).unwrap();
        mdp::echo_worker(&mut w, &stop).unwrap()
    })
}

/// Asks the broker until `service` has workers (8/MMI "200").
fn wait_service(client: &mut Client, service: &str) -> bool {
    wait_for(Duration::from_secs(5), || {
        client
            .send("mmi.service", frames(&[service]))
            .unwrap()
            .is_some_and(|r| r.last == frames(&["200"]))
    })
}

#[test]
fn echo_service_and_discovery() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let workers_stop = Stop::new();
    let workers: Vec<_> = (0..2)
        .map(|_| start_echo(&ctx, &endpoint, &workers_stop))
        .collect();
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    assert!(wait_service(&mut client, "echo"));
    for n in 0..20 {
        let body = frames(&["Hello world", &n.to_string()]);
        let reply = client.send("echo", body.clone()).unwrap().unwrap();
        assert!(reply.partials.is_empty());
        assert_eq!(reply.last, body);
    }
    let nope = client.send("mmi.service", frames(&["nope"])).unwrap();
    assert_eq!(nope.unwrap().last, frames(&["404"]));
    let unknown = client.send("mmi.what", frames(&["x"])).unwrap();
    assert_eq!(unknown.unwrap().last, frames(&["501"]));
    workers_stop.stop();
    let answered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(answered, 20);
    broker_stop.stop();
    let stats = broker.join().unwrap();
    assert_eq!(stats.dispatched, 20);
    assert_eq!(stats.finals, 20);
    assert_eq!(stats.registered_workers, 2);
    assert_eq!(client.reconnects, 0);
}

/// MDP 0.2's PARTIAL replies reach the client in order, before the FINAL.
#[test]
fn partial_replies() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let stop = Stop::new();
    let worker = {
        let (ctx, endpoint, stop) = (ctx.clone(), endpoint.clone(), stop.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut w = Worker::new(&ctx, &endpoint, "count", WCFG)?;
            while let Some(req) = w.recv(&stop)? {
                let n: usize = String::from_utf8_lossy(&req[0]).parse().unwrap();
                for i in 0..n {
                    w.partial(frames(&[&i.to_string()]))?;
                }
                w.reply(frames(&["done"]))?;
            }
            Ok(())
        })
    };
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    let reply = client.send("count", frames(&["3"])).unwrap().unwrap();
    assert_eq!(
        reply.partials,
        [frames(&["0"]), frames(&["1"]), frames(&["2"])]
    );
    assert_eq!(reply.last, frames(&["done"]));
    stop.stop();
    worker.join().unwrap().unwrap();
    broker_stop.stop();
    assert_eq!(broker.join().unwrap().partials, 3);
}

/// A worker dies holding a request; the client retries and a new worker serves it.
#[test]
fn worker_dies_mid_request() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let mut doomed = Worker::new(&ctx, &endpoint, "echo", WCFG).unwrap();
    let client = {
        let (ctx, endpoint) = (ctx.clone(), endpoint.clone());
        std::thread::spawn(move || {
            let mut c = Client::new(&ctx, &endpoint, CCFG).unwrap();
            let r = c.send("echo", frames(&["survive"])).unwrap();
            (r, c.reconnects)
        })
    };
    let never = Stop::new();
    assert_eq!(doomed.recv(&never).unwrap().unwrap(), frames(&["survive"]));
    drop(doomed); // dies without answering
    let stop = Stop::new();
    let replacement = start_echo(&ctx, &endpoint, &stop);
    let (reply, reconnects) = client.join().unwrap();
    assert_eq!(reply.unwrap().last, frames(&["survive"]));
    assert!(reconnects >= 1);
    stop.stop();
    assert_eq!(replacement.join().unwrap(), 1);
    broker_stop.stop();
    broker.join().unwrap();
}

/// An idle worker that goes silent is forgotten after its heartbeats stop.
#[test]
fn silent_worker_expires() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    let silent = Worker::new(&ctx, &endpoint, "echo", WCFG).unwrap();
    assert!(wait_service(&mut client, "echo"));
    drop(silent); // no DISCONNECT, no more heartbeats
    assert!(wait_for(Duration::from_secs(5), || client
        .send("mmi.service", frames(&["echo"]))
        .unwrap()
        .is_some_and(|r| r.last == frames(&["404"]))));
    broker_stop.stop();
    assert_eq!(broker.join().unwrap().expired_workers, 1);
}

/// The broker restarts on the same port: the worker notices the silence, reconnects with
/// a new socket, registers again, and serves the client.
#[test]
fn broker_restart_workers_reconnect() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let stop = Stop::new();
    let worker = {
        let (ctx, endpoint, stop) = (ctx.clone(), endpoint.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut w = Worker::new(&ctx, &endpoint, "echo", WCFG).unwrap();
            let n = mdp::echo_worker(&mut w, &stop).unwrap();
            (n, w.reconnects)
        })
    };
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    assert!(wait_service(&mut client, "echo"));
    assert!(client.send("echo", frames(&["one"])).unwrap().is_some());
    broker_stop.stop();
    broker.join().unwrap(); // the broker's socket is dropped: the broker is gone

    let socket = ctx.socket(SocketType::Router).unwrap();
    bind_retry(&socket, &endpoint, Duration::from_secs(5)).unwrap();
    let mut broker2 = Broker::new(socket, HB);
    let stop2 = Stop::new();
    let broker2 = {
        let stop2 = stop2.clone();
        std::thread::spawn(move || broker2.run(&stop2).unwrap())
    };
    assert!(wait_service(&mut client, "echo"));
    let reply = client.send("echo", frames(&["two"])).unwrap().unwrap();
    assert_eq!(reply.last, frames(&["two"]));
    stop.stop();
    let (answered, reconnects) = worker.join().unwrap();
    assert_eq!(answered, 2);
    assert!(reconnects >= 1);
    stop2.stop();
    assert_eq!(broker2.join().unwrap().registered_workers, 1);
}

/// A libzmq DEALER speaking MDP/Worker 0.2 by hand, echoing, until `stop`.
fn zmq_echo_worker(endpoint: &str, stop: &Stop) -> usize {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::DEALER).unwrap();
    // A heartbeat still queued when the test ends must not hold up zmq_ctx_term (see below).
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(20).unwrap();
    s.connect(endpoint).unwrap();
    s.send_multipart([MDPW, &[worker_cmd::READY], b"echo"], 0)
        .unwrap();
    let mut answered = 0;
    let mut last_hb = std::time::Instant::now();
    while !stop.is_stopped() {
        if last_hb.elapsed() >= HB.interval {
            s.send_multipart([MDPW, &[worker_cmd::HEARTBEAT]], 0)
                .unwrap();
            last_hb = std::time::Instant::now();
        }
        let Ok(msg) = s.recv_multipart(0) else {
            continue;
        };
        if msg[1] == [worker_cmd::REQUEST] {
            let mut out = vec![MDPW.to_vec(), vec![worker_cmd::FINAL]];
            out.extend(msg[2..].iter().cloned()); // client, "", body
            s.send_multipart(out, 0).unwrap();
            answered += 1;
        }
    }
    answered
}

#[test]
fn our_broker_libzmq_worker() {
    let ctx = Context::new().unwrap();
    let (endpoint, broker_stop, broker) = start_broker(&ctx);
    let stop = Stop::new();
    let worker = {
        let (endpoint, stop) = (endpoint.clone(), stop.clone());
        std::thread::spawn(move || zmq_echo_worker(&endpoint, &stop))
    };
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    echo_ten(&mut client);
    stop.stop();
    assert_eq!(worker.join().unwrap(), 10);
    broker_stop.stop();
    broker.join().unwrap();
}

/// Ten requests to the "echo" service, once it is known, each answered with its body.
fn echo_ten(client: &mut Client) {
    assert!(wait_service(client, "echo"));
    for n in 0..10 {
        let body = frames(&["ping", &n.to_string()]);
        assert_eq!(
            client.send("echo", body.clone()).unwrap().unwrap().last,
            body
        );
    }
}

/// A libzmq ROUTER under our broker code.
struct ZmqSocket(zmq::Socket);

impl MsgSocket for ZmqSocket {
    fn send_msg(&self, msg: Msg) -> Result<()> {
        self.0
            .send_multipart(msg, 0)
            .map_err(|e| zmtp_std::Error::Io(std::io::Error::other(e)))
    }

    fn recv_msg(&self, timeout: Duration) -> Result<Option<Msg>> {
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        self.0.set_rcvtimeo(ms).unwrap();
        match self.0.recv_multipart(0) {
            Ok(m) => Ok(Some(m)),
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(e) => Err(zmtp_std::Error::Io(std::io::Error::other(e))),
        }
    }
}

#[test]
fn libzmq_broker_our_worker_and_client() {
    let zctx = zmq::Context::new();
    let router = zctx.socket(zmq::ROUTER).unwrap();
    // The broker heartbeats its peers; one may leave (our worker, stopped first) with a
    // heartbeat still queued for it. With libzmq's default infinite linger, the session of
    // that bound, never-to-return peer then waits for ever to send it and zmq_ctx_term
    // hangs (seen once under load: the session's pipe stuck in waiting_for_delimiter).
    router.set_linger(0).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = router.get_last_endpoint().unwrap().unwrap();
    let broker_stop = Stop::new();
    let broker = {
        let stop = broker_stop.clone();
        std::thread::spawn(move || Broker::new(ZmqSocket(router), HB).run(&stop).unwrap())
    };
    let ctx = Context::new().unwrap();
    let stop = Stop::new();
    let worker = start_echo(&ctx, &endpoint, &stop);
    let mut client = Client::new(&ctx, &endpoint, CCFG).unwrap();
    echo_ten(&mut client);
    stop.stop();
    assert_eq!(worker.join().unwrap(), 10);
    broker_stop.stop();
    assert_eq!(broker.join().unwrap().finals, 10);
}
