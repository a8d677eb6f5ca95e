//! The load-balancing message broker (Guide chapter 3, "A Load Balancing Message Broker":
//! `lbbroker`).
//!
//! Clients (REQ) connect to the broker's ROUTER frontend; workers (REQ too) connect to
//! its ROUTER backend and say "READY". The broker keeps a queue of idle workers, in the
//! order they became idle: it reads requests from the frontend only while the queue is
//! not empty, hands each to the worker idle longest, and sends the worker's reply back
//! to the client, which puts the worker at the end of the queue again. Envelopes:
//!
//! ```text
//! client → frontend:  [client id, "", request]
//! backend → worker:   [worker id, "", client id, "", request]
//! worker → backend:   [worker id, "", client id, "", reply]   or [worker id, "", "READY"]
//! frontend → client:  [client id, "", reply]
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use zmtp_std::{poll, Context, Error, PollEvents, Result, Socket, SocketType};

use crate::{Msg, Stop, ANY_LOCAL, STOP_CHECK};

/// What a worker sends when it is ready for its first request.
pub const WORKER_READY: &[u8] = b"READY";

/// One request served: which client, by which worker, and the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The client's routing id.
    pub client: String,
    /// The worker's routing id.
    pub worker: String,
    /// The worker's reply.
    pub reply: String,
}

/// The broker: load-balances `requests` requests from `frontend` (a bound ROUTER) over
/// the workers of `backend` (a bound ROUTER), then returns who served what.
pub fn broker(frontend: &Socket, backend: &Socket, requests: usize) -> Result<Vec<Served>> {
    let mut idle: VecDeque<Vec<u8>> = VecDeque::new();
    let mut served = Vec::with_capacity(requests);
    while served.len() < requests {
        // Poll the frontend only when a worker is idle.
        let front_events = if idle.is_empty() {
            PollEvents::empty()
        } else {
            PollEvents::IN
        };
        let mut items = [
            backend.as_poll_item(PollEvents::IN),
            frontend.as_poll_item(front_events),
        ];
        poll(&mut items, None)?;
        if items[0].is_readable() {
            let msg = backend.try_recv_multipart()?;
            match msg.as_slice() {
                [worker, empty, ready] if empty.is_empty() && ready == WORKER_READY => {
                    idle.push_back(worker.clone());
                }
                [worker, empty, client, empty2, reply @ ..]
                    if empty.is_empty() && empty2.is_empty() =>
                {
                    idle.push_back(worker.clone());
                    let mut out: Msg = vec![client.clone(), Vec::new()];
                    out.extend(reply.iter().cloned());
                    frontend.send_multipart(out)?;
                    served.push(Served {
                        client: crate::text(client),
                        worker: crate::text(worker),
                        reply: reply.iter().map(|f| crate::text(f)).collect(),
                    });
                }
                _ => eprintln!("lbbroker: malformed message from a worker: {msg:?}"),
            }
        }
        if items[1].is_readable() {
            let msg = frontend.try_recv_multipart()?;
            if let (Some(worker), [client, empty, request @ ..]) = (idle.pop_front(), &msg[..]) {
                if empty.is_empty() {
                    let mut out: Msg = vec![worker, Vec::new(), client.clone(), Vec::new()];
                    out.extend(request.iter().cloned());
                    backend.send_multipart(out)?;
                }
            }
        }
    }
    Ok(served)
}

/// A client: sends "HELLO" `requests` times on a REQ connected to the frontend, each after
/// the previous reply; returns the replies.
pub fn client(req: &Socket, requests: usize) -> Result<Vec<Vec<u8>>> {
    (0..requests)
        .map(|_| {
            req.send("HELLO")?;
            req.recv()
        })
        .collect()
}

/// A worker: on a REQ connected to the backend, says READY, then answers every request
/// with "OK" after `work`, until `stop`. Returns how many requests it answered.
pub fn worker(req: &Socket, work: Duration, stop: &Stop) -> Result<usize> {
    req.send(WORKER_READY)?;
    let mut answered = 0;
    while !stop.is_stopped() {
        // [client id, "", request]
        let msg = match req.recv_multipart_timeout(STOP_CHECK) {
            Ok(m) => m,
            Err(Error::Timeout) => continue,
            Err(e) => return Err(e),
        };
        let Some(client) = msg.first() else { continue };
        if !work.is_zero() {
            std::thread::sleep(work);
        }
        req.send_multipart([client.as_slice(), b"", b"OK"])?;
        answered += 1;
    }
    Ok(answered)
}

/// The demo's shape: how many of each, and how much.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Clients, named `client-0`, `client-1`, ...
    pub clients: usize,
    /// Workers, named `worker-0`, ...
    pub workers: usize,
    /// Requests each client sends (the Guide: 1).
    pub requests_per_client: usize,
    /// Time a worker takes per request (the Guide: none).
    pub work: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clients: 10,
            workers: 3,
            requests_per_client: 1,
            work: Duration::ZERO,
        }
    }
}

/// What a whole run did.
#[derive(Debug)]
pub struct Report {
    /// Every request served, in the order the broker passed the replies on.
    pub served: Vec<Served>,
    /// Replies each client received, by client name.
    pub client_replies: BTreeMap<String, Vec<Vec<u8>>>,
    /// Requests each worker answered, by worker name (as the workers counted them).
    pub per_worker: BTreeMap<String, usize>,
    /// From the first socket to the last reply.
    pub elapsed: Duration,
}

/// Sockets of clients and workers need one connection each: keep their memory small.
fn small(ctx: &Context, ty: SocketType, id: &str) -> Result<Socket> {
    let s = ctx.socket(ty)?;
    s.set_max_peers(1)?;
    s.set_routing_id(id.as_bytes())?;
    Ok(s)
}

/// Runs broker, clients and workers in one process over TCP loopback (ports picked by the
/// system): the `lbbroker` example.
pub fn run(cfg: Config) -> Result<Report> {
    let t0 = Instant::now();
    let ctx = Context::new()?;
    let frontend = ctx.socket(SocketType::Router)?;
    let backend = ctx.socket(SocketType::Router)?;
    let front_ep = frontend.bind(ANY_LOCAL)?;
    let back_ep = backend.bind(ANY_LOCAL)?;
    let stop = Stop::new();

    let workers: Vec<_> = (0..cfg.workers)
        .map(|n| {
            let (ctx, ep, stop) = (ctx.clone(), back_ep.clone(), stop.clone());
            std::thread::spawn(move || -> Result<(String, usize)> {
                let name = format!("worker-{n}");
                let s = small(&ctx, SocketType::Req, &name)?;
                s.connect(&ep)?;
                Ok((name, worker(&s, cfg.work, &stop)?))
            })
        })
        .collect();
    let clients: Vec<_> = (0..cfg.clients)
        .map(|n| {
            let (ctx, ep) = (ctx.clone(), front_ep.clone());
            std::thread::spawn(move || -> Result<(String, Vec<Vec<u8>>)> {
                let name = format!("client-{n}");
                let s = small(&ctx, SocketType::Req, &name)?;
                s.connect(&ep)?;
                Ok((name, client(&s, cfg.requests_per_client)?))
            })
        })
        .collect();

    let served = broker(&frontend, &backend, cfg.clients * cfg.requests_per_client);
    let elapsed = t0.elapsed();
    stop.stop();
    let mut client_replies = BTreeMap::new();
    for c in clients {
        let (name, replies) = c.join().map_err(|_| thread_panicked())??;
        client_replies.insert(name, replies);
    }
    let mut per_worker = BTreeMap::new();
    for w in workers {
        let (name, n) = w.join().map_err(|_| thread_panicked())??;
        per_worker.insert(name, n);
    }
    Ok(Report {
        served: served?,
        client_replies,
        per_worker,
        elapsed,
    })
}

fn thread_panicked() -> Error {
    Error::Io(std::io::Error::other("a client or worker thread panicked"))
}
