//! The socket commands (`send`, `recv`, `echo`, `req`) and the helpers every command shares:
//! making a configured socket, binding and connecting, waiting with `--timeout` and Ctrl-C.

use std::time::{Duration, Instant};

use zmtp_std::{Context, Mechanism, MonitorEvent, Socket, SocketType};

use crate::cli::{RecvArgs, ReqArgs, SendArgs, SockOpts, Tuning};
use crate::error::{CliError, Result};
use crate::interrupted;
use crate::output::{announce_bound, from_hex, parse_frames, print_message};
use crate::security;

/// Longest a blocking call waits before looking at Ctrl-C again.
pub const SLICE: Duration = Duration::from_millis(100);

/// Room a message needs in a queue beyond its bytes (frame records), with margin.
const QUEUE_MARGIN: usize = 64 * 1024;

/// Milliseconds to a duration.
pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Applies the tuning options to a socket that has not bound or connected yet.
pub fn apply_tuning(s: &Socket, t: &Tuning) -> Result {
    let opt = |r: zmtp_std::Result<()>| r.map_err(|e| CliError::socket("setting an option", e));
    if let Some(h) = t.hwm {
        opt(s.set_send_hwm(h))?;
        opt(s.set_recv_hwm(h))?;
    }
    if let Some(l) = t.linger {
        s.set_linger(u64::try_from(l).ok().map(ms));
    }
    if let Some(m) = t.max_msg_size {
        opt(s.set_max_message_size(Some(m)))?;
        ensure_queue_room(s, usize::try_from(m).unwrap_or(usize::MAX))?;
    }
    if let Some(h) = t.handshake_timeout {
        opt(s.set_handshake_timeout((h > 0).then(|| ms(h))))?;
    }
    if let Some(h) = t.heartbeat_ivl {
        opt(s.set_heartbeat_interval((h > 0).then(|| ms(h))))?;
    }
    if let Some(h) = t.heartbeat_timeout {
        opt(s.set_heartbeat_timeout((h > 0).then(|| ms(h))))?;
    }
    if let Some(h) = t.heartbeat_ttl {
        opt(s.set_heartbeat_ttl((h > 0).then(|| ms(h))))?;
    }
    Ok(())
}

/// Grows the socket's queues so a message of `bytes` fits (the library's default queue
/// holds 1 MiB + 64 KiB).
pub fn ensure_queue_room(s: &Socket, bytes: usize) -> Result {
    let need = bytes.saturating_add(QUEUE_MARGIN);
    if need > s.options().queue_size {
        s.set_queue_size(need)
            .map_err(|e| CliError::socket("setting the queue size", e))?;
    }
    Ok(())
}

/// Makes a socket of type `ty` with the socket-command options applied.
pub fn make_socket(ctx: &Context, ty: SocketType, o: &SockOpts) -> Result<Socket> {
    let s = ctx
        .socket(ty)
        .map_err(|e| CliError::socket(format!("making a {ty} socket"), e))?;
    apply_tuning(&s, &o.tuning)?;
    if let Some(id) = &o.identity {
        s.set_routing_id(id.as_bytes())
            .map_err(|e| CliError::socket("--identity", e))?;
    }
    if o.router_mandatory {
        if ty != SocketType::Router {
            return Err(CliError::usage("--router-mandatory is for ROUTER sockets"));
        }
        s.set_router_mandatory(true)
            .map_err(|e| CliError::socket("--router-mandatory", e))?;
    }
    let mut topics: Vec<Vec<u8>> = o.subscribe.iter().map(|t| t.as_bytes().to_vec()).collect();
    for t in &o.subscribe_hex {
        topics.push(from_hex(t).map_err(|e| CliError::usage(format!("--subscribe-hex {e}")))?);
    }
    let subscribes = matches!(ty, SocketType::Sub | SocketType::XSub);
    if !topics.is_empty() && !subscribes {
        return Err(CliError::usage(
            "--subscribe is for SUB and XSUB sockets (a PUB filters by its subscribers' subscriptions)",
        ));
    }
    if subscribes && topics.is_empty() {
        topics.push(Vec::new()); // everything
    }
    for t in topics {
        s.subscribe(&t)
            .map_err(|e| CliError::socket("subscribing", e))?;
    }
    Ok(s)
}

/// Binds to each of `bind` (announcing each endpoint bound on stderr), then connects to
/// each of `connect`.
pub fn attach(s: &Socket, bind: &[String], connect: &[String]) -> Result {
    if bind.is_empty() && connect.is_empty() {
        return Err(CliError::usage(
            "no endpoint: give at least one -b/--bind EP or -c/--connect EP",
        ));
    }
    for ep in bind {
        let bound = s
            .bind(ep)
            .map_err(|e| CliError::socket(format!("binding {ep}"), e))?;
        announce_bound(&bound);
    }
    for ep in connect {
        s.connect(ep)
            .map_err(|e| CliError::socket(format!("connecting to {ep}"), e))?;
    }
    Ok(())
}

/// When a wait of `timeout` started now gives up.
pub fn deadline(timeout: Option<u64>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(ms(t)))
}

/// How long to wait in the next slice before `deadline`; `None` when it has passed.
fn next_slice(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(SLICE),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| left.min(SLICE))
        }
    }
}

/// Receives one message, waiting at most `timeout` ms (`None`: forever) and stopping on
/// Ctrl-C.
pub fn wait_recv(s: &Socket, timeout: Option<u64>, what: &str) -> Result<Vec<Vec<u8>>> {
    let deadline = deadline(timeout);
    loop {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        security::check(s)?;
        let Some(slice) = next_slice(deadline) else {
            return Err(CliError::Timeout(format!(
                "no {what} within --timeout {} ms",
                timeout.unwrap_or(0)
            )));
        };
        match s.recv_multipart_timeout(slice) {
            Ok(m) => {
                security::check(s)?;
                return Ok(m);
            }
            Err(zmtp_std::Error::Timeout) => {}
            Err(e) => return Err(CliError::socket(format!("receiving a {what}"), e)),
        }
    }
}

/// Sends one message, waiting at most `timeout` ms for room (`None`: forever) and stopping
/// on Ctrl-C.
pub fn wait_send(s: &Socket, msg: &[Vec<u8>], timeout: Option<u64>) -> Result {
    match s.try_send_multipart(msg) {
        Ok(()) => return Ok(()),
        Err(zmtp_std::Error::WouldBlock) => {}
        Err(e) => return Err(CliError::socket("sending", e)),
    }
    let deadline = deadline(timeout);
    loop {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        security::check(s)?;
        let Some(slice) = next_slice(deadline) else {
            return Err(CliError::Timeout(format!(
                "could not send within --timeout {} ms (no peer, or peers at their high-water mark)",
                timeout.unwrap_or(0)
            )));
        };
        match s.send_multipart_timeout(msg, slice) {
            Ok(()) => return Ok(()),
            Err(zmtp_std::Error::Timeout) => {}
            Err(e) => return Err(CliError::socket("sending", e)),
        }
    }
}

/// Waits until at least one peer has finished its handshake, at most `timeout` ms.
pub fn wait_peer(s: &Socket, timeout: Option<u64>) -> Result {
    let deadline = deadline(timeout);
    // The monitor's HandshakeSucceeded is sent just before the peer counts as ready (and
    // can be sent to), so the count itself is what is watched: every few ms.
    let mut pause = Duration::from_millis(1);
    while s.connected_peers() == 0 {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        security::check(s)?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(CliError::Timeout(format!(
                "no peer connected within --timeout {} ms",
                timeout.unwrap_or(0)
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// Sleeps `d`, waking for Ctrl-C.
fn pause(d: Duration) -> Result {
    let end = Instant::now() + d;
    loop {
        if interrupted() {
            return Err(CliError::Interrupted);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(SLICE));
    }
}

/// Runs `body` with a socket; on failure drops queued messages at once (linger 0) so the
/// process exits now, not after the linger time.
fn with_socket(s: Socket, body: impl FnOnce(&Socket) -> Result) -> Result {
    let r = body(&s).and_then(|()| security::check(&s));
    if r.is_err() {
        s.set_linger(Some(Duration::ZERO));
    }
    drop(s);
    r
}

fn context() -> Result<Context> {
    Context::new().map_err(|e| CliError::failed(format!("starting the I/O thread: {e}")))
}

/// Makes the socket of a socket command: options (with room in its queues for a message
/// of `room` bytes), security, `-v`; binds and connects, then prints the security notes.
fn open(
    ctx: &Context,
    ty: SocketType,
    o: &SockOpts,
    bind: &[String],
    connect: &[String],
    room: usize,
) -> Result<Socket> {
    let s = make_socket(ctx, ty, o)?;
    ensure_queue_room(&s, room)?;
    let (role, notes) = security::apply(ctx, &s, &o.security)?;
    attach_verbose(&s, bind, connect, o.verbose)?;
    for n in notes {
        eprintln!("{n}");
    }
    security::watch(&s, role, o.verbose, bind.len(), connect.len());
    Ok(s)
}

/// [`attach`], and with `verbose` a thread that prints the socket's monitor events on
/// stderr once the `bound` lines are out.
pub fn attach_verbose(s: &Socket, bind: &[String], connect: &[String], verbose: bool) -> Result {
    let events = if verbose {
        Some(
            s.monitor()
                .map_err(|e| CliError::socket("starting the monitor", e))?,
        )
    } else {
        None
    };
    attach(s, bind, connect)?;
    if let Some(events) = events {
        let mechanism = s.mechanism();
        let printer = std::thread::spawn(move || {
            for ev in events {
                if let Some(line) = describe(&ev, mechanism) {
                    eprintln!("zmtp: {line}");
                }
            }
        });
        MONITORS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(printer);
    }
    Ok(())
}

/// The threads printing monitor events; each ends when its socket's I/O thread is gone.
static MONITORS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for every event of the sockets (all closed by now) to be printed.
pub fn join_monitors() {
    let printers = std::mem::take(
        &mut *MONITORS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for p in printers {
        let _ = p.join();
    }
}

/// A monitor event as a status line (`None` for those the `bound` lines already said);
/// a handshake done names the security mechanism unless it is NULL.
fn describe(ev: &MonitorEvent, mechanism: Mechanism) -> Option<String> {
    let secured = match mechanism {
        Mechanism::Null => String::new(),
        m => format!(" ({m})"),
    };
    Some(match ev {
        MonitorEvent::Listening { .. } => return None,
        MonitorEvent::Accepted { endpoint, peer } => format!("{endpoint}: accepted {peer}"),
        MonitorEvent::AcceptFailed { endpoint, error } => {
            format!("{endpoint}: accept failed: {error}")
        }
        MonitorEvent::Connected { endpoint } => format!("{endpoint}: connected"),
        MonitorEvent::ConnectFailed { endpoint, error } => {
            format!("{endpoint}: connect failed: {error}")
        }
        MonitorEvent::HandshakeSucceeded {
            endpoint,
            peer_type,
        } => match peer_type {
            Some(t) => format!("{endpoint}: handshake done with a {t} peer{secured}"),
            None => format!("{endpoint}: handshake done{secured}"),
        },
        MonitorEvent::HandshakeFailed { endpoint, reason } => {
            format!("{endpoint}: handshake failed: {reason}")
        }
        MonitorEvent::Disconnected { endpoint, reason } => {
            format!("{endpoint}: disconnected: {reason}")
        }
        MonitorEvent::Closed { endpoint } => format!("{endpoint}: closed"),
        MonitorEvent::Lagged { missed } => format!("({missed} events not shown)"),
        // Retries are noise at one line each; everything else in its debug form.
        MonitorEvent::ConnectDelayed { .. } | MonitorEvent::ReconnectScheduled { .. } => {
            return None
        }
        other => format!("{other:?}"),
    })
}

/// `zmtp send`.
pub fn send(a: SendArgs) -> Result {
    let ty = a.socket.ty;
    match ty {
        SocketType::Pull | SocketType::Sub => {
            return Err(CliError::usage(format!("a {ty} socket cannot send")))
        }
        SocketType::Rep => {
            return Err(CliError::usage(
                "a REP socket sends only replies: use `zmtp echo -t rep`",
            ))
        }
        SocketType::Req => {
            return Err(CliError::usage(
                "a REQ socket must read each reply: use `zmtp req`",
            ))
        }
        _ => {}
    }
    let msg = parse_frames(&a.frames, a.socket.opts.hex)?;
    let ctx = context()?;
    // A message larger than the library's default queue needs a larger one.
    let s = open(
        &ctx,
        ty,
        &a.socket.opts,
        &a.socket.bind,
        &a.socket.connect,
        msg.iter().map(Vec::len).sum(),
    )?;
    let timeout = a.socket.opts.timeout;
    with_socket(s, |s| {
        wait_peer(s, timeout)?;
        for i in 0..a.count {
            if i > 0 && a.interval > 0 {
                pause(ms(a.interval))?;
            }
            wait_send(s, &msg, timeout)?;
        }
        Ok(())
    })
}

/// What `recv` and `echo` accept.
fn check_recv_type(ty: SocketType, echo: bool) -> Result {
    if echo {
        return match ty {
            SocketType::Rep | SocketType::Router | SocketType::Dealer | SocketType::Pair => Ok(()),
            _ => Err(CliError::usage(format!(
                "echo works with REP, ROUTER, DEALER and PAIR sockets, not {ty}"
            ))),
        };
    }
    match ty {
        SocketType::Push | SocketType::Pub => {
            Err(CliError::usage(format!("a {ty} socket cannot receive")))
        }
        SocketType::Rep => Err(CliError::usage(
            "a REP socket must answer each request: use `zmtp echo -t rep`",
        )),
        SocketType::Req => Err(CliError::usage(
            "a REQ socket receives only replies: use `zmtp req`",
        )),
        _ => Ok(()),
    }
}

fn serve(a: RecvArgs, echo: bool) -> Result {
    check_recv_type(a.socket.ty, echo)?;
    let ctx = context()?;
    let s = open(
        &ctx,
        a.socket.ty,
        &a.socket.opts,
        &a.socket.bind,
        &a.socket.connect,
        0,
    )?;
    let o = a.socket.opts.clone();
    with_socket(s, |s| {
        let mut n = 0u64;
        while a.count.is_none_or(|c| n < c) {
            let msg = wait_recv(s, o.timeout, "message")?;
            print_message(&msg, o.hex)?;
            n += 1;
            if echo {
                // One peer that cannot take the reply (gone, or at its high-water mark with
                // --router-mandatory) must not stop the others being served.
                match wait_send(s, &msg, o.timeout) {
                    Ok(()) => {}
                    Err(e @ (CliError::Interrupted | CliError::Usage(_))) => return Err(e),
                    Err(e) => eprintln!("zmtp: warning: reply not sent: {e}"),
                }
            }
        }
        Ok(())
    })
}

/// `zmtp recv`.
pub fn recv(a: RecvArgs) -> Result {
    serve(a, false)
}

/// `zmtp echo`.
pub fn echo(a: RecvArgs) -> Result {
    serve(a, true)
}

/// `zmtp req`.
pub fn req(a: ReqArgs) -> Result {
    let msg = parse_frames(&a.frames, a.opts.hex)?;
    let ctx = context()?;
    let s = open(&ctx, SocketType::Req, &a.opts, &a.bind, &a.connect, 0)?;
    with_socket(s, |s| {
        wait_send(s, &msg, a.opts.timeout)?;
        let reply = wait_recv(s, a.opts.timeout, "reply")?;
        print_message(&reply, a.opts.hex)
    })
}
