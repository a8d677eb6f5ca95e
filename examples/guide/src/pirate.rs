//! Simple Pirate and Paranoid Pirate queues and workers (Guide chapter 4, "Basic Reliable
//! Queuing (Simple Pirate Pattern)": `spqueue`, `spworker`; "Robust Reliable Queuing
//! (Paranoid Pirate Pattern)": `ppqueue`, `ppworker`, 6/PPP). The clients are
//! [Lazy Pirate](crate::lazy_pirate) clients.
//!
//! The simple queue is the load-balancing broker run for ever: REQ workers say READY, and
//! a worker that dies is not noticed (its next request is lost, and the client resends).
//! The paranoid queue and its DEALER workers heartbeat each other: the queue forgets
//! workers that fall silent, and a worker whose queue falls silent reconnects, waiting
//! longer after each failure (exponential backoff).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use zmtp_std::{poll, Context, Error, PollEvents, Result, Socket, SocketType};

use crate::{Msg, Stop, STOP_CHECK};

/// PPP READY (6/PPP): a worker is ready.
pub const PPP_READY: &[u8] = b"\x01";
/// PPP HEARTBEAT (6/PPP).
pub const PPP_HEARTBEAT: &[u8] = b"\x02";

/// The simple pirate queue (`spqueue`): load balancing from `frontend` (ROUTER, lazy
/// pirate clients) to the REQ workers of `backend` (ROUTER), until `stop`. Returns the
/// replies passed back.
pub fn spqueue(frontend: &Socket, backend: &Socket, stop: &Stop) -> Result<u64> {
    let mut idle: VecDeque<Vec<u8>> = VecDeque::new();
    let mut replies = 0;
    while !stop.is_stopped() {
        let front = if idle.is_empty() {
            PollEvents::empty()
        } else {
            PollEvents::IN
        };
        let mut items = [
            backend.as_poll_item(PollEvents::IN),
            frontend.as_poll_item(front),
        ];
        poll(&mut items, Some(STOP_CHECK))?;
        if items[0].is_readable() {
            // [worker, "", "READY"] or [worker, "", client, "", reply]
            let msg = backend.try_recv_multipart()?;
            if let Some(worker) = msg.first() {
                idle.push_back(worker.clone());
            }
            if msg.len() >= 5 {
                frontend.send_multipart(&msg[2..])?;
                replies += 1;
            }
        }
        if items[1].is_readable() {
            let msg = frontend.try_recv_multipart()?;
            if let Some(worker) = idle.pop_front() {
                let mut out: Msg = vec![worker, Vec::new()];
                out.extend(msg);
                backend.send_multipart(out)?;
            }
        }
    }
    Ok(replies)
}

/// A simple pirate worker (`spworker`) on a REQ connected to the backend: says READY,
/// echoes requests; after `crash_after` of them it takes one more and returns without
/// answering (the caller drops the socket: a crash). Runs until `stop` otherwise.
/// Returns the requests it answered.
pub fn spworker(req: &Socket, crash_after: Option<usize>, stop: &Stop) -> Result<usize> {
    req.send("READY")?;
    let mut answered = 0;
    while !stop.is_stopped() {
        let msg = match req.recv_multipart_timeout(STOP_CHECK) {
            Ok(m) => m,
            Err(Error::Timeout) => continue,
            Err(e) => return Err(e),
        };
        if crash_after.is_some_and(|n| answered >= n) {
            return Ok(answered); // "I: simulating a crash"
        }
        req.send_multipart(msg)?; // [client, "", request]: echoed
        answered += 1;
    }
    Ok(answered)
}

/// Paranoid pirate timing (the Guide: 1 s heartbeats, liveness 3, reconnect backoff from
/// 1 s to 32 s).
#[derive(Clone, Copy, Debug)]
pub struct PpConfig {
    /// Heartbeat interval, both ways.
    pub heartbeat_interval: Duration,
    /// Heartbeats missed before the peer is dead.
    pub liveness: u32,
    /// First wait before a worker reconnects.
    pub interval_init: Duration,
    /// Longest wait before a worker reconnects (the backoff doubles up to it).
    pub interval_max: Duration,
}

impl Default for PpConfig {
    fn default() -> Self {
        PpConfig {
            heartbeat_interval: Duration::from_millis(1000),
            liveness: 3,
            interval_init: Duration::from_millis(1000),
            interval_max: Duration::from_millis(32000),
        }
    }
}

/// What a paranoid pirate queue did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PpQueueStats {
    /// Replies passed back to clients.
    pub replies: u64,
    /// Workers forgotten after their heartbeats stopped.
    pub expired_workers: u64,
}

/// The paranoid pirate queue (`ppqueue`): like [`spqueue`] with DEALER workers that
/// heartbeat; idle workers get a HEARTBEAT every interval and are forgotten after
/// `liveness` intervals of silence. Until `stop`.
pub fn ppqueue(
    frontend: &Socket,
    backend: &Socket,
    cfg: PpConfig,
    stop: &Stop,
) -> Result<PpQueueStats> {
    let expiry = cfg.heartbeat_interval * cfg.liveness;
    // Idle workers, longest idle first, with the time they expire.
    let mut workers: VecDeque<(Vec<u8>, Instant)> = VecDeque::new();
    let mut stats = PpQueueStats::default();
    let mut heartbeat_at = Instant::now() + cfg.heartbeat_interval;
    while !stop.is_stopped() {
        let front = if workers.is_empty() {
            PollEvents::empty()
        } else {
            PollEvents::IN
        };
        let mut items = [
            backend.as_poll_item(PollEvents::IN),
            frontend.as_poll_item(front),
        ];
        let wait = heartbeat_at
            .saturating_duration_since(Instant::now())
            .min(STOP_CHECK);
        poll(&mut items, Some(wait))?;
        if items[0].is_readable() {
            let msg = backend.try_recv_multipart()?;
            if let Some(worker) = msg.first() {
                // Any message from a worker: it is alive and idle again.
                workers.retain(|(w, _)| w != worker);
                workers.push_back((worker.clone(), Instant::now() + expiry));
                match &msg[1..] {
                    [control] if control == PPP_READY || control == PPP_HEARTBEAT => {}
                    [_client, ..] => {
                        frontend.send_multipart(&msg[1..])?; // [client, "", reply]
                        stats.replies += 1;
                    }
                    [] => {}
                }
            }
        }
        if items[1].is_readable() {
            let msg = frontend.try_recv_multipart()?;
            if let Some((worker, _)) = workers.pop_front() {
                let mut out: Msg = vec![worker];
                out.extend(msg);
                backend.send_multipart(out)?;
            }
        }
        if Instant::now() >= heartbeat_at {
            for (w, _) in &workers {
                backend.send_multipart([w.as_slice(), PPP_HEARTBEAT])?;
            }
            heartbeat_at = Instant::now() + cfg.heartbeat_interval;
        }
        let now = Instant::now();
        let before = workers.len();
        workers.retain(|(_, exp)| *exp > now);
        stats.expired_workers += (before - workers.len()) as u64;
    }
    Ok(stats)
}

/// What a paranoid pirate worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PpWorkerStats {
    /// Requests answered.
    pub answered: usize,
    /// Times it reconnected after its queue fell silent.
    pub reconnects: usize,
    /// The longest wait before a reconnect (the backoff reached).
    pub longest_backoff: Duration,
}

fn pp_socket(ctx: &Context, endpoint: &str) -> Result<Socket> {
    let s = ctx.socket(SocketType::Dealer)?;
    s.set_linger(Some(Duration::ZERO));
    s.set_max_peers(1)?;
    s.connect(endpoint)?;
    s.send(PPP_READY)?;
    Ok(s)
}

/// A paranoid pirate worker (`ppworker`): a DEALER to the queue at `endpoint`, echoing
/// requests and heartbeating; when the queue is silent for `liveness` heartbeats it waits
/// (1×, 2×, 4×... `interval_init`, at most `interval_max`) and reconnects on a new socket.
/// After `crash_after` requests it takes one more and returns without answering. Until
/// `stop` otherwise.
pub fn ppworker(
    ctx: &Context,
    endpoint: &str,
    cfg: PpConfig,
    crash_after: Option<usize>,
    stop: &Stop,
) -> Result<PpWorkerStats> {
    let mut stats = PpWorkerStats::default();
    let mut socket = pp_socket(ctx, endpoint)?;
    let mut liveness = cfg.liveness;
    let mut interval = cfg.interval_init;
    let mut heartbeat_at = Instant::now() + cfg.heartbeat_interval;
    let mut silent_since = Instant::now();
    while !stop.is_stopped() {
        let wait = heartbeat_at
            .saturating_duration_since(Instant::now())
            .min(STOP_CHECK);
        match socket.recv_multipart_timeout(wait) {
            Ok(msg) => {
                liveness = cfg.liveness;
                interval = cfg.interval_init;
                silent_since = Instant::now();
                if msg.len() >= 3 {
                    // [client, "", request]
                    if crash_after.is_some_and(|n| stats.answered >= n) {
                        return Ok(stats); // "I: simulating a crash"
                    }
                    socket.send_multipart(msg)?;
                    stats.answered += 1;
                }
                // A HEARTBEAT needs nothing more; anything else is invalid and dropped.
            }
            Err(Error::Timeout) => {
                if silent_since.elapsed() >= cfg.heartbeat_interval {
                    silent_since = Instant::now();
                    liveness = liveness.saturating_sub(1);
                    if liveness == 0 {
                        // "W: heartbeat failure, can't reach queue; reconnecting in ..."
                        std::thread::sleep(interval);
                        stats.longest_backoff = stats.longest_backoff.max(interval);
                        interval = (interval * 2).min(cfg.interval_max);
                        socket = pp_socket(ctx, endpoint)?;
                        stats.reconnects += 1;
                        liveness = cfg.liveness;
                        silent_since = Instant::now();
                    }
                }
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= heartbeat_at {
            socket.send(PPP_HEARTBEAT)?;
            heartbeat_at = Instant::now() + cfg.heartbeat_interval;
        }
    }
    Ok(stats)
}
