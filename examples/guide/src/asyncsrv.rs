//! The asynchronous client/server (Guide chapter 3, "The Asynchronous Client/Server
//! Pattern": `asyncsrv`).
//!
//! Clients are DEALERs: each sends requests at its own pace and takes whatever replies
//! come back, whenever they come, without the lock-step of REQ. The server binds a ROUTER
//! frontend for the clients and a DEALER backend for its pool of workers (DEALERs too),
//! and runs the [proxy](mod@crate::proxy) between them. A worker answers a request with any
//! number of replies, zero included (the Guide: 0-4, each after up to a second's "work").
//! Envelopes:
//!
//! ```text
//! client → frontend:   [request]
//! backend → worker:    [client id, request]          (the ROUTER added the client's id)
//! worker → backend:    [client id, reply] × 0..=4    (the worker echoes the request)
//! frontend → client:   [reply]                       (the ROUTER routed by the id, and took it off)
//! ```
//!
//! The Guide's clients print whatever comes in, for ever. Here each client stops once it has
//! every reply it is owed, and checks them: for that, the number of replies a request gets
//! is a function of the request and a seed shared by clients and workers
//! ([`reply_count`]). With a new seed per run (the example) the counts look random, as in
//! the Guide; with a fixed seed (the tests) they are known in advance.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zmtp_std::{Context, Error, Result, Socket, SocketType};

use crate::proxy::{proxy_steerable, ProxyStats};
use crate::{Msg, Rng, Stop, ANY_LOCAL, STOP_CHECK};

/// Most replies a worker sends for one request (the Guide's `randof (5)`: 0-4).
pub const MAX_REPLIES: usize = 4;

/// How many replies `request` gets under `seed`: 0 to [`MAX_REPLIES`], spread evenly
/// over the requests (FNV-1a of the seed and the request). Clients and workers that share
/// the seed agree on it.
pub fn reply_count(seed: u64, request: &[u8]) -> usize {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(request) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    // Fold the high bits in: the low bits of FNV alone are weak for short inputs.
    ((h ^ (h >> 32)) % (MAX_REPLIES as u64 + 1)) as usize
}

/// The text of a client's request number `n` (from 1): the Guide's `"request #N"`, with
/// the client's name, so a reply that reached the wrong client is told apart.
pub fn request_text(name: &str, n: usize) -> String {
    format!("request #{n} from {name}")
}

/// What a client sent and received.
#[derive(Clone, Debug, Default)]
pub struct ClientLog {
    /// The client's name (its routing id).
    pub name: String,
    /// The requests, in the order sent.
    pub requests: Vec<Vec<u8>>,
    /// Every message that came back, whole (all its frames), in arrival order.
    pub replies: Vec<Msg>,
    /// Replies owed for the requests sent ([`reply_count`] of each).
    pub expected: usize,
}

impl ClientLog {
    /// Checks the replies against the requests: each reply is one frame, echoes one of this
    /// client's requests, and each request got exactly [`reply_count`] replies. The first
    /// thing wrong, if any.
    pub fn check(&self, seed: u64) -> std::result::Result<(), String> {
        let mut got: BTreeMap<&[u8], usize> = BTreeMap::new();
        for r in &self.replies {
            let [frame] = r.as_slice() else {
                return Err(format!(
                    "{}: a reply of {} frames: {r:?}",
                    self.name,
                    r.len()
                ));
            };
            if !self.requests.contains(frame) {
                return Err(format!(
                    "{}: a reply to a request it never sent: {}",
                    self.name,
                    crate::text(frame)
                ));
            }
            *got.entry(frame.as_slice()).or_default() += 1;
        }
        for req in &self.requests {
            let (want, have) = (
                reply_count(seed, req),
                got.get(req.as_slice()).copied().unwrap_or(0),
            );
            if want != have {
                return Err(format!(
                    "{}: {} got {have} replies, expected {want}",
                    self.name,
                    crate::text(req)
                ));
            }
        }
        Ok(())
    }
}

/// Receives on `dealer` until `until`, appending to `replies`.
fn collect_until(dealer: &Socket, until: Instant, replies: &mut Vec<Msg>) -> Result<()> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        match dealer.recv_multipart_timeout(left) {
            Ok(m) => replies.push(m),
            Err(Error::Timeout) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A client (`client_task`): on a DEALER connected to the server's frontend, sends
/// `requests` requests ([`request_text`]) one every `interval` (the Guide: 1 s), taking
/// replies as they come meanwhile; then waits for the replies still owed under `seed`,
/// giving up when none has come for `patience`. Returns what it sent and received (see
/// [`ClientLog::check`]).
pub fn client(
    dealer: &Socket,
    name: &str,
    requests: usize,
    interval: Duration,
    seed: u64,
    patience: Duration,
) -> Result<ClientLog> {
    let mut log = ClientLog {
        name: name.to_owned(),
        ..ClientLog::default()
    };
    for n in 1..=requests {
        let request = request_text(name, n).into_bytes();
        dealer.send(&request)?;
        log.expected += reply_count(seed, &request);
        log.requests.push(request);
        collect_until(dealer, Instant::now() + interval, &mut log.replies)?;
    }
    while log.replies.len() < log.expected {
        match dealer.recv_multipart_timeout(patience) {
            Ok(m) => log.replies.push(m),
            Err(Error::Timeout) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(log)
}

/// One request as a worker handled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The routing id the frontend put on it: the client's.
    pub client: Vec<u8>,
    /// The request.
    pub request: Vec<u8>,
    /// How many replies the worker sent.
    pub replies: usize,
}

/// A worker (`server_worker`): on a DEALER connected to the server's backend, answers each
/// `[client id, request]` with [`reply_count`]`(seed, request)` copies of it, each after a
/// pause of up to `max_pause` (the Guide: 1 s; zero for none), until `stop`. `rng_seed`
/// varies the pauses. Returns the requests it handled. A message of another shape is
/// reported and dropped.
pub fn worker(
    dealer: &Socket,
    seed: u64,
    max_pause: Duration,
    rng_seed: u64,
    stop: &Stop,
) -> Result<Vec<Handled>> {
    let mut rng = Rng::new(rng_seed);
    let max_us = u64::try_from(max_pause.as_micros()).unwrap_or(u64::MAX);
    let mut handled = Vec::new();
    while !stop.is_stopped() {
        let msg = match dealer.recv_multipart_timeout(STOP_CHECK) {
            Ok(m) => m,
            Err(Error::Timeout) => continue,
            Err(e) => return Err(e),
        };
        let [client, request] = msg.as_slice() else {
            eprintln!("asyncsrv worker: dropped a message of {} frames", msg.len());
            continue;
        };
        let replies = reply_count(seed, request);
        for _ in 0..replies {
            if max_us > 0 {
                std::thread::sleep(Duration::from_micros(rng.within(1, max_us)));
            }
            dealer.send_multipart([client, request])?;
        }
        handled.push(Handled {
            client: client.clone(),
            request: request.clone(),
            replies,
        });
    }
    Ok(handled)
}

/// What a server's workers and proxy did, from [`Server::shutdown`].
#[derive(Debug, Default)]
pub struct ServerLog {
    /// The requests each worker handled, by worker name (`worker-0`, ...).
    pub workers: BTreeMap<String, Vec<Handled>>,
    /// The proxy's counters: requests in at the frontend, replies out of it, in frames
    /// (two a message: the client's routing id and the body).
    pub proxy: ProxyStats,
}

type WorkerThread = JoinHandle<Result<(String, Vec<Handled>)>>;

/// The server (`server_task`): a ROUTER frontend and a DEALER backend, both bound to
/// loopback ports the system picks, a pool of [`worker`]s on threads, and the proxy
/// between frontend and backend on a thread of its own, steered by a PAIR control socket
/// so that [`shutdown`](Self::shutdown) can end it.
#[derive(Debug)]
pub struct Server {
    endpoint: String,
    backend_endpoint: String,
    backend: Arc<Socket>,
    control: Socket,
    stop: Stop,
    proxy: JoinHandle<Result<ProxyStats>>,
    workers: Vec<WorkerThread>,
}

fn thread_panicked() -> Error {
    Error::Io(std::io::Error::other("an asyncsrv thread panicked"))
}

impl Server {
    /// Binds, starts `workers` workers (see [`worker`] for `seed` and `max_pause`), waits
    /// until every one is connected to the backend (so the backend deals requests over
    /// all of them from the first), and starts the proxy. [`Error::Timeout`] if the
    /// workers did not connect within 10 s.
    pub fn start(ctx: &Context, workers: usize, seed: u64, max_pause: Duration) -> Result<Server> {
        let frontend = ctx.socket(SocketType::Router)?;
        let backend = Arc::new(ctx.socket(SocketType::Dealer)?);
        let endpoint = frontend.bind(ANY_LOCAL)?;
        let backend_endpoint = backend.bind(ANY_LOCAL)?;
        let control_in = ctx.socket(SocketType::Pair)?;
        let control = ctx.socket(SocketType::Pair)?;
        control.connect(&control_in.bind(ANY_LOCAL)?)?;
        let stop = Stop::new();
        let workers: Vec<WorkerThread> = (0..workers)
            .map(|n| {
                let (ctx, ep, stop) = (ctx.clone(), backend_endpoint.clone(), stop.clone());
                std::thread::spawn(move || {
                    let name = format!("worker-{n}");
                    let s = ctx.socket(SocketType::Dealer)?;
                    s.set_max_peers(1)?;
                    s.set_routing_id(name.as_bytes())?;
                    s.connect(&ep)?;
                    let handled = worker(&s, seed, max_pause, seed ^ (n as u64 + 1), &stop)?;
                    Ok((name, handled))
                })
            })
            .collect();
        let want = workers.len();
        let connected = crate::wait_for(Duration::from_secs(10), || {
            backend.connected_peers() >= want
        });
        let proxy = {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                proxy_steerable(&frontend, &backend, None, Some(&control_in))
            })
        };
        let server = Server {
            endpoint,
            backend_endpoint,
            backend,
            control,
            stop,
            proxy,
            workers,
        };
        if !connected {
            // Stops and joins what was started; the error that matters is the timeout.
            let _ = server.shutdown();
            return Err(Error::Timeout);
        }
        Ok(server)
    }

    /// The frontend's endpoint, for clients to connect to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The backend's endpoint, where more workers (of any make) can connect.
    pub fn backend_endpoint(&self) -> &str {
        &self.backend_endpoint
    }

    /// Workers connected to the backend now, ours and any others.
    pub fn workers_connected(&self) -> usize {
        self.backend.connected_peers()
    }

    /// Ends the proxy (a `TERMINATE` on its control socket) and the workers, and returns
    /// what they did.
    pub fn shutdown(self) -> Result<ServerLog> {
        let sent = self.control.send("TERMINATE");
        self.stop.stop();
        let mut log = ServerLog::default();
        for w in self.workers {
            let (name, handled) = w.join().map_err(|_| thread_panicked())??;
            log.workers.insert(name, handled);
        }
        sent?;
        log.proxy = self.proxy.join().map_err(|_| thread_panicked())??;
        Ok(log)
    }
}

/// The demo's shape.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Clients, named `client-0`, ... (the Guide: 3).
    pub clients: usize,
    /// Workers (the Guide: 5).
    pub workers: usize,
    /// Requests each client sends (the Guide: one a second for the 5 s the demo runs).
    pub requests_per_client: usize,
    /// Between a client's requests (the Guide: 1 s).
    pub interval: Duration,
    /// Longest pause of a worker before each reply (the Guide: 1 s).
    pub max_pause: Duration,
    /// Decides how many replies each request gets ([`reply_count`]).
    pub seed: u64,
}

impl Default for Config {
    /// The Guide's shape with its times divided by 10.
    fn default() -> Self {
        Config {
            clients: 3,
            workers: 5,
            requests_per_client: 5,
            interval: Duration::from_millis(100),
            max_pause: Duration::from_millis(100),
            seed: 1,
        }
    }
}

/// What a whole run did.
#[derive(Debug)]
pub struct Report {
    /// Each client's log, in client order.
    pub clients: Vec<ClientLog>,
    /// The server's.
    pub server: ServerLog,
    /// From the server's start to the last client's last reply.
    pub elapsed: Duration,
}

/// How long a client waits for a reply it is owed before giving up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Runs the server and the clients in one process over TCP loopback: the `asyncsrv`
/// example.
pub fn run(cfg: Config) -> Result<Report> {
    let t0 = Instant::now();
    let ctx = Context::new()?;
    let server = Server::start(&ctx, cfg.workers, cfg.seed, cfg.max_pause)?;
    let clients: Vec<_> = (0..cfg.clients)
        .map(|n| {
            let (ctx, ep) = (ctx.clone(), server.endpoint().to_owned());
            std::thread::spawn(move || -> Result<ClientLog> {
                let name = format!("client-{n}");
                let s = ctx.socket(SocketType::Dealer)?;
                s.set_max_peers(1)?;
                s.set_routing_id(name.as_bytes())?;
                s.connect(&ep)?;
                client(
                    &s,
                    &name,
                    cfg.requests_per_client,
                    cfg.interval,
                    cfg.seed,
                    PATIENCE,
                )
            })
        })
        .collect();
    let logs: Vec<Result<ClientLog>> = clients
        .into_iter()
        .map(|c| c.join().map_err(|_| thread_panicked())?)
        .collect();
    let elapsed = t0.elapsed();
    let server = server.shutdown()?;
    Ok(Report {
        clients: logs.into_iter().collect::<Result<_>>()?,
        server,
        elapsed,
    })
}
