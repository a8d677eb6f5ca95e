//! Lazy Pirate: client-side reliability (Guide chapter 4, "Client-Side Reliability (Lazy
//! Pirate Pattern)": `lpclient`, `lpserver`).
//!
//! The client does not block on a reply: it waits at most a request timeout, and when
//! nothing came, closes its REQ socket (a REQ that sent cannot send again), opens a new
//! one, and resends, a few times before it gives up. The server is an ordinary REP that
//! can be made to "crash" (stop answering, its socket dropped) or to stall.

use std::time::{Duration, Instant};

use zmtp_std::{Context, Error, Result, Socket, SocketType};

/// The Guide's request timeout (2.5 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(2500);
/// The Guide's number of tries before giving up (3).
pub const REQUEST_RETRIES: usize = 3;

/// How a lazy pirate client behaves.
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    /// How long to wait for each reply.
    pub request_timeout: Duration,
    /// How many times to send a request before giving up.
    pub request_retries: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: REQUEST_TIMEOUT,
            request_retries: REQUEST_RETRIES,
        }
    }
}

/// What happened to a client's run.
#[derive(Debug, Default)]
pub struct ClientReport {
    /// Sequence numbers confirmed by a correct reply, in order.
    pub confirmed: Vec<u64>,
    /// Replies that did not match the request (reported, ignored: the Guide's "malformed
    /// reply from server").
    pub malformed: Vec<Vec<u8>>,
    /// Times the client gave up on its socket and opened a new one.
    pub reconnects: usize,
    /// The sequence number abandoned after the last retry ("server seems to be
    /// offline"), if it came to that.
    pub abandoned: Option<u64>,
}

fn new_client(ctx: &Context, endpoint: &str) -> Result<Socket> {
    let client = ctx.socket(SocketType::Req)?;
    client.set_linger(Some(Duration::ZERO));
    client.connect(endpoint)?;
    Ok(client)
}

/// The client (`lpclient`): sends the sequence numbers 1..=`requests` to `endpoint` one
/// after the other, each until echoed back or abandoned, `log` told what happens.
pub fn lpclient(
    ctx: &Context,
    endpoint: &str,
    requests: u64,
    cfg: ClientConfig,
    mut log: impl FnMut(&str),
) -> Result<ClientReport> {
    let mut report = ClientReport::default();
    let mut client = new_client(ctx, endpoint)?;
    for sequence in 1..=requests {
        let request = sequence.to_string().into_bytes();
        client.send(&request)?;
        let mut retries_left = cfg.request_retries;
        let mut deadline = Instant::now() + cfg.request_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match client.recv_timeout(left) {
                Ok(reply) if reply == request => {
                    log(&format!("I: server replied OK ({sequence})"));
                    report.confirmed.push(sequence);
                    break;
                }
                Ok(reply) => {
                    log(&format!(
                        "E: malformed reply from server: {}",
                        crate::text(&reply)
                    ));
                    report.malformed.push(reply);
                }
                Err(Error::Timeout) => {
                    retries_left = retries_left.saturating_sub(1);
                    if retries_left == 0 {
                        log("E: server seems to be offline, abandoning");
                        report.abandoned = Some(sequence);
                        return Ok(report);
                    }
                    log("W: no response from server, retrying...");
                    // The old socket is confused (it waits for a reply): close it, open a
                    // new one and resend.
                    drop(client);
                    report.reconnects += 1;
                    log("I: reconnecting to server...");
                    client = new_client(ctx, endpoint)?;
                    client.send(&request)?;
                    deadline = Instant::now() + cfg.request_timeout;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

/// How an `lpserver` misbehaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerFaults {
    /// After answering this many requests, take one more and "crash": return without
    /// answering it.
    pub crash_after: Option<usize>,
    /// Stall this long before answering every `stall_every`th request (the Guide's "CPU
    /// overload").
    pub stall: Option<(usize, Duration)>,
}

/// The server (`lpserver`): on a REP socket, echoes requests, `serve` at most, misbehaving
/// as `faults` say. Returns the requests answered. The caller drops the socket to complete
/// a crash.
pub fn lpserver(rep: &Socket, serve: usize, faults: ServerFaults) -> Result<Vec<Vec<u8>>> {
    let mut answered = Vec::new();
    for cycle in 1..=serve {
        let request = rep.recv()?;
        if faults.crash_after.is_some_and(|n| answered.len() >= n) {
            return Ok(answered); // "I: simulating a crash"
        }
        if let Some((every, pause)) = faults.stall {
            if every > 0 && cycle % every == 0 {
                std::thread::sleep(pause); // "I: simulating CPU overload"
            }
        }
        rep.send(&request)?;
        answered.push(request);
    }
    Ok(answered)
}

/// Binds `socket` to `endpoint`, retrying while the address is still in use (a server
/// restarted on the port of one just dropped: the I/O thread closes the old listener in
/// the background), for at most `timeout`.
pub fn bind_retry(socket: &Socket, endpoint: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match socket.bind(endpoint) {
            Err(Error::Io(e))
                if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}
