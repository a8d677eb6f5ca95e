//! Majordomo, service-oriented reliable queuing (Guide chapter 4, "Service-Oriented
//! Reliable Queuing (Majordomo Pattern)": `mdbroker`, `mdwrkapi`, `mdcliapi2`,
//! `mdworker`, `mdclient`), speaking MDP 0.2
//! (<https://rfc.zeromq.org/spec/18/>, "18/MDP").
//!
//! Clients (DEALER) send `REQUEST`s for a named service to the broker's ROUTER; workers
//! (DEALER) register for one service with `READY` and get the requests, answering zero or
//! more `PARTIAL`s and one `FINAL`, which the broker passes back to the client. Broker and
//! workers heartbeat each other; a worker that stays silent is forgotten, and a worker
//! whose broker stays silent reconnects. The broker answers the `mmi.service` lookup
//! itself (Guide: "Service Discovery", 8/MMI).
//!
//! The broker is generic over [`MsgSocket`] so that the same code runs over a libzmq
//! socket in the interop tests.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use zmtp_std::{Context, Error, Result, Socket, SocketType};

use crate::{Msg, Stop, STOP_CHECK};

/// MDP/Client v0.2 header (18/MDP, "MDP/Client").
pub const MDPC: &[u8] = b"MDPC02";
/// MDP/Worker v0.2 header (18/MDP, "MDP/Worker").
pub const MDPW: &[u8] = b"MDPW02";

/// Client commands.
pub mod client_cmd {
    /// REQUEST: client to broker.
    pub const REQUEST: u8 = 0x01;
    /// PARTIAL: broker to client, a reply with more to come.
    pub const PARTIAL: u8 = 0x02;
    /// FINAL: broker to client, the last reply.
    pub const FINAL: u8 = 0x03;
}

/// Worker commands.
pub mod worker_cmd {
    /// READY: worker to broker, with the service name.
    pub const READY: u8 = 0x01;
    /// REQUEST: broker to worker.
    pub const REQUEST: u8 = 0x02;
    /// PARTIAL: worker to broker.
    pub const PARTIAL: u8 = 0x03;
    /// FINAL: worker to broker.
    pub const FINAL: u8 = 0x04;
    /// HEARTBEAT: either way.
    pub const HEARTBEAT: u8 = 0x05;
    /// DISCONNECT: either way.
    pub const DISCONNECT: u8 = 0x06;
}

/// The Guide's heartbeat interval (2.5 s).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(2500);
/// Heartbeats missed before a peer is taken for dead (the Guide: 3).
pub const HEARTBEAT_LIVENESS: u32 = 3;

/// A socket that sends and receives whole messages: the broker's needs. Implemented for
/// [`zmtp_std::Socket`]; the interop tests implement it for a libzmq socket.
pub trait MsgSocket {
    /// Sends a multipart message.
    fn send_msg(&self, msg: Msg) -> Result<()>;
    /// Receives a message, waiting at most `timeout`: `None` if none came.
    fn recv_msg(&self, timeout: Duration) -> Result<Option<Msg>>;
}

impl MsgSocket for Socket {
    fn send_msg(&self, msg: Msg) -> Result<()> {
        self.send_multipart(msg)
    }

    fn recv_msg(&self, timeout: Duration) -> Result<Option<Msg>> {
        match self.recv_multipart_timeout(timeout) {
            Ok(m) => Ok(Some(m)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Heartbeat timing, shared by broker and workers (18/MDP: "agreed-upon intervals").
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    /// Send a HEARTBEAT this often.
    pub interval: Duration,
    /// Missed heartbeats before the peer is dead.
    pub liveness: u32,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: HEARTBEAT_INTERVAL,
            liveness: HEARTBEAT_LIVENESS,
        }
    }
}

impl Heartbeat {
    /// Silence after which the peer is taken for dead.
    pub fn expiry(&self) -> Duration {
        self.interval * self.liveness
    }
}

// ---------------------------------------------------------------------------- broker

#[derive(Debug)]
struct WorkerInfo {
    service: Vec<u8>,
    expiry: Instant,
}

#[derive(Debug, Default)]
struct Service {
    /// Requests waiting: `(client, body)`.
    requests: VecDeque<(Vec<u8>, Msg)>,
    /// Idle workers, longest idle first.
    waiting: VecDeque<Vec<u8>>,
    /// Workers registered (idle or busy).
    workers: usize,
}

/// Counters of a broker's run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Client requests dispatched to a worker.
    pub dispatched: u64,
    /// FINAL replies passed back to clients.
    pub finals: u64,
    /// PARTIAL replies passed back to clients.
    pub partials: u64,
    /// Workers forgotten after missing their heartbeats.
    pub expired_workers: u64,
    /// Workers that registered (READY).
    pub registered_workers: u64,
}

/// The Majordomo broker on one ROUTER socket for clients and workers (`mdbroker`).
#[derive(Debug)]
pub struct Broker<S> {
    socket: S,
    heartbeat: Heartbeat,
    services: HashMap<Vec<u8>, Service>,
    workers: HashMap<Vec<u8>, WorkerInfo>,
    stats: BrokerStats,
}

fn cmd(frame: Option<&Vec<u8>>) -> Option<u8> {
    match frame.map(Vec::as_slice) {
        Some([c]) => Some(*c),
        _ => None,
    }
}

impl<S: MsgSocket> Broker<S> {
    /// A broker on `socket`, a bound ROUTER.
    pub fn new(socket: S, heartbeat: Heartbeat) -> Self {
        Broker {
            socket,
            heartbeat,
            services: HashMap::new(),
            workers: HashMap::new(),
            stats: BrokerStats::default(),
        }
    }

    /// Serves until `stop`; returns the counters.
    pub fn run(&mut self, stop: &Stop) -> Result<BrokerStats> {
        let mut heartbeat_at = Instant::now() + self.heartbeat.interval;
        while !stop.is_stopped() {
            let wait = heartbeat_at
                .saturating_duration_since(Instant::now())
                .min(STOP_CHECK);
            if let Some(msg) = self.socket.recv_msg(wait)? {
                self.handle(msg)?;
            }
            if Instant::now() >= heartbeat_at {
                self.purge();
                for s in self.services.values() {
                    for w in &s.waiting {
                        self.socket.send_msg(vec![
                            w.clone(),
                            MDPW.to_vec(),
                            vec![worker_cmd::HEARTBEAT],
                        ])?;
                    }
                }
                heartbeat_at = Instant::now() + self.heartbeat.interval;
            }
        }
        Ok(self.stats)
    }

    fn handle(&mut self, msg: Msg) -> Result<()> {
        let mut frames = msg.into_iter();
        let (Some(sender), Some(header)) = (frames.next(), frames.next()) else {
            return Ok(()); // invalid: dropped (18/MDP)
        };
        let rest: Msg = frames.collect();
        if header == MDPC {
            self.client_message(sender, rest)
        } else if header == MDPW {
            self.worker_message(sender, rest)
        } else {
            Ok(()) // not MDP: dropped
        }
    }

    fn client_message(&mut self, client: Vec<u8>, msg: Msg) -> Result<()> {
        // [REQUEST, service, body...]
        if cmd(msg.first()) != Some(client_cmd::REQUEST) || msg.len() < 3 {
            return Ok(());
        }
        let mut it = msg.into_iter().skip(1);
        let service = it.next().unwrap_or_default();
        let body: Msg = it.collect();
        if service.starts_with(b"mmi.") {
            // 8/MMI: "200" if the service has workers, "404" if not; "501" for other
            // mmi.* names.
            let answer: &[u8] = if service == b"mmi.service" {
                let known = body
                    .first()
                    .and_then(|name| self.services.get(name))
                    .is_some_and(|s| s.workers > 0);
                if known {
                    b"200"
                } else {
                    b"404"
                }
            } else {
                b"501"
            };
            return self.socket.send_msg(vec![
                client,
                MDPC.to_vec(),
                vec![client_cmd::FINAL],
                service,
                answer.to_vec(),
            ]);
        }
        self.services
            .entry(service.clone())
            .or_default()
            .requests
            .push_back((client, body));
        self.dispatch(&service)
    }

    fn worker_message(&mut self, worker: Vec<u8>, msg: Msg) -> Result<()> {
        let Some(command) = cmd(msg.first()) else {
            return Ok(());
        };
        let known = self.workers.contains_key(&worker);
        match command {
            worker_cmd::READY => {
                let service = msg.get(1).cloned().unwrap_or_default();
                // A second READY, or a READY for an internal service: DISCONNECT (18/MDP).
                if known || service.starts_with(b"mmi.") || service.is_empty() {
                    self.disconnect(&worker)?;
                    return Ok(());
                }
                self.stats.registered_workers += 1;
                self.services.entry(service.clone()).or_default().workers += 1;
                self.workers.insert(
                    worker.clone(),
                    WorkerInfo {
                        service,
                        expiry: Instant::now(),
                    },
                );
                self.worker_waiting(worker)
            }
            worker_cmd::PARTIAL | worker_cmd::FINAL if known => {
                // [cmd, client, "", body...]
                let Some(info) = self.workers.get(&worker) else {
                    return Ok(());
                };
                let service = info.service.clone();
                let mut it = msg.into_iter().skip(1);
                let client = it.next().unwrap_or_default();
                let _empty = it.next();
                let reply_cmd = if command == worker_cmd::FINAL {
                    self.stats.finals += 1;
                    client_cmd::FINAL
                } else {
                    self.stats.partials += 1;
                    client_cmd::PARTIAL
                };
                let mut out = vec![client, MDPC.to_vec(), vec![reply_cmd], service];
                out.extend(it);
                self.socket.send_msg(out)?;
                if command == worker_cmd::FINAL {
                    self.worker_waiting(worker)?;
                } else if let Some(info) = self.workers.get_mut(&worker) {
                    info.expiry = Instant::now() + self.heartbeat.expiry();
                }
                Ok(())
            }
            worker_cmd::HEARTBEAT if known => {
                if let Some(info) = self.workers.get_mut(&worker) {
                    info.expiry = Instant::now() + self.heartbeat.expiry();
                }
                Ok(())
            }
            worker_cmd::DISCONNECT => {
                self.delete_worker(&worker);
                Ok(())
            }
            // Anything else, or anything from a worker that never said READY.
            _ => self.disconnect(&worker),
        }
    }

    fn disconnect(&mut self, worker: &[u8]) -> Result<()> {
        self.delete_worker(worker);
        self.socket.send_msg(vec![
            worker.to_vec(),
            MDPW.to_vec(),
            vec![worker_cmd::DISCONNECT],
        ])
    }

    fn delete_worker(&mut self, worker: &[u8]) {
        if let Some(info) = self.workers.remove(worker) {
            if let Some(s) = self.services.get_mut(&info.service) {
                s.waiting.retain(|w| w != worker);
                s.workers = s.workers.saturating_sub(1);
            }
        }
    }

    fn worker_waiting(&mut self, worker: Vec<u8>) -> Result<()> {
        let Some(info) = self.workers.get_mut(&worker) else {
            return Ok(());
        };
        info.expiry = Instant::now() + self.heartbeat.expiry();
        let service = info.service.clone();
        self.services
            .entry(service.clone())
            .or_default()
            .waiting
            .push_back(worker);
        self.dispatch(&service)
    }

    fn dispatch(&mut self, service: &[u8]) -> Result<()> {
        self.purge();
        let Some(s) = self.services.get_mut(service) else {
            return Ok(());
        };
        while !s.waiting.is_empty() && !s.requests.is_empty() {
            let (Some(worker), Some((client, body))) =
                (s.waiting.pop_front(), s.requests.pop_front())
            else {
                break;
            };
            let mut out = vec![
                worker,
                MDPW.to_vec(),
                vec![worker_cmd::REQUEST],
                client,
                Vec::new(),
            ];
            out.extend(body);
            self.socket.send_msg(out)?;
            self.stats.dispatched += 1;
        }
        Ok(())
    }

    /// Forgets idle workers whose heartbeats stopped.
    fn purge(&mut self) {
        let now = Instant::now();
        let expired: Vec<Vec<u8>> = self
            .services
            .values()
            .flat_map(|s| s.waiting.iter())
            .filter(|w| self.workers.get(*w).is_some_and(|i| i.expiry <= now))
            .cloned()
            .collect();
        for w in expired {
            self.stats.expired_workers += 1;
            self.delete_worker(&w);
        }
    }

    /// Workers registered for `service` now.
    pub fn workers_for(&self, service: &[u8]) -> usize {
        self.services.get(service).map_or(0, |s| s.workers)
    }
}

// ---------------------------------------------------------------------------- worker

/// Worker timing: heartbeats and the wait before reconnecting (the Guide: 2.5 s).
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Heartbeats, as the broker's.
    pub heartbeat: Heartbeat,
    /// Wait before reconnecting to a broker taken for dead.
    pub reconnect: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            heartbeat: Heartbeat::default(),
            reconnect: HEARTBEAT_INTERVAL,
        }
    }
}

/// The worker API (`mdwrkapi`): one DEALER connected to the broker, registered for one
/// service.
#[derive(Debug)]
pub struct Worker {
    ctx: Context,
    broker: String,
    service: Vec<u8>,
    cfg: WorkerConfig,
    socket: Socket,
    liveness: u32,
    heartbeat_at: Instant,
    /// The client of the request being answered.
    reply_to: Option<Vec<u8>>,
    /// Times the worker reconnected (broker silent, or DISCONNECT).
    pub reconnects: u32,
}

fn worker_socket(ctx: &Context, broker: &str, service: &[u8]) -> Result<Socket> {
    let s = ctx.socket(SocketType::Dealer)?;
    s.set_linger(Some(Duration::ZERO));
    s.set_max_peers(1)?;
    s.connect(broker)?;
    s.send_multipart([MDPW, &[worker_cmd::READY], service])?;
    Ok(s)
}

impl Worker {
    /// Connects to `broker` and registers for `service`.
    pub fn new(ctx: &Context, broker: &str, service: &str, cfg: WorkerConfig) -> Result<Self> {
        let socket = worker_socket(ctx, broker, service.as_bytes())?;
        Ok(Worker {
            ctx: ctx.clone(),
            broker: broker.to_owned(),
            service: service.as_bytes().to_vec(),
            cfg,
            socket,
            liveness: cfg.heartbeat.liveness,
            heartbeat_at: Instant::now() + cfg.heartbeat.interval,
            reply_to: None,
            reconnects: 0,
        })
    }

    fn reconnect(&mut self) -> Result<()> {
        self.socket = worker_socket(&self.ctx, &self.broker, &self.service)?;
        self.liveness = self.cfg.heartbeat.liveness;
        self.heartbeat_at = Instant::now() + self.cfg.heartbeat.interval;
        self.reconnects += 1;
        Ok(())
    }

    fn send_to_client(&mut self, command: u8, body: Msg) -> Result<()> {
        let Some(client) = self.reply_to.clone() else {
            return Err(Error::State); // no request to answer
        };
        let mut out = vec![MDPW.to_vec(), vec![command], client, Vec::new()];
        out.extend(body);
        self.socket.send_multipart(out)
    }

    /// Sends a PARTIAL reply to the request being answered.
    pub fn partial(&mut self, body: Msg) -> Result<()> {
        self.send_to_client(worker_cmd::PARTIAL, body)
    }

    /// Sends the FINAL reply to the request being answered.
    pub fn reply(&mut self, body: Msg) -> Result<()> {
        self.send_to_client(worker_cmd::FINAL, body)?;
        self.reply_to = None;
        Ok(())
    }

    /// Waits for the next request (its body), heartbeating and reconnecting as needed,
    /// until `stop` (`None`).
    pub fn recv(&mut self, stop: &Stop) -> Result<Option<Msg>> {
        let mut silent_since = Instant::now();
        while !stop.is_stopped() {
            let wait = self
                .heartbeat_at
                .saturating_duration_since(Instant::now())
                .min(STOP_CHECK);
            match self.socket.recv_multipart_timeout(wait) {
                Ok(msg) => {
                    self.liveness = self.cfg.heartbeat.liveness;
                    silent_since = Instant::now();
                    if msg.first().map(Vec::as_slice) != Some(MDPW) {
                        continue; // not MDP: dropped
                    }
                    match cmd(msg.get(1)) {
                        Some(worker_cmd::REQUEST) => {
                            // [MDPW02, REQUEST, client, "", body...]
                            let mut it = msg.into_iter().skip(2);
                            self.reply_to = it.next();
                            let _empty = it.next();
                            return Ok(Some(it.collect()));
                        }
                        Some(worker_cmd::HEARTBEAT) => {}
                        Some(worker_cmd::DISCONNECT) => self.reconnect()?,
                        _ => {} // invalid: dropped
                    }
                }
                Err(Error::Timeout) => {
                    // A liveness point lost per heartbeat interval of silence.
                    if silent_since.elapsed() >= self.cfg.heartbeat.interval {
                        silent_since = Instant::now();
                        self.liveness = self.liveness.saturating_sub(1);
                        if self.liveness == 0 {
                            // The broker is gone: wait, then reconnect on a new socket.
                            std::thread::sleep(self.cfg.reconnect);
                            self.reconnect()?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= self.heartbeat_at {
                self.socket
                    .send_multipart([MDPW, &[worker_cmd::HEARTBEAT]])?;
                self.heartbeat_at = Instant::now() + self.cfg.heartbeat.interval;
            }
        }
        Ok(None)
    }

    /// Tells the broker we leave (DISCONNECT) and closes.
    pub fn disconnect(self) -> Result<()> {
        self.socket
            .send_multipart([MDPW, &[worker_cmd::DISCONNECT]])
    }
}

/// The echo service (`mdworker`): answers every request with its body, until `stop`.
/// Returns how many requests it answered.
pub fn echo_worker(worker: &mut Worker, stop: &Stop) -> Result<usize> {
    let mut answered = 0;
    while let Some(request) = worker.recv(stop)? {
        worker.reply(request)?;
        answered += 1;
    }
    Ok(answered)
}

// ---------------------------------------------------------------------------- client

/// Client timing (the Guide: 2.5 s timeout, 3 retries).
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Tries before giving up on a request.
    pub retries: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: HEARTBEAT_INTERVAL,
            retries: 3,
        }
    }
}

/// The client API (`mdcliapi`, MDP 0.2: a DEALER): sends a request to a service and
/// collects its PARTIAL replies and the FINAL one, resending on a new socket after a
/// timeout (Lazy Pirate).
#[derive(Debug)]
pub struct Client {
    ctx: Context,
    broker: String,
    cfg: ClientConfig,
    socket: Socket,
    /// The last request was abandoned: its answer may still come to this socket.
    stale: bool,
    /// Times the client gave up on its socket and opened a new one.
    pub reconnects: u32,
}

fn client_socket(ctx: &Context, broker: &str) -> Result<Socket> {
    let s = ctx.socket(SocketType::Dealer)?;
    s.set_linger(Some(Duration::ZERO));
    s.set_max_peers(1)?;
    s.connect(broker)?;
    Ok(s)
}

/// A service's answer: the bodies of its PARTIAL replies, then of its FINAL one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// PARTIAL replies, in order.
    pub partials: Vec<Msg>,
    /// The FINAL reply.
    pub last: Msg,
}

impl Client {
    /// A client of the broker at `broker`.
    pub fn new(ctx: &Context, broker: &str, cfg: ClientConfig) -> Result<Self> {
        Ok(Client {
            ctx: ctx.clone(),
            broker: broker.to_owned(),
            cfg,
            socket: client_socket(ctx, broker)?,
            stale: false,
            reconnects: 0,
        })
    }

    /// Sends `body` (at least one frame: 18/MDP's REQUEST has "frames 3+") to `service`
    /// and waits for the whole answer; `None` when the broker did not answer after every
    /// retry.
    pub fn send(&mut self, service: &str, body: Msg) -> Result<Option<Reply>> {
        if body.is_empty() {
            return Err(Error::EmptyMessage);
        }
        let mut request = vec![
            MDPC.to_vec(),
            vec![client_cmd::REQUEST],
            service.as_bytes().to_vec(),
        ];
        request.extend(body);
        for attempt in 0..self.cfg.retries {
            if attempt > 0 || self.stale {
                self.stale = false;
                self.socket = client_socket(&self.ctx, &self.broker)?;
                self.reconnects += 1;
            }
            self.socket.send_multipart(&request)?;
            let mut reply = Reply::default();
            let mut deadline = Instant::now() + self.cfg.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let msg = match self.socket.recv_multipart_timeout(left) {
                    Ok(m) => m,
                    Err(Error::Timeout) => break,
                    Err(e) => return Err(e),
                };
                // [MDPC02, PARTIAL|FINAL, service, body...]
                if msg.first().map(Vec::as_slice) != Some(MDPC)
                    || msg.get(2).map(Vec::as_slice) != Some(service.as_bytes())
                {
                    continue; // not ours (a late answer to an abandoned request)
                }
                let body: Msg = msg.iter().skip(3).cloned().collect();
                match cmd(msg.get(1)) {
                    Some(client_cmd::PARTIAL) => {
                        reply.partials.push(body);
                        deadline = Instant::now() + self.cfg.timeout;
                    }
                    Some(client_cmd::FINAL) => {
                        reply.last = body;
                        return Ok(Some(reply));
                    }
                    _ => {}
                }
            }
        }
        self.stale = true;
        Ok(None)
    }
}

/// Runs the broker on a new bound ROUTER at `endpoint`; returns the broker and the endpoint
/// bound.
pub fn bind_broker(
    ctx: &Context,
    endpoint: &str,
    heartbeat: Heartbeat,
) -> Result<(Broker<Socket>, String)> {
    let socket = ctx.socket(SocketType::Router)?;
    let bound = socket.bind(endpoint)?;
    Ok((Broker::new(socket, heartbeat), bound))
}
